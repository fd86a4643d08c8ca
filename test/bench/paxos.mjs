#!/usr/bin/env node
// Benchmark: KV puts against a 3-member Multi-Paxos cluster and a 3-member Raft cluster, in one
// run, at 1, 16 and 256 concurrent KvClients (closed loop). Not a test: it prints numbers.
// Run with `pnpm bench:paxos` (builds first; imports dist). Starts its own nats-server (from PATH)
// on a free loopback port and `quorate node` processes with LMDB storage (fsync on). The two
// clusters run one after the other, so they never compete for the machine's cores.
//   BENCH_MEASURE_MS=5000
import { fmt, runWorkload, startMembers, startNatsServer, table } from "./cluster.mjs";

const CONCURRENCY = [1, 16, 256];
const WARMUP_MS = 1_000;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 5_000);
const CLIENTS_PER_CONNECTION = 16;

// A hard stop: whatever happens, the benchmark ends.
const watchdog = setTimeout(() => {
  console.error("benchmark exceeded 5 minutes; aborting");
  process.exit(2);
}, 300_000);

const nats = await startNatsServer();
const results = {};
for (const protocol of ["paxos", "raft"]) {
  const cluster = `bench${protocol}`;
  const members = await startMembers({ protocol, cluster, ids: ["n1", "n2", "n3"], urls: nats.urls });
  results[protocol] = {};
  for (const concurrency of CONCURRENCY) {
    const r = await runWorkload({
      urls: nats.urls,
      cluster,
      concurrency,
      seconds: MEASURE_MS / 1000,
      warmupSeconds: WARMUP_MS / 1000,
      clientsPerConnection: CLIENTS_PER_CONNECTION,
      // Each client puts, waits for the reply, puts again, over 100 keys of its own.
      op: (client, _i, worker, round) => client.put(`k${worker}-${round % 100}`, `value-${round}`),
    });
    results[protocol][concurrency] = r;
    console.error(`${protocol} c=${concurrency}: ${r.opsPerSecond.toFixed(0)} ops/s p50 ${r.p50.toFixed(1)} ms`);
  }
  await members.stop();
}
nats.stop();

console.log(`KV put, 3 members, LMDB fsync on, ${MEASURE_MS / 1000} s per point (closed loop)`);
console.log(
  table(
    ["clients", "paxos ops/s", "p50 ms", "p99 ms", "raft ops/s", "p50 ms", "p99 ms", "errors paxos/raft"],
    CONCURRENCY.map((concurrency) => {
      const p = results.paxos[concurrency];
      const r = results.raft[concurrency];
      return [
        concurrency,
        fmt(p.opsPerSecond),
        fmt(p.p50, 1),
        fmt(p.p99, 1),
        fmt(r.opsPerSecond),
        fmt(r.p50, 1),
        fmt(r.p99, 1),
        `${p.errors}/${r.errors}`,
      ];
    }),
  ),
);
clearTimeout(watchdog);
process.exit(0);
