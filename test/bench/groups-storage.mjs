#!/usr/bin/env node
// `node test/bench/groups-storage.mjs`: what sharing one LMDB environment buys many Raft groups
// of one member. Each group keeps one write in flight (as a Raft node does: one write at a time),
// appending 1 entry of --entry-bytes per write, for --seconds; once with every group in one
// openLmdbGroups environment, once with a store (openLmdbStorage) per group. Prints durable
// writes/s and flushes (fsyncs)/s; a shared environment's flushes should not grow with groups.
// Prints numbers; not a test.
//   node test/bench/groups-storage.mjs [--groups 1,3,9] [--seconds 3] [--entry-bytes 100]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openLmdbGroups, openLmdbStorage } from "../../packages/storage/dist/index.js";

const { values: flags } = parseArgs({
  options: {
    groups: { type: "string", default: "1,3,9" },
    seconds: { type: "string", default: "3" },
    "entry-bytes": { type: "string", default: "100" },
  },
});
const seconds = Number(flags.seconds);
const data = new Uint8Array(Number(flags["entry-bytes"])).fill(7);

/** Runs one writer per store until the deadline; resolves with the writes made. */
async function drive(stores) {
  const deadline = performance.now() + seconds * 1000;
  let writes = 0;
  await Promise.all(
    stores.map(async (storage) => {
      await storage.load();
      for (let index = 1; performance.now() < deadline; index++) {
        await storage.write({
          hardState: { term: 1, vote: null, commit: 0 },
          entries: [{ index, term: 1, kind: 0, data }],
        });
        writes++;
      }
    }),
  );
  return writes;
}

const rows = [];
for (const n of flags.groups.split(",").map(Number)) {
  const names = Array.from({ length: n }, (_, i) => `g${i}`);
  const sharedDir = await mkdtemp(join(tmpdir(), "bench-groups-"));
  const shared = await openLmdbGroups({ dir: sharedDir, cluster: "bench", member: "m1" });
  const writes = await drive(names.map((name) => shared.storage(name)));
  const { flushes } = shared.stats;
  await shared.close();
  await rm(sharedDir, { recursive: true, force: true });

  const ownDirs = await Promise.all(names.map(() => mkdtemp(join(tmpdir(), "bench-own-"))));
  const own = await Promise.all(ownDirs.map((dir) => openLmdbStorage({ dir, cluster: "bench", member: "m1" })));
  const ownWrites = await drive(own);
  await Promise.all(own.map((storage) => storage.close()));
  await Promise.all(ownDirs.map((dir) => rm(dir, { recursive: true, force: true })));

  rows.push({
    groups: n,
    "shared writes/s": Math.round(writes / seconds),
    "shared flushes/s": Math.round(flushes / seconds),
    "writes per flush": (writes / flushes).toFixed(1),
    // One write in flight per store: each commit, and so each fsync, carries one write.
    "store-per-group writes/s (= fsyncs/s)": Math.round(ownWrites / seconds),
  });
}
console.table(rows);
