import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, isQuorateError, type PaxosAcceptance } from "@quorate/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  type LmdbAcceptorStorage,
  MemoryAcceptorDisk,
  MemoryAcceptorStorage,
  openLmdbAcceptorStorage,
} from "../src/internal.js";

const vote = (slot: number, round: number, text = `v${slot}`): PaxosAcceptance => ({
  slot,
  ballot: [round, "p1"],
  value: { kind: 0, data: new TextEncoder().encode(text), origin: "l1", seq: slot },
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Either acceptor store: the contract is @quorate/paxos's AcceptorStorage, which this package sits below. */
type AcceptorStorage = MemoryAcceptorStorage | LmdbAcceptorStorage;

/** The contract both acceptor storages keep, run against each. */
function contract(name: string, open: () => Promise<{ storage: AcceptorStorage; reopen(): Promise<AcceptorStorage> }>) {
  describe(`${name} acceptor storage`, () => {
    it("a new store has promised nothing and accepted nothing", async () => {
      const { storage } = await open();
      expect(await storage.load()).toEqual({ promised: [0, ""], truncated: 0, accepted: [] });
      await storage.close();
    });

    it("the promise and the highest-ballot vote of each slot survive a reopen", async () => {
      const { storage, reopen } = await open();
      await storage.load();
      await storage.write({ promised: [1, "p1"], accepted: [vote(1, 1), vote(2, 1)] });
      await storage.write({ promised: [2, "p2"], accepted: [vote(2, 2, "replaced")] });
      await storage.close();
      const again = await reopen();
      const state = await again.load();
      expect(state.promised).toEqual([2, "p2"]);
      expect(state.accepted.map((a) => [a.slot, a.ballot[0], new TextDecoder().decode(a.value.data)])).toEqual([
        [1, 1, "v1"],
        [2, 2, "replaced"],
      ]);
      await again.close();
    });

    it("truncation drops votes at or below the point, and later votes there are ignored", async () => {
      const { storage, reopen } = await open();
      await storage.load();
      await storage.write({ accepted: [vote(1, 1), vote(2, 1), vote(3, 1)] });
      await storage.write({ truncateThrough: 2, accepted: [vote(1, 2)] });
      await storage.close();
      const again = await reopen();
      const state = await again.load();
      expect(state.truncated).toBe(2);
      expect(state.accepted.map((a) => a.slot)).toEqual([3]);
      await again.close();
    });

    it("refuses a promise or a truncation point that goes back", async () => {
      const { storage } = await open();
      await storage.load();
      await storage.write({ promised: [3, "p1"], truncateThrough: 5 });
      const back = await storage.write({ promised: [2, "p9"] }).catch((e: unknown) => e);
      expect(isQuorateError(back, ErrorCode.Invariant)).toBe(true);
      const lower = await storage.write({ truncateThrough: 4 }).catch((e: unknown) => e);
      expect(isQuorateError(lower, ErrorCode.Invariant)).toBe(true);
      await storage.close();
    });
  });
}

contract("memory", async () => {
  const disk = new MemoryAcceptorDisk();
  return { storage: new MemoryAcceptorStorage(disk), reopen: async () => new MemoryAcceptorStorage(disk) };
});

contract("LMDB", async () => {
  const dir = mkdtempSync(join(tmpdir(), "quorate-acceptor-"));
  dirs.push(dir);
  const options = { dir, cluster: "c", member: "a1" };
  return { storage: await openLmdbAcceptorStorage(options), reopen: () => openLmdbAcceptorStorage(options) };
});

describe("memory acceptor storage crash semantics", () => {
  it("a crash loses the writes not yet durable, and only those", async () => {
    const disk = new MemoryAcceptorDisk();
    const pending: (() => void)[] = [];
    const storage = new MemoryAcceptorStorage(disk, { schedule: (f) => pending.push(f) });
    await storage.load();
    const durable = storage.write({ promised: [1, "p1"], accepted: [vote(1, 1)] });
    pending.shift()?.();
    await durable;
    void storage.write({ promised: [2, "p2"], accepted: [vote(2, 2)] });
    disk.crash();
    const state = await new MemoryAcceptorStorage(disk).load();
    expect(state.promised).toEqual([1, "p1"]);
    expect(state.accepted.map((a) => a.slot)).toEqual([1]);
  });
});

describe("LMDB acceptor storage identity", () => {
  it("refuses a data directory of another acceptor", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorate-acceptor-"));
    dirs.push(dir);
    await (await openLmdbAcceptorStorage({ dir, cluster: "c", member: "a1" })).close();
    const err = await openLmdbAcceptorStorage({ dir, cluster: "c", member: "a2" }).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.Storage)).toBe(true);
  });
});
