#!/usr/bin/env node
// Benchmark: KV puts and linearizable gets against a 3-member Multi-Paxos cluster and a 3-member
// Raft cluster, in one run, at 1, 16 and 256 concurrent KvClients (closed loop), with the
// Paxos/Raft ratios the "within 10%" goal is judged by. Not a test: it prints numbers.
// Run with `pnpm bench:paxos` (builds first; imports dist). Starts its own nats-server (from PATH)
// on a free loopback port and `quorate node` processes with LMDB storage (fsync on). The two
// clusters run one after the other, so they never compete for the machine's cores.
//   BENCH_MEASURE_MS=5000 BENCH_CONCURRENCY=1,16,256 BENCH_OPS=put,get
import { fmt, runWorkload, startMembers, startNatsServer, table } from "./cluster.mjs";

const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,16,256").split(",").map(Number);
const OPS = (process.env.BENCH_OPS ?? "put,get").split(",");
const WARMUP_MS = 1_000;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 5_000);
const CLIENTS_PER_CONNECTION = 16;

// A hard stop: whatever happens, the benchmark ends.
const watchdog = setTimeout(() => {
  console.error("benchmark exceeded 10 minutes; aborting");
  process.exit(2);
}, 600_000);

const nats = await startNatsServer();
const results = {};
for (const protocol of ["paxos", "raft"]) {
  const cluster = `bench${protocol}`;
  const members = await startMembers({ protocol, cluster, ids: ["n1", "n2", "n3"], urls: nats.urls });
  results[protocol] = {};
  for (const op of OPS) {
    for (const concurrency of CONCURRENCY) {
      const r = await runWorkload({
        urls: nats.urls,
        cluster,
        concurrency,
        seconds: MEASURE_MS / 1000,
        warmupSeconds: WARMUP_MS / 1000,
        clientsPerConnection: CLIENTS_PER_CONNECTION,
        // Each client puts (or gets), waits for the reply, and goes again, over 100 keys of its own.
        op: (client, _i, worker, round) =>
          op === "put"
            ? client.put(`k${worker}-${round % 100}`, `value-${round}`)
            : client.get(`k${worker}-${round % 100}`),
      });
      results[protocol][`${op} ${concurrency}`] = r;
      console.error(
        `${protocol} ${op} c=${concurrency}: ${r.opsPerSecond.toFixed(0)} ops/s p50 ${r.p50.toFixed(2)} ms`,
      );
    }
  }
  await members.stop();
}
nats.stop();

console.log(`KV ${OPS.join(" and ")}, 3 members, LMDB fsync on, ${MEASURE_MS / 1000} s per point (closed loop)`);
console.log(
  table(
    [
      "op",
      "clients",
      "paxos ops/s",
      "p50 ms",
      "p99 ms",
      "raft ops/s",
      "p50 ms",
      "p99 ms",
      "paxos/raft ops/s",
      "raft/paxos p50",
      "errors paxos/raft",
    ],
    OPS.flatMap((op) =>
      CONCURRENCY.map((concurrency) => {
        const p = results.paxos[`${op} ${concurrency}`];
        const r = results.raft[`${op} ${concurrency}`];
        return [
          op,
          concurrency,
          fmt(p.opsPerSecond),
          fmt(p.p50, 2),
          fmt(p.p99, 1),
          fmt(r.opsPerSecond),
          fmt(r.p50, 2),
          fmt(r.p99, 1),
          fmt(p.opsPerSecond / r.opsPerSecond, 2),
          fmt(r.p50 / p.p50, 2),
          `${p.errors}/${r.errors}`,
        ];
      }),
    ),
  ),
);
clearTimeout(watchdog);
process.exit(0);
