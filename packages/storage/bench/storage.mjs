// Durable write throughput of the LMDB storage: every number counts only writes whose promise
// resolved, i.e. that were fsynced. Run after a build: `pnpm build && pnpm --filter @quorate/storage bench`.
// BENCH_DIR picks the filesystem to measure (default: the OS temp dir); BENCH_SECONDS the time per case.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLmdbStorage } from "../dist/index.js";

const ENTRY_BYTES = 100;
const BATCH_SIZES = [1, 10, 100, 1000];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const WARMUP_WRITES = 20;

async function measure(batch, inFlight) {
  const dir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), "quorate-storage-bench-"));
  const storage = await openLmdbStorage({ dir, cluster: "bench", member: "m1" });
  await storage.load();
  const payload = new Uint8Array(ENTRY_BYTES).fill(42);
  let lastIndex = 0;
  const write = () => {
    const entries = Array.from({ length: batch }, (_, i) => ({
      index: lastIndex + 1 + i,
      term: 1,
      kind: 0,
      data: payload,
    }));
    lastIndex += batch;
    return storage.write({ hardState: { term: 1, vote: "m1", commit: 0 }, entries });
  };
  for (let i = 0; i < WARMUP_WRITES; i++) await write();

  let writes = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const start = performance.now();
  // Each lane awaits its own writes; with several lanes, writes share commits and fsyncs.
  const lane = async () => {
    while (performance.now() < deadline) {
      await write();
      writes++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsed = performance.now() - start;
  await storage.close();
  await rm(dir, { recursive: true, force: true });
  return { batch, inFlight, writes, msPerWrite: elapsed / writes, entriesPerSecond: (writes * batch * 1000) / elapsed };
}

function row(cells) {
  return cells.map((cell, i) => String(cell).padStart(i === 0 ? 6 : 12)).join(" ");
}

console.log(
  `LMDB durable writes of ${ENTRY_BYTES}-byte entries in ${process.env.BENCH_DIR ?? tmpdir()}, ${SECONDS} s per case`,
);
console.log(row(["batch", "in flight", "writes", "ms/write", "ms/entry", "entries/s"]));
for (const inFlight of [1, 8]) {
  for (const batch of BATCH_SIZES) {
    const r = await measure(batch, inFlight);
    console.log(
      row([
        r.batch,
        r.inFlight,
        r.writes,
        r.msPerWrite.toFixed(3),
        (r.msPerWrite / r.batch).toFixed(4),
        Math.round(r.entriesPerSecond),
      ]),
    );
  }
}
