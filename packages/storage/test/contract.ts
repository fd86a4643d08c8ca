import { EntryKind, ErrorCode, isQuorateError } from "@quorate/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RaftState, RaftStorage, RaftWrite } from "../src/index.js";
import { bytesOf, emptyState, entries, entry } from "./reference-model.js";

export interface StorageHarness {
  /** A fresh, empty store; load() not yet called. */
  storage: RaftStorage;
  /** Opens the same durable state again; the caller has closed (or crashed) the previous instance. */
  reopen(): Promise<RaftStorage>;
  /** Releases everything the harness created. */
  cleanup(): Promise<void>;
}

/** The behaviour every RaftStorage must show, run against each implementation. */
export function describeRaftStorageContract(name: string, open: () => Promise<StorageHarness>): void {
  describe(`RaftStorage contract: ${name}`, () => {
    let harness: StorageHarness;
    let storage: RaftStorage;

    beforeEach(async () => {
      harness = await open();
      storage = harness.storage;
    });
    afterEach(async () => {
      await storage.close();
      await harness.cleanup();
    });

    /** Closes the current instance and loads the durable state through a new one. */
    async function reload(): Promise<RaftState> {
      await storage.close();
      storage = await harness.reopen();
      return storage.load();
    }

    it("loads an empty state from a new store", async () => {
      expect(await storage.load()).toEqual(emptyState());
      expect(await reload()).toEqual(emptyState());
    });

    it("round-trips the hard state", async () => {
      await storage.load();
      await storage.write({ hardState: { term: 3, vote: "b", commit: 0 } });
      await storage.write({ hardState: { term: 7, vote: null, commit: 0 } });
      expect((await reload()).hardState).toEqual({ term: 7, vote: null, commit: 0 });
    });

    it("appends entries of every kind and reloads them", async () => {
      await storage.load();
      const written = [
        { index: 1, term: 1, kind: EntryKind.Config, data: bytesOf("config") },
        { index: 2, term: 1, kind: EntryKind.Noop, data: new Uint8Array(0) },
        { index: 3, term: 2, kind: EntryKind.Command, data: new Uint8Array(20_000).fill(7) },
      ];
      await storage.write({ hardState: { term: 2, vote: "a", commit: 0 }, entries: written.slice(0, 2) });
      await storage.write({ entries: written.slice(2), hardState: { term: 2, vote: "a", commit: 3 } });
      expect(await reload()).toEqual({
        hardState: { term: 2, vote: "a", commit: 3 },
        snapshot: null,
        entries: written,
      });
    });

    it("truncates and appends in one write; a reload sees the new suffix", async () => {
      await storage.load();
      await storage.write({ hardState: { term: 1, vote: "a", commit: 2 }, entries: entries(1, 5, 1) });
      await storage.write({ hardState: { term: 2, vote: "b", commit: 2 }, truncateFrom: 3, entries: entries(3, 4, 2) });
      const state = await reload();
      expect(state.entries).toEqual([...entries(1, 2, 1), ...entries(3, 4, 2)]);
      expect(state.hardState).toEqual({ term: 2, vote: "b", commit: 2 });
    });

    it("truncates without appending", async () => {
      await storage.load();
      await storage.write({ hardState: { term: 1, vote: null, commit: 0 }, entries: entries(1, 4, 1) });
      await storage.write({ truncateFrom: 1 });
      expect((await reload()).entries).toEqual([]);
    });

    it("applies writes issued without waiting in call order, and resolves them in that order", async () => {
      await storage.load();
      const resolved: number[] = [];
      const writes: Promise<void>[] = [];
      for (let i = 1; i <= 40; i++) {
        const write: RaftWrite = { hardState: { term: i, vote: `m${i}`, commit: i - 1 }, entries: [entry(i, i)] };
        writes.push(storage.write(write).then(() => void resolved.push(i)));
        // Replaces the entry just appended: only right if applied after the write before it.
        if (i % 5 === 0) writes.push(storage.write({ truncateFrom: i, entries: [entry(i, i, bytesOf("again"))] }));
      }
      await Promise.all(writes);
      expect(resolved).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const state = await reload();
      expect(state.hardState).toEqual({ term: 40, vote: "m40", commit: 39 });
      expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(state.entries[9]).toEqual(entry(10, 10, bytesOf("again")));
    });

    it("installs a snapshot inside the log: covered entries go, later ones stay", async () => {
      await storage.load();
      await storage.write({
        hardState: { term: 2, vote: null, commit: 6 },
        entries: [...entries(1, 4, 1), ...entries(5, 10, 2)],
      });
      const snapshot = { index: 6, term: 2, config: bytesOf("members"), data: bytesOf("state@6") };
      await storage.write({ snapshot });
      const state = await reload();
      expect(state.snapshot).toEqual(snapshot);
      expect(state.entries).toEqual(entries(7, 10, 2));
      await storage.write({ entries: entries(11, 12, 2) });
      expect((await reload()).entries).toEqual(entries(7, 12, 2));
    });

    it("installs a snapshot past the log's end, and appends right after it in the same write", async () => {
      await storage.load();
      await storage.write({ hardState: { term: 1, vote: null, commit: 0 }, entries: entries(1, 3, 1) });
      const snapshot = { index: 20, term: 3, config: new Uint8Array(0), data: new Uint8Array(30_000).fill(1) };
      await storage.write({ hardState: { term: 3, vote: null, commit: 0 }, snapshot, entries: entries(21, 22, 3) });
      const state = await reload();
      expect(state.snapshot).toEqual(snapshot);
      expect(state.entries).toEqual(entries(21, 22, 3));
      const next = { index: 22, term: 3, config: bytesOf("c"), data: bytesOf("state@22") };
      await storage.write({ snapshot: next });
      expect(await reload()).toEqual({ hardState: { term: 3, vote: null, commit: 0 }, snapshot: next, entries: [] });
    });

    it("compacts up to the snapshot, durably and in order, and refuses to go past it", async () => {
      await storage.load();
      await storage.write({ hardState: { term: 1, vote: null, commit: 5 }, entries: entries(1, 8, 1) });
      const snapshot = { index: 5, term: 1, config: bytesOf("c"), data: bytesOf("s") };
      const installed = storage.write({ snapshot });
      await storage.compact(5);
      await installed;
      await storage.compact(3);
      await expectInvariantViolation(storage.compact(6));
      expect(await reload()).toEqual({
        hardState: { term: 1, vote: null, commit: 5 },
        snapshot,
        entries: entries(6, 8, 1),
      });
    });

    it("recovers term, vote, snapshot and log exactly after a reopen", async () => {
      await storage.load();
      await storage.write({ hardState: { term: 1, vote: "a", commit: 0 }, entries: entries(1, 3, 1) });
      await storage.write({ hardState: { term: 4, vote: "c", commit: 2 }, truncateFrom: 3, entries: entries(3, 6, 4) });
      const snapshot = { index: 2, term: 1, config: bytesOf("abc"), data: bytesOf("two") };
      await storage.write({ snapshot, hardState: { term: 4, vote: "c", commit: 4 } });
      const expected: RaftState = { hardState: { term: 4, vote: "c", commit: 4 }, snapshot, entries: entries(3, 6, 4) };
      expect(await reload()).toEqual(expected);
      expect(await reload()).toEqual(expected);
    });

    describe("rejects a write that breaks an invariant, and stays usable", () => {
      const base: RaftWrite = { hardState: { term: 2, vote: "a", commit: 3 }, entries: entries(1, 5, 2) };
      const violations: [string, RaftWrite][] = [
        ["entries not starting right after the log", { entries: [entry(7, 2)] }],
        ["entries overwriting the log without truncation", { entries: [entry(5, 2)] }],
        ["a gap between entries", { entries: [entry(6, 2), entry(8, 2)] }],
        ["an entry term below its predecessor's", { entries: [entry(6, 1)] }],
        ["an entry term above the current term", { entries: [entry(6, 3)] }],
        ["an unknown entry kind", { entries: [{ index: 6, term: 2, kind: 9 as EntryKind, data: new Uint8Array(0) }] }],
        ["a fractional index", { entries: [entry(5.5, 2)] }],
        ["the term going back", { hardState: { term: 1, vote: null, commit: 3 } }],
        ["a second vote in the same term", { hardState: { term: 2, vote: "b", commit: 3 } }],
        ["the commit index going back", { hardState: { term: 2, vote: "a", commit: 2 } }],
        ["the commit index past the log", { hardState: { term: 2, vote: "a", commit: 6 } }],
        ["truncating committed entries", { truncateFrom: 3 }],
        ["truncating past the log's end", { truncateFrom: 7 }],
        ["truncating from index 0", { truncateFrom: 0 }],
        [
          "a snapshot whose term contradicts the log",
          { snapshot: { index: 2, term: 1, config: bytesOf(""), data: bytesOf("") } },
        ],
        [
          "a snapshot term above the current term",
          { snapshot: { index: 9, term: 5, config: bytesOf(""), data: bytesOf("") } },
        ],
      ];
      for (const [what, write] of violations) {
        it(what, async () => {
          await storage.load();
          await storage.write(base);
          await expectInvariantViolation(storage.write(write));
          await storage.write({ entries: [entry(6, 2)] });
          expect(await reload()).toEqual({ hardState: base.hardState, snapshot: null, entries: entries(1, 6, 2) });
        });
      }

      it("a snapshot that does not advance", async () => {
        await storage.load();
        await storage.write(base);
        await storage.write({ snapshot: { index: 3, term: 2, config: bytesOf(""), data: bytesOf("") } });
        await expectInvariantViolation(
          storage.write({ snapshot: { index: 3, term: 2, config: bytesOf(""), data: bytesOf("") } }),
        );
        await expectInvariantViolation(storage.write({ truncateFrom: 3 }));
      });

      it("a write checked against the writes before it, not against the disk", async () => {
        await storage.load();
        const first = storage.write(base);
        await expectInvariantViolation(storage.write({ entries: [entry(1, 2)] }));
        await storage.write({ entries: [entry(6, 2)] });
        await first;
      });

      it("a write before load()", async () => {
        await expectInvariantViolation(storage.write(base));
        await storage.load();
        await expectInvariantViolation(storage.load());
      });
    });

    it("stores copies: neither the caller's later mutations nor mutations of loaded data change it", async () => {
      await storage.load();
      const data = bytesOf("original");
      const config = bytesOf("config");
      const snapshotData = bytesOf("snapshot");
      const written = storage.write({
        hardState: { term: 1, vote: null, commit: 0 },
        entries: [{ index: 1, term: 1, kind: EntryKind.Command, data }],
      });
      data.fill(0);
      await written;
      const installed = storage.write({ snapshot: { index: 3, term: 1, config, data: snapshotData } });
      config.fill(0);
      snapshotData.fill(0);
      await installed;
      // Node Buffers too: their slice() is a view, not a copy.
      const buffer = Buffer.from("buffer");
      const appended = storage.write({ entries: [{ index: 4, term: 1, kind: EntryKind.Command, data: buffer }] });
      buffer.fill(0);
      await appended;

      const loaded = await reload();
      expect(loaded.snapshot).toEqual({ index: 3, term: 1, config: bytesOf("config"), data: bytesOf("snapshot") });
      expect(loaded.entries).toEqual([entry(4, 1, bytesOf("buffer"))]);
      const loadedEntry = loaded.entries[0]!;
      expect(Object.getPrototypeOf(loadedEntry.data)).toBe(Uint8Array.prototype);
      loadedEntry.data.fill(0);
      loaded.snapshot?.data.fill(0);
      const again = await reload();
      expect(again.entries).toEqual([entry(4, 1, bytesOf("buffer"))]);
      expect(again.snapshot?.data).toEqual(bytesOf("snapshot"));
    });

    it("rejects calls after close() with Closed", async () => {
      await storage.load();
      await storage.write({ hardState: { term: 1, vote: null, commit: 0 } });
      await storage.close();
      await expect(storage.write({ hardState: { term: 2, vote: null, commit: 0 } })).rejects.toSatisfy((err) =>
        isQuorateError(err, ErrorCode.Closed),
      );
      await storage.close();
    });

    it("waits for accepted writes before closing", async () => {
      await storage.load();
      const written = storage.write({ hardState: { term: 1, vote: null, commit: 0 }, entries: entries(1, 50, 1) });
      await storage.close();
      await written;
      expect((await reload()).entries).toHaveLength(50);
    });
  });
}

export async function expectInvariantViolation(promise: Promise<unknown>): Promise<void> {
  await expect(promise).rejects.toSatisfy((err) => isQuorateError(err, ErrorCode.Invariant));
}
