import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, isQuorateError } from "@quorate/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type GroupFlush, type LmdbGroups, openLmdbGroups, type RaftStorage } from "../src/index.js";
import { describeRaftStorageContract } from "./contract.js";
import { entries } from "./reference-model.js";

const tempDir = () => mkdtemp(join(tmpdir(), "quorate-groups-"));
const identity = { cluster: "c1", member: "m1" };

/** Groups whose names sort just before, around and after "g": a range read past its own group would see them. */
const NEIGHBOURS = ["f", "g1", "h", "g-"];

async function writeNeighbours(groups: LmdbGroups): Promise<void> {
  for (const group of NEIGHBOURS) {
    const storage = groups.storage(group);
    await storage.load();
    await storage.write({ hardState: { term: 9, vote: group, commit: 0 }, entries: entries(1, 5, 9) });
    await storage.close();
  }
}

describeRaftStorageContract("lmdb groups", async () => {
  const dir = await tempDir();
  let groups = await openLmdbGroups({ dir, ...identity });
  await writeNeighbours(groups);
  return {
    storage: groups.storage("g"),
    reopen: async () => {
      await groups.close();
      groups = await openLmdbGroups({ dir, ...identity });
      return groups.storage("g");
    },
    cleanup: async () => {
      await groups.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("LMDB groups: one environment for many groups", () => {
  let dir: string;
  let groups: LmdbGroups;
  const flushes: GroupFlush[] = [];
  /** Flushes and acknowledgements in the order they happened. */
  const events: string[] = [];
  const onFlush = (flush: GroupFlush) => {
    flushes.push(flush);
    events.push(`flush ${flush.groups.join("+")} ${flush.writes}`);
  };
  const open = async () => {
    groups = await openLmdbGroups({ dir, ...identity, onFlush });
    return groups;
  };
  beforeEach(async () => {
    dir = await tempDir();
    flushes.length = 0;
    events.length = 0;
    await open();
  });
  afterEach(async () => {
    await groups.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function loaded(names: readonly string[]): Promise<RaftStorage[]> {
    const stores = names.map((name) => groups.storage(name));
    for (const storage of stores) await storage.load();
    return stores;
  }

  it("keeps each group's hard state, log and snapshot apart, also across a reopen", async () => {
    const [a, b] = await loaded(["a", "b"]);
    await a?.write({ hardState: { term: 2, vote: "m1", commit: 0 }, entries: entries(1, 4, 2) });
    await b?.write({ hardState: { term: 5, vote: null, commit: 0 }, entries: entries(1, 2, 5) });
    // Truncating and snapshotting a does nothing to b.
    await a?.write({ hardState: { term: 3, vote: null, commit: 0 }, truncateFrom: 3, entries: entries(3, 3, 3) });
    const snapshot = { index: 2, term: 2, config: new Uint8Array([1]), data: new Uint8Array([7, 7]) };
    await a?.write({ snapshot });
    await groups.close();

    await open();
    const [a2, b2, c2] = ["a", "b", "c"].map((name) => groups.storage(name));
    const stateA = await a2?.load();
    expect(stateA?.hardState).toEqual({ term: 3, vote: null, commit: 0 });
    expect(stateA?.snapshot).toEqual(snapshot);
    expect(stateA?.entries).toEqual(entries(3, 3, 3));
    const stateB = await b2?.load();
    expect(stateB?.hardState).toEqual({ term: 5, vote: null, commit: 0 });
    expect(stateB?.snapshot).toBeNull();
    expect(stateB?.entries).toEqual(entries(1, 2, 5));
    expect((await c2?.load())?.entries).toEqual([]);
  });

  it("commits the writes of N groups issued in one turn in one transaction with one flush", async () => {
    const N = 8;
    const names = Array.from({ length: N }, (_, i) => `group-${i}`);
    const stores = await loaded(names);
    await Promise.all(stores.map((storage) => storage.write({ hardState: { term: 1, vote: null, commit: 0 } })));
    const before = groups.stats;
    flushes.length = 0;

    await Promise.all(stores.map((storage) => storage.write({ entries: entries(1, 3, 1) })));

    expect(flushes).toEqual([{ writes: N, groups: names }]);
    expect(groups.stats.flushes - before.flushes).toBe(1);
    expect(groups.stats.writes - before.writes).toBe(N);
    // LMDB itself: one write transaction for all eight groups.
    expect(groups.stats.transactions - before.transactions).toBe(1);
  });

  it("resolves no group's write before the flush that covers it", async () => {
    const [a, b] = await loaded(["a", "b"]);
    events.length = 0;
    const record = (name: string) => () => events.push(`ack ${name}`);
    const first = a?.write({ hardState: { term: 1, vote: null, commit: 0 } }).then(record("a1"));
    // The next turn: b's write cannot ride on the flush a's turn is waiting for.
    await new Promise((resolve) => setImmediate(resolve));
    const second = b?.write({ hardState: { term: 1, vote: null, commit: 0 } }).then(record("b1"));
    const third = a?.write({ entries: entries(1, 1, 1) }).then(record("a2"));
    await Promise.all([first, second, third]);
    // Two flushes, the second covering the two writes of the later turn, and each
    // acknowledgement after the flush that covers its write.
    expect(events.filter((event) => event.startsWith("flush"))).toEqual(["flush a 1", "flush b+a 2"]);
    const at = (event: string) => events.indexOf(event);
    expect(at("ack a1")).toBeGreaterThan(at("flush a 1"));
    expect(at("ack b1")).toBeGreaterThan(at("flush b+a 2"));
    expect(at("ack a2")).toBeGreaterThan(at("flush b+a 2"));
  });

  it("opens a group's store once at a time, and refuses group names that are not tokens", async () => {
    groups.storage("a");
    expect(() => groups.storage("a")).toThrow(expect.objectContaining({ code: ErrorCode.Config }));
    expect(() => groups.storage("a.b")).toThrow(expect.objectContaining({ code: ErrorCode.Config }));
    expect(groups.openGroups).toEqual(["a"]);
    await groups.close();
    let closed: unknown;
    try {
      groups.storage("b");
    } catch (err) {
      closed = err;
    }
    expect(isQuorateError(closed, ErrorCode.Closed)).toBe(true);
  });

  it("belongs to the member that first opened it", async () => {
    await groups.close();
    await expect(openLmdbGroups({ dir, cluster: "c1", member: "m2" })).rejects.toSatisfy((err) =>
      isQuorateError(err, ErrorCode.Storage),
    );
    await open();
  });
});
