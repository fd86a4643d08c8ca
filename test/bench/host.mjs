#!/usr/bin/env node
// `pnpm bench:host`: what Quorate's own code costs per operation, without NATS sockets or fsync.
// Three Raft members in this one process, over the in-memory network and in-memory disks, with
// the KV state machine; one client proposes puts one after another (then 64 at a time) and reads
// with ReadIndex. Prints CPU microseconds per operation for the three members together (the
// process's user+system time), which load on the machine barely changes: the number to watch
// when optimising the host, the machines and the codec. Profile with
// `node --cpu-prof test/bench/host.mjs`.  BENCH_OPS=20000
import { performance } from "node:perf_hooks";
import { encodeKvCommand, KvStateMachine } from "../../packages/kv/dist/index.js";
import { RaftNode } from "../../packages/raft/dist/index.js";
import { MemoryDisk, MemoryRaftStorage } from "../../packages/storage/dist/index.js";
import { MemoryNetwork } from "../../packages/transport-memory/dist/index.js";
import { fmt, table } from "./cluster.mjs";

const OPS = Number(process.env.BENCH_OPS ?? 20_000);
const IDS = ["n1", "n2", "n3"];

const network = new MemoryNetwork();
const nodes = await Promise.all(
  IDS.map((id) =>
    RaftNode.start({
      id,
      members: IDS,
      transport: network.connect({ cluster: "bench", group: "kv", self: id }),
      storage: new MemoryRaftStorage(new MemoryDisk()),
      stateMachine: new KvStateMachine(),
      tickMs: 50,
      // A loop that keeps the event loop this busy delays the ticks; the members catch up on
      // them, and at the default 10 ticks would hold elections that the numbers must not include.
      raft: { electionTicks: 200 },
    }),
  ),
);
const leaderOf = () => nodes.find((n) => n.role() === "leader");
while (leaderOf() === undefined) await new Promise((r) => setTimeout(r, 20));
const leader = leaderOf();

const value = new Uint8Array(100).fill(7);
const put = (i) => leader.propose(encodeKvCommand({ op: "put", key: `k${i % 1000}`, value }));

/** Runs `count` operations, `concurrency` at a time; returns CPU µs per operation and ops/s. */
async function run(count, concurrency, op) {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++);
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  return { cpuUsPerOp: (cpu.user + cpu.system) / count, opsPerSecond: count / seconds };
}

await run(2_000, 1, put); // warm-up: JIT, log growth
const rows = [];
for (const [label, concurrency, op] of [
  ["put", 1, put],
  ["put", 64, put],
  ["linearizable read (ReadIndex)", 1, () => leader.readBarrier()],
]) {
  const r = await run(OPS, concurrency, op);
  rows.push([label, concurrency, fmt(r.cpuUsPerOp, 1), fmt(r.cpuUsPerOp / IDS.length, 1), fmt(r.opsPerSecond)]);
}
console.log(`Quorate host cost: 3 Raft members in one process, in-memory network and disks; ${OPS} operations per row`);
console.log(table(["operation", "in flight", "cpu µs/op (3 members)", "per member", "ops/s"], rows));
await Promise.all(nodes.map((n) => n.stop()));
