import { describe, expect, it } from "vitest";
import { checkHistoryText, parseHistory } from "../src/index.js";
import { readPorcupineHistory } from "./helpers.js";

describe("Porcupine key-value histories", () => {
  it.each([
    ["c01-ok", "linearizable"],
    ["c01-bad", "not-linearizable"],
    ["c10-ok", "linearizable"],
    ["c10-bad", "not-linearizable"],
    ["c50-ok", "linearizable"],
    ["c50-bad", "not-linearizable"],
  ] as const)("%s is %s", (name, verdict) => {
    const result = checkHistoryText(readPorcupineHistory(name));
    expect(result.verdict).toBe(verdict);
    if (verdict === "not-linearizable") {
      expect(result.witness?.length).toBeGreaterThan(0);
    } else {
      expect(result.keys.every((key) => key.verdict === "linearizable")).toBe(true);
    }
  });

  it("pairs every invocation of c50-ok with its completion", () => {
    const text = readPorcupineHistory("c50-ok");
    const operations = parseHistory(text);
    expect(operations).toHaveLength(text.trim().split("\n").length / 2);
    expect(operations.every((operation) => operation.status === "ok" && operation.return > operation.call)).toBe(true);
  });

  it("reports the same witness on every run", () => {
    const text = readPorcupineHistory("c10-bad");
    expect(checkHistoryText(text)).toEqual(checkHistoryText(text));
  });
});
