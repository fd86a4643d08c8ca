import { ErrorCode, isQuorateError } from "@quorate/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMemoryStorage, MemoryDisk, MemoryRaftStorage } from "../src/internal.js";
import { describeRaftStorageContract } from "./contract.js";
import { entries, operation, ReferenceModel, toWrite } from "./reference-model.js";

describeRaftStorageContract("memory", async () => {
  const disk = new MemoryDisk();
  return {
    storage: new MemoryRaftStorage(disk),
    reopen: async () => new MemoryRaftStorage(disk),
    cleanup: async () => undefined,
  };
});

/** A schedule that holds every pending write until the test fires it. */
function heldSchedule() {
  const held: (() => void)[] = [];
  return { held, schedule: (makeDurable: () => void) => void held.push(makeDurable) };
}

/** Lets every queued microtask and promise reaction run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function track(promise: Promise<void>): { done: boolean } {
  const state = { done: false };
  void promise.then(() => {
    state.done = true;
  });
  return state;
}

describe("MemoryRaftStorage crash semantics", () => {
  it("a crash discards pending writes but keeps durable ones; their promises never settle", async () => {
    const disk = new MemoryDisk();
    const { held, schedule } = heldSchedule();
    const storage = new MemoryRaftStorage(disk, { schedule });
    await storage.load();
    const first = track(storage.write({ hardState: { term: 1, vote: "a", commit: 0 }, entries: entries(1, 3, 1) }));
    const second = track(storage.write({ entries: entries(4, 6, 1) }));
    held[0]?.();
    await settle();
    expect(first.done).toBe(true);
    expect(second.done).toBe(false);

    disk.crash();
    held[1]?.();
    await settle();
    expect(second.done).toBe(false);
    const late = track(storage.write({ entries: entries(4, 4, 1) }));
    await settle();
    expect(late.done).toBe(false);
    await storage.close();

    const restarted = new MemoryRaftStorage(disk);
    expect(await restarted.load()).toEqual({
      hardState: { term: 1, vote: "a", commit: 0 },
      snapshot: null,
      entries: entries(1, 3, 1),
    });
  });

  it("makes writes durable strictly in order: a later write takes every earlier one with it", async () => {
    const disk = new MemoryDisk();
    const { held, schedule } = heldSchedule();
    const storage = new MemoryRaftStorage(disk, { schedule });
    await storage.load();
    const resolved: number[] = [];
    for (let i = 1; i <= 4; i++) {
      void storage.write({ hardState: { term: i, vote: null, commit: 0 }, entries: [...entries(i, i, i)] }).then(() => {
        resolved.push(i);
      });
    }
    held[2]?.();
    await settle();
    expect(resolved).toEqual([1, 2, 3]);
    expect(disk.durableState().entries.map((e) => e.index)).toEqual([1, 2, 3]);
    held[0]?.();
    held[1]?.();
    await settle();
    expect(resolved).toEqual([1, 2, 3]);
    held[3]?.();
    await settle();
    expect(resolved).toEqual([1, 2, 3, 4]);
    expect(disk.durableState().hardState.term).toBe(4);
  });

  it("keeps a write whole: a crash never leaves half of one", async () => {
    const disk = new MemoryDisk();
    const { held, schedule } = heldSchedule();
    const storage = new MemoryRaftStorage(disk, { schedule });
    await storage.load();
    void storage.write({ hardState: { term: 1, vote: null, commit: 2 }, entries: entries(1, 5, 1) });
    held[0]?.();
    void storage.write({ hardState: { term: 2, vote: "b", commit: 2 }, truncateFrom: 3, entries: entries(3, 4, 2) });
    disk.crash();
    expect(disk.durableState()).toEqual({
      hardState: { term: 1, vote: null, commit: 2 },
      snapshot: null,
      entries: entries(1, 5, 1),
    });
  });

  it("serves one live storage per disk, like a data directory", async () => {
    const disk = new MemoryDisk();
    const storage = new MemoryRaftStorage(disk);
    expect(() => new MemoryRaftStorage(disk)).toThrow(expect.objectContaining({ code: ErrorCode.Storage }));
    await storage.close();
    const crashed = new MemoryRaftStorage(disk);
    disk.crash();
    const restarted = new MemoryRaftStorage(disk);
    await crashed.close();
    await restarted.close();
  });

  it("close() waits until pending writes are durable", async () => {
    const disk = new MemoryDisk();
    const { held, schedule } = heldSchedule();
    const storage = new MemoryRaftStorage(disk, { schedule });
    await storage.load();
    void storage.write({ hardState: { term: 1, vote: null, commit: 0 } });
    const closed = track(storage.close());
    await settle();
    expect(closed.done).toBe(false);
    held[0]?.();
    await settle();
    expect(closed.done).toBe(true);
    await expect(storage.load()).rejects.toSatisfy((err) => isQuorateError(err, ErrorCode.Closed));
  });

  it("createMemoryStorage() works over a fresh disk with the default schedule", async () => {
    const storage = createMemoryStorage();
    await storage.load();
    await storage.write({ hardState: { term: 1, vote: "x", commit: 0 } });
    await storage.close();
  });

  it("after a crash at any point, the disk holds exactly a prefix of the issued writes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(operation, { minLength: 1, maxLength: 25 }),
        fc.array(fc.nat(), { maxLength: 25 }),
        async (operations, firings) => {
          const disk = new MemoryDisk();
          const { held, schedule } = heldSchedule();
          const storage = new MemoryRaftStorage(disk, { schedule });
          await storage.load();
          const model = new ReferenceModel();
          /** The model's state after each issued write: index k is the state after k writes. */
          const states = [structuredClone(model.state)];
          for (const op of operations) {
            const write = toWrite(model, op);
            if (write === null || "compact" in write) continue;
            void storage.write(write);
            model.apply(write);
            states.push(structuredClone(model.state));
          }
          let durable = 0;
          for (const firing of firings) {
            if (held.length === 0) break;
            const which = firing % held.length;
            held[which]?.();
            durable = Math.max(durable, which + 1);
          }
          disk.crash();
          const restarted = new MemoryRaftStorage(disk);
          expect(await restarted.load()).toEqual(states[durable]);
        },
      ),
      { numRuns: 200 },
    );
  });
});
