import { describe, expect, it } from "vitest";
import { SYNC_ALWAYS_SINCE, versionAtLeast } from "../bench/nats-version.mjs";

describe("versionAtLeast", () => {
  it("reads versions as nats-server prints them", () => {
    expect(versionAtLeast("nats-server: v2.9.10", SYNC_ALWAYS_SINCE)).toBe(false);
    expect(versionAtLeast("nats-server: v2.10.0", SYNC_ALWAYS_SINCE)).toBe(true);
    expect(versionAtLeast("v2.11.3", SYNC_ALWAYS_SINCE)).toBe(true);
  });

  it("compares parts as numbers, most significant first", () => {
    expect(versionAtLeast("2.9.99", "2.10.0")).toBe(false);
    expect(versionAtLeast("3.0.0", "2.10.0")).toBe(true);
    expect(versionAtLeast("2.10.1", "2.10.2")).toBe(false);
    expect(versionAtLeast("1.99.99", "2.0.0")).toBe(false);
  });

  it("ignores pre-release suffixes", () => {
    expect(versionAtLeast("v2.10.0-beta.3", SYNC_ALWAYS_SINCE)).toBe(true);
  });

  it("treats text without a version as too old", () => {
    expect(versionAtLeast("?", SYNC_ALWAYS_SINCE)).toBe(false);
    expect(versionAtLeast("", SYNC_ALWAYS_SINCE)).toBe(false);
  });
});
