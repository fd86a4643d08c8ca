import { ErrorCode, isQuorateError } from "@quorate/core";
import { describe, expect, it } from "vitest";
import {
  assertKvGroup,
  KV_GROUP,
  KV_WATCH_GROUP,
  kvGroupOfKey,
  kvShardGroups,
  MAX_KV_GROUPS,
  ShardedKvClient,
  watchSubject,
} from "../src/nats.js";

const code = (fn: () => unknown): string | null => {
  try {
    fn();
    return null;
  } catch (err) {
    return isQuorateError(err) ? err.code : String(err);
  }
};

describe("placing keys in groups", () => {
  it("is FNV-1a-32 of the key's UTF-8 bytes modulo the number of groups, so every client agrees", () => {
    // FNV-1a-32: "a" 0xe40c292c, "foobar" 0xbf9cf968 (the published test vectors), "ключ" 0x95c4e9e1.
    const groups = kvShardGroups(3);
    expect(kvGroupOfKey("a", groups)).toBe(groups[0xe40c292c % 3]);
    expect(kvGroupOfKey("foobar", groups)).toBe(groups[0xbf9cf968 % 3]);
    expect(kvGroupOfKey("", groups)).toBe(groups[0x811c9dc5 % 3]);
    expect(kvGroupOfKey("ключ", kvShardGroups(5))).toBe("kv-3");
    expect(kvGroupOfKey("anything", ["solo"])).toBe("solo");
  });

  it("spreads keys about evenly", () => {
    const groups = kvShardGroups(6);
    const counts = new Map<string, number>();
    for (let i = 0; i < 60_000; i++) {
      const group = kvGroupOfKey(`user/${i}`, groups);
      counts.set(group, (counts.get(group) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(groups);
    for (const count of counts.values()) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it("names the groups kv-0 ... and refuses counts out of range", () => {
    expect(kvShardGroups(3)).toEqual(["kv-0", "kv-1", "kv-2"]);
    expect(kvShardGroups(MAX_KV_GROUPS)).toHaveLength(MAX_KV_GROUPS);
    for (const count of [0, -1, 1.5, MAX_KV_GROUPS + 1])
      expect(code(() => kvShardGroups(count))).toBe(ErrorCode.Config);
    expect(code(() => kvGroupOfKey("a", []))).toBe(ErrorCode.Config);
  });
});

describe("a KV group's subjects", () => {
  it("the default group keeps the subjects of an unsharded KV", () => {
    expect(KV_GROUP).toBe("kv");
    expect(KV_WATCH_GROUP).toBe("kv-watch");
    expect(watchSubject({ cluster: "c" }, "n1")).toBe(watchSubject({ cluster: "c" }, "n1", KV_GROUP));
    expect(watchSubject({ cluster: "c" }, "n1", "kv-2")).toBe(
      watchSubject({ cluster: "c" }, "n1").replace("kv-watch", "kv-2-watch"),
    );
  });

  it("refuses group names that are not tokens, or that would take another group's watch subjects", () => {
    expect(code(() => assertKvGroup("kv-1"))).toBeNull();
    expect(code(() => assertKvGroup("orders-watch"))).toBe(ErrorCode.Config);
    expect(code(() => assertKvGroup("a.b"))).toBe(ErrorCode.Config);
    expect(code(() => assertKvGroup(""))).toBe(ErrorCode.Config);
  });

  it("a sharded client refuses no groups, repeated groups and bad names before connecting", async () => {
    const connect = (groups: string[]) =>
      ShardedKvClient.connect({ nats: "nats://127.0.0.1:1", cluster: "c", groups }).then(
        () => null,
        (err: unknown) => (isQuorateError(err) ? err.code : String(err)),
      );
    expect(await connect([])).toBe(ErrorCode.Config);
    expect(await connect(["kv-0", "kv-0"])).toBe(ErrorCode.Config);
    expect(await connect(["kv-0", "x-watch"])).toBe(ErrorCode.Config);
  });
});
