#!/usr/bin/env node
// Raft put throughput and latency at 1, 16 and 256 concurrent clients: 3 members on a local
// 3-server NATS cluster, fsync on (LMDB, durable before every ack). Then the same at 16 clients
// with every round traced and exported, to show what tracing costs. Prints numbers; not a test.
//   pnpm bench:raft            BENCH_SECONDS=10 BENCH_WARMUP=2 BENCH_CONCURRENCY=1,16,256
import { fmt, runWorkload, startMembers, startNatsCluster, startTraceSink, table } from "./cluster.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const LEVELS = (process.env.BENCH_CONCURRENCY ?? "1,16,256").split(",").map(Number);
const VALUE = "x".repeat(100);

const watchdog = setTimeout(() => {
  console.error("benchmark exceeded 15 minutes; aborting");
  process.exit(2);
}, 15 * 60_000);

async function measure(label, env, levels, nats) {
  const cluster = `bench${Math.random().toString(36).slice(2, 8)}`;
  const members = await startMembers({ cluster, ids: ["n1", "n2", "n3"], urls: nats.urls, env });
  const rows = [];
  try {
    for (const concurrency of levels) {
      const result = await runWorkload({
        urls: nats.urls,
        cluster,
        concurrency,
        seconds: SECONDS,
        warmupSeconds: WARMUP,
        op: (client, i) => client.put(`k${i % 10_000}`, VALUE),
        onProgress: (ops, t) => process.stderr.write(`\r  ${label}, ${concurrency} clients: ${fmt(ops / t)} ops/s   `),
      });
      process.stderr.write("\r\x1b[K");
      rows.push({ concurrency, ...result });
    }
  } finally {
    await members.stop();
  }
  return rows;
}

const nats = await startNatsCluster(3);
console.log(
  `Quorate Raft benchmark: 3 members, 3 nats-server processes, Node ${process.version}, ${SECONDS}s per level after ${WARMUP}s warm-up`,
);
console.log("durability: LMDB, fsync (env.flushed) before every vote, ack and client reply\n");
try {
  const plain = await measure("untraced", {}, LEVELS, nats);
  console.log(
    table(
      ["clients", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"],
      plain.map((r) => [r.concurrency, fmt(r.opsPerSecond), fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.p999, 2), r.errors]),
    ),
  );
  const sink = await startTraceSink();
  const tracedLevel = [LEVELS.includes(16) ? 16 : LEVELS[0]];
  const traced = await measure(
    "traced",
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
      OTEL_TRACES_SAMPLER: "always_on",
      OTEL_METRICS_EXPORTER: "none",
    },
    tracedLevel,
    nats,
  );
  sink.close();
  const base = plain.find((r) => r.concurrency === tracedLevel[0]);
  const cost = 1 - traced[0].opsPerSecond / base.opsPerSecond;
  console.log(
    `\ntracing every round (always_on, OTLP/HTTP to a local sink) at ${tracedLevel[0]} clients: ` +
      `${fmt(traced[0].opsPerSecond)} ops/s vs ${fmt(base.opsPerSecond)} untraced: cost ${fmt(cost * 100, 1)}% (goal <= 15%)`,
  );
} finally {
  nats.stop();
  clearTimeout(watchdog);
}
