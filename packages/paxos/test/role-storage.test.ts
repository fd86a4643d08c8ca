import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryAcceptorStorage, MemoryRaftStorage, openLmdbAcceptorStorage } from "@quorate/storage";
import { MemoryAcceptorDisk, MemoryDisk } from "@quorate/storage/internal";
import { describe, expect, it } from "vitest";
import { type AcceptorStorage, learnerStorageIn, proposerStorageIn } from "../src/index.js";

describe("acceptor storage", () => {
  it("both of @quorate/storage's acceptor stores are an AcceptorStorage: a promise written through it survives a reopen", async () => {
    const disk = new MemoryAcceptorDisk();
    const dir = mkdtempSync(join(tmpdir(), "quorate-acceptor-"));
    try {
      const lmdb = { dir, cluster: "c", member: "a1" };
      const stores: [() => Promise<AcceptorStorage>, () => Promise<AcceptorStorage>][] = [
        [async () => new MemoryAcceptorStorage(disk), async () => new MemoryAcceptorStorage(disk)],
        [() => openLmdbAcceptorStorage(lmdb), () => openLmdbAcceptorStorage(lmdb)],
      ];
      for (const [open, reopen] of stores) {
        const storage = await open();
        expect(await storage.load()).toEqual({ promised: [0, ""], truncated: 0, accepted: [] });
        await storage.write({ promised: [3, "p1"] });
        await storage.close();
        const again = await reopen();
        expect((await again.load()).promised).toEqual([3, "p1"]);
        await again.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("proposer and learner storage in a Raft store", () => {
  it("a proposer's round survives a restart, kept as the hard state's term as in earlier versions", async () => {
    const disk = new MemoryDisk();
    const store = new MemoryRaftStorage(disk);
    const first = proposerStorageIn(store);
    expect(await first.loadRound()).toBe(0);
    await first.writeRound(3);
    await first.writeRound(7);
    await store.close();
    const reopened = new MemoryRaftStorage(disk);
    expect(await proposerStorageIn(reopened).loadRound()).toBe(7);
    await reopened.close();
    expect((await new MemoryRaftStorage(disk).load()).hardState).toEqual({ term: 7, vote: null, commit: 0 });
  });

  it("a learner's incarnation and latest checkpoint survive a restart, the checkpoint as a snapshot at its slot", async () => {
    const disk = new MemoryDisk();
    const store = new MemoryRaftStorage(disk);
    const first = learnerStorageIn(store);
    expect(await first.load()).toEqual({ incarnation: 0, checkpoint: null });
    await first.writeIncarnation(1);
    await first.writeCheckpoint({ slot: 10, data: new Uint8Array([1]) });
    await first.writeCheckpoint({ slot: 20, data: new Uint8Array([2, 3]) });
    await store.close();
    const reopened = new MemoryRaftStorage(disk);
    expect(await learnerStorageIn(reopened).load()).toEqual({
      incarnation: 1,
      checkpoint: { slot: 20, data: new Uint8Array([2, 3]) },
    });
    await reopened.close();
    const raw = await new MemoryRaftStorage(disk).load();
    expect(raw.hardState.term).toBe(1);
    expect(raw.snapshot).toMatchObject({ index: 20, term: 0, data: new Uint8Array([2, 3]) });
  });
});
