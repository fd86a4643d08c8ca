#!/usr/bin/env node
// `pnpm bench`: Quorate Raft, Quorate Multi-Paxos and JetStream KV (R3) side by side, on the
// same local 3-server NATS cluster, in one run. Prints a live progress line and a summary, and
// writes docs/benchmarks/results.md, results.json and throughput.svg. Numbers, not a test.
// With nats-server 2.10 or later, JetStream runs a second time on a cluster that fsyncs every
// write (`sync_interval: always`), like-for-like with Quorate; with an older one, the results say
// that row was not measured and why.
//   BENCH_SECONDS=5 BENCH_WARMUP=1 BENCH_CONCURRENCY=1,16,256 BENCH_MEMBERS=3,5,7 BENCH_PAYLOADS=100,1024,10240
//   BENCH_OUT=dir writes the results there instead (a quick run that leaves docs/ alone)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { Kvm } from "@nats-io/kv";
import { KvClient } from "../../packages/kv/dist/nats.js";
import { connectNats } from "../../packages/transport-nats/dist/index.js";
import {
  benchInfo,
  fmt,
  lmdbCommits,
  natsRequests,
  percentile,
  startMembers,
  startNatsCluster,
  startTraceSink,
  table,
} from "./cluster.mjs";
import { SYNC_ALWAYS_SINCE, versionAtLeast } from "./nats-version.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const LEVELS = (process.env.BENCH_CONCURRENCY ?? "1,16,256").split(",").map(Number);
const MEMBER_COUNTS = (process.env.BENCH_MEMBERS ?? "3,5,7").split(",").map(Number);
const PAYLOADS = (process.env.BENCH_PAYLOADS ?? "100,1024,10240").split(",").map(Number);
const SCALING_CLIENTS = 16;
const OUT = resolve(process.env.BENCH_OUT ?? resolve(import.meta.dirname, "../../docs/benchmarks"));

const watchdog = setTimeout(() => {
  console.error("benchmark exceeded 40 minutes; aborting");
  process.exit(2);
}, 40 * 60_000);

/** CPU seconds (user+system) and peak RSS of a process, from /proc. */
function processUsage(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return { cpuSeconds: ticks / 100, peakRssMb: Number(hwm ?? 0) / 1024 };
  } catch {
    return { cpuSeconds: 0, peakRssMb: 0 };
  }
}

function cpuByPid(pids) {
  return pids.map((pid) => processUsage(pid).cpuSeconds);
}

/** Closed loop: each worker runs `op` back to back; latencies are kept after the warm-up only. */
async function closedLoop(label, workers, op) {
  const latencies = [];
  let measuring = false;
  let stop = false;
  let errors = 0;
  let counter = 0;
  const loops = workers.map(async (worker) => {
    while (!stop) {
      const i = counter++;
      const t0 = performance.now();
      try {
        await op(worker, i);
        if (measuring) latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  measuring = true;
  const started = performance.now();
  const progress = setInterval(() => {
    const t = (performance.now() - started) / 1000;
    process.stderr.write(`\r\x1b[K  ${label}: ${fmt(latencies.length / t)} ops/s, ${fmt(t, 0)}/${SECONDS}s`);
  }, 500);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const elapsed = (performance.now() - started) / 1000;
  const count = latencies.length;
  measuring = false;
  stop = true;
  clearInterval(progress);
  process.stderr.write("\r\x1b[K");
  await Promise.all(loops);
  const sorted = latencies.slice(0, count).sort((a, b) => a - b);
  return {
    opsPerSecond: count / elapsed,
    ops: count,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    errors,
  };
}

/**
 * A system under test: how to start it, make clients, and run one put or get. Every system's
 * clients share one NATS connection, to the first server, as an application's would.
 * `tracing` names a run whose members export every span they are asked to (`env` sets the sampler).
 */
function quorateSystem(protocol, tracing) {
  const base = protocol === "raft" ? "Quorate Raft" : "Quorate Paxos";
  return {
    name: tracing === undefined ? base : `${base} (traced, ${tracing.label})`,
    durability: "fsync (LMDB flushed) before every acknowledgement",
    async start(nats, members = 3) {
      const cluster = `b${protocol}${Math.random().toString(36).slice(2, 7)}`;
      const ids = Array.from({ length: members }, (_, i) => `n${i + 1}`);
      const sink = tracing === undefined ? undefined : await startTraceSink();
      const env =
        sink === undefined
          ? {}
          : { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_METRICS_EXPORTER: "none", ...tracing.env };
      const running = await startMembers({ protocol, cluster, ids, urls: nats.urls, env });
      const connection = await connectNats({ servers: nats.urls[0] });
      return {
        pids: running.pids,
        async clients(n) {
          return Promise.all(
            Array.from({ length: n }, () => KvClient.connect({ nats: connection, cluster, timeoutMs: 30_000 })),
          );
        },
        put: (client, key, value) => client.put(key, value),
        get: (client, key) => client.get(key),
        async closeClients(clients) {
          await Promise.all(clients.map((c) => c.close()));
        },
        async stop() {
          await connection.close();
          await running.stop();
          sink?.close();
        },
      };
    },
  };
}

/** JetStream KV R3; `syncAlways` when its servers fsync every write. */
function jetstreamSystem(syncAlways) {
  return {
    name: syncAlways ? "JetStream KV R3 (fsync always)" : "JetStream KV R3 (fsync every 2 min)",
    durability: syncAlways
      ? "`sync_interval: always`, fsync before every acknowledgement; allow_direct off"
      : "nats-server default (fsync every 2 min); allow_direct off so gets go to the stream leader",
    async start(nats) {
      const connection = await connectNats({ servers: nats.urls[0] });
      const bucket = `bench${Math.random().toString(36).slice(2, 7)}`;
      const kvm = new Kvm(connection);
      // The JetStream meta leader needs a few seconds after the cluster forms.
      let created;
      for (let attempt = 0; created === undefined; attempt++) {
        try {
          created = await kvm.create(bucket, { replicas: 3, history: 1, allow_direct: false });
        } catch (err) {
          if (attempt > 60) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      const store = await kvm.open(bucket);
      return {
        pids: nats.pids,
        async clients(n) {
          return Array.from({ length: n }, () => store);
        },
        put: (kv, key, value) => kv.put(key, value),
        get: (kv, key) => kv.get(key),
        async closeClients() {},
        async stop() {
          await store.destroy().catch(() => {});
          await connection.close();
        },
      };
    },
  };
}

/** Runs puts or gets of `payload`-byte values at `concurrency` against a started system. */
async function measure(system, started, { op, concurrency, payload, label }) {
  const value = "v".repeat(payload);
  const clients = await started.clients(concurrency);
  if (op === "get") {
    // Gets read keys that exist.
    await Promise.all(Array.from({ length: 100 }, (_, i) => started.put(clients[i % clients.length], `k${i}`, value)));
  }
  const cpu0 = cpuByPid(started.pids);
  const result = await closedLoop(label, clients, (client, i) =>
    op === "put" ? started.put(client, `k${i % 1000}`, value) : started.get(client, `k${i % 100}`),
  );
  // CPU each process spent, busiest first: a Quorate leader (a JetStream stream leader), then the rest.
  const spent = cpuByPid(started.pids)
    .map((seconds, i) => seconds - cpu0[i])
    .sort((a, b) => b - a);
  const cpu = spent.reduce((a, b) => a + b, 0);
  const perOpMs = (seconds) => (result.ops > 0 ? (seconds / (result.ops + 1)) * 1000 : Number.NaN);
  await started.closeClients(clients);
  const peakRssMb = Math.max(...started.pids.map((pid) => processUsage(pid).peakRssMb));
  return {
    system: system.name,
    op,
    concurrency,
    payload,
    ...result,
    cpuMsPerOp: perOpMs(cpu),
    busiestCpuMsPerOp: perOpMs(spent[0] ?? 0),
    othersCpuMsPerOp: perOpMs(spent[1] ?? 0),
    peakRssMb,
  };
}

function svgChart(rows) {
  const puts = rows.filter((r) => r.op === "put" && r.payload === 100 && r.members === 3);
  const systems = [...new Set(puts.map((r) => r.system))];
  const colors = ["#2b6cb0", "#38a169", "#dd6b20", "#805ad5"];
  const max = Math.max(...puts.map((r) => r.opsPerSecond), 1);
  const w = 640;
  // Two legend entries per line: system names with their durability are long.
  const legendLines = Math.ceil(systems.length / 2);
  const top = 26 + legendLines * 18;
  const plot = 240;
  const h = top + plot + 40;
  const groupWidth = (w - 80) / LEVELS.length;
  const barWidth = groupWidth / (systems.length + 1);
  const bars = [];
  LEVELS.forEach((level, g) => {
    systems.forEach((system, s) => {
      const row = puts.find((r) => r.system === system && r.concurrency === level);
      const v = row?.opsPerSecond ?? 0;
      const bh = (plot * v) / max;
      const x = 60 + g * groupWidth + s * barWidth;
      bars.push(
        `<rect x="${x}" y="${top + plot - bh}" width="${barWidth - 4}" height="${bh}" fill="${colors[s]}"/>` +
          `<text x="${x + barWidth / 2 - 2}" y="${top + plot - 4 - bh}" font-size="10" text-anchor="middle">${fmt(v)}</text>`,
      );
    });
    bars.push(
      `<text x="${60 + g * groupWidth + (systems.length * barWidth) / 2}" y="${top + plot + 18}" font-size="12" text-anchor="middle">${level} clients</text>`,
    );
  });
  const legend = systems
    .map((s, i) => {
      const x = 70 + (i % 2) * 280;
      const y = 12 + Math.floor(i / 2) * 18;
      return `<rect x="${x}" y="${y}" width="12" height="12" fill="${colors[i]}"/><text x="${x + 18}" y="${y + 10}" font-size="12">${s}</text>`;
    })
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif"><title>Puts per second (100 B values) by system and concurrency</title><rect width="100%" height="100%" fill="white"/>${legend}<text x="10" y="${top + plot / 2}" font-size="12" transform="rotate(-90 10 ${top + plot / 2})">puts/s (100 B)</text>${bars.join("")}</svg>\n`;
}

// ---------------------------------------------------------------------------------------------

const info = benchInfo();
const raftSystem = quorateSystem("raft");
const paxosSystem = quorateSystem("paxos");
const jetstreamDefault = jetstreamSystem(false);
const jetstreamSync = jetstreamSystem(true);
// Every round traced (the SDK's default sampler), and the setting docs/telemetry.md recommends for production.
const tracedSystems = [
  quorateSystem("raft", { label: "every round", env: {} }),
  quorateSystem("raft", {
    label: "1% of rounds",
    env: { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.01" },
  }),
];
const syncAlways = versionAtLeast(info.natsServer, SYNC_ALWAYS_SINCE);
const notMeasured = syncAlways
  ? []
  : [
      {
        system: jetstreamSync.name,
        reason: `\`sync_interval: always\` needs nats-server ${SYNC_ALWAYS_SINCE} or later; found ${info.natsServer.replace(/^nats-server:\s*/, "")}`,
      },
    ];
const notMeasuredLines = notMeasured.map((n) => `${n.system} not measured: ${n.reason}`);
console.log(
  `pnpm bench — ${info.date}\n${info.machine}; Node ${info.node}; ${info.natsServer}; quorate ${info.quorate}`,
);
console.log(
  `${SECONDS}s per point after ${WARMUP}s warm-up; 3 nats-server processes with JetStream, clustered on loopback`,
);
for (const line of notMeasuredLines) console.log(line);
console.log();

/** Every 3-member row of one system: puts and gets at each concurrency, then puts of each payload. */
async function measureSystem(system, nats) {
  const measured = [];
  const started = await system.start(nats);
  try {
    for (const op of ["put", "get"]) {
      for (const concurrency of LEVELS) {
        const label = `${system.name} ${op} ×${concurrency}`;
        measured.push({ members: 3, ...(await measure(system, started, { op, concurrency, payload: 100, label })) });
      }
    }
    for (const payload of PAYLOADS.filter((p) => p !== 100)) {
      const label = `${system.name} put ${payload} B ×${SCALING_CLIENTS}`;
      measured.push({
        members: 3,
        ...(await measure(system, started, { op: "put", concurrency: SCALING_CLIENTS, payload, label })),
      });
    }
  } finally {
    await started.stop();
  }
  return measured;
}

/** Raft puts with tracing on, at 1 client and at the highest concurrency: what tracing costs. */
async function measureTracing(system, nats) {
  const measured = [];
  const started = await system.start(nats);
  try {
    for (const concurrency of [1, Math.max(...LEVELS)]) {
      const label = `${system.name} put ×${concurrency}`;
      measured.push({
        members: 3,
        ...(await measure(system, started, { op: "put", concurrency, payload: 100, label })),
      });
    }
  } finally {
    await started.stop();
  }
  return measured;
}

/**
 * Untraced Raft puts at the highest concurrency, measured right before a traced run: tracing's
 * cost is the ratio within that pair. Against the untraced rows of minutes earlier, a load that
 * drifted on the shared machine read as tracing's cost (the 1%-sampled row once showed 36% that
 * an interleaved run put at the noise, about 0).
 */
async function measureUntracedPair(nats) {
  const started = await raftSystem.start(nats);
  try {
    const concurrency = Math.max(...LEVELS);
    return await measure(raftSystem, started, {
      op: "put",
      concurrency,
      payload: 100,
      label: `${raftSystem.name} put ×${concurrency} (untraced pair)`,
    });
  } finally {
    await started.stop();
  }
}

const rows = [];
/** Per traced system, the untraced run measured just before it. */
const tracingPairs = new Map();
let roundTrip = Number.NaN;
const lmdbCommit = percentile(await lmdbCommits({ count: 1000 }), 50);
const nats = await startNatsCluster(3, { jetstream: true });
try {
  roundTrip = percentile((await natsRequests(nats.urls, { count: 1800, bytes: 100, warmup: 200 })).samples, 50);
  for (const system of [raftSystem, paxosSystem, jetstreamDefault]) rows.push(...(await measureSystem(system, nats)));
  for (const system of tracedSystems) {
    tracingPairs.set(system, await measureUntracedPair(nats));
    rows.push(...(await measureTracing(system, nats)));
  }
  for (const system of [raftSystem, paxosSystem]) {
    for (const members of MEMBER_COUNTS.filter((m) => m !== 3)) {
      const started = await system.start(nats, members);
      try {
        const label = `${system.name} ${members} members put ×${SCALING_CLIENTS}`;
        rows.push({
          members,
          ...(await measure(system, started, { op: "put", concurrency: SCALING_CLIENTS, payload: 100, label })),
        });
      } finally {
        await started.stop();
      }
    }
  }
} finally {
  nats.stop();
}
if (syncAlways) {
  // Its own cluster: the sync interval is a server setting, which the other rows must not pay for.
  const synced = await startNatsCluster(3, { jetstream: true, syncAlways: true });
  try {
    rows.push(...(await measureSystem(jetstreamSync, synced)));
  } finally {
    synced.stop();
  }
}
// Stable: the 3-member rows of every system first, in the order they ran.
rows.sort((a, b) => a.members - b.members);

const jetstreams = [jetstreamDefault, jetstreamSync];
const baselines = [
  [jetstreamDefault, "vs JetStream"],
  [jetstreamSync, "vs JetStream always"],
].filter(([system]) => rows.some((r) => r.system === system.name));
const baselineRow = (system, r) =>
  rows.find(
    (x) =>
      x.system === system.name &&
      x.op === r.op &&
      x.concurrency === r.concurrency &&
      x.payload === r.payload &&
      x.members === 3,
  );
const header = [
  "system",
  "op",
  "members",
  "clients",
  "payload",
  "ops/s",
  "p50 ms",
  "p99 ms",
  "p99.9 ms",
  "cpu ms/op",
  "busiest cpu ms/op",
  "next cpu ms/op",
  "peak RSS MB",
  ...baselines.map(([, label]) => label),
  "errors",
];
const body = rows.map((r) => {
  const ratios = baselines.map(([system]) => {
    const base = baselineRow(system, r);
    return base && !jetstreams.some((j) => j.name === r.system) ? `${fmt(r.opsPerSecond / base.opsPerSecond, 2)}×` : "";
  });
  return [
    r.system,
    r.op,
    r.members,
    r.concurrency,
    `${r.payload} B`,
    fmt(r.opsPerSecond),
    fmt(r.p50, 2),
    fmt(r.p99, 2),
    fmt(r.p999, 2),
    fmt(r.cpuMsPerOp, 3),
    fmt(r.busiestCpuMsPerOp, 3),
    fmt(r.othersCpuMsPerOp, 3),
    fmt(r.peakRssMb, 0),
    ...ratios,
    r.errors,
  ];
});
console.log(table(header, body));
for (const line of notMeasuredLines) console.log(line);

/** The 3-member, 100 B row of `system` for `op` at `concurrency`. */
const row = (system, op, concurrency) =>
  rows.find(
    (r) =>
      r.system === system.name && r.op === op && r.concurrency === concurrency && r.payload === 100 && r.members === 3,
  );
const ratio = (a, b) => (a !== undefined && b !== undefined ? a / b : Number.NaN);
const top = Math.max(...LEVELS);
const raftPut1 = row(raftSystem, "put", 1);
const raftGet1 = row(raftSystem, "get", 1);
const raftPutTop = row(raftSystem, "put", top);
const putFloor = 2 * roundTrip + lmdbCommit;
/** Worst Paxos/Raft ratio over the 3-member 100 B rows: throughput (higher is better) and p50 (Raft's over Paxos's). */
const paxosVsRaft = (metric) =>
  Math.min(
    ...["put", "get"].flatMap((op) =>
      LEVELS.map((c) => {
        const raft = row(raftSystem, op, c);
        const paxos = row(paxosSystem, op, c);
        return metric === "throughput" ? ratio(paxos?.opsPerSecond, raft?.opsPerSecond) : ratio(raft?.p50, paxos?.p50);
      }),
    ),
  );
/** 1 − traced ops/s over the untraced run measured just before it. */
const tracingCostOf = (system) =>
  1 - ratio(row(system, "put", top)?.opsPerSecond, tracingPairs.get(system)?.opsPerSecond);
const tracingCost = tracingCostOf(tracedSystems[0]);
/** [goal, met, detail]; a goal whose baseline was not measured is missed, and says so. */
const goal = (text, value, met, detail) => [
  text,
  Number.isFinite(value) && met,
  Number.isFinite(value) ? detail : "not measured",
];
const goals = [
  goal(
    `1-client put p50 ≤ ${jetstreamSync.name} 1-client put p50`,
    ratio(raftPut1?.p50, row(jetstreamSync, "put", 1)?.p50),
    raftPut1?.p50 <= row(jetstreamSync, "put", 1)?.p50,
    `${fmt(raftPut1?.p50, 2)} ms vs ${fmt(row(jetstreamSync, "put", 1)?.p50, 2)} ms`,
  ),
  goal(
    "1-client put p50 ≤ 1.3 × (two NATS round trips + one durable LMDB commit)",
    raftPut1?.p50,
    raftPut1?.p50 <= 1.3 * putFloor,
    `${fmt(raftPut1?.p50, 2)} ms vs 2 × ${fmt(roundTrip, 3)} + ${fmt(lmdbCommit, 3)} ms = ${fmt(ratio(raftPut1?.p50, putFloor), 2)}×`,
  ),
  goal(
    "1-client linearizable get p50 ≤ 1.3 × two NATS round trips",
    raftGet1?.p50,
    raftGet1?.p50 <= 1.3 * 2 * roundTrip,
    `${fmt(raftGet1?.p50, 2)} ms vs 2 × ${fmt(roundTrip, 3)} ms = ${fmt(ratio(raftGet1?.p50, 2 * roundTrip), 2)}×`,
  ),
  goal(
    `${top} clients on one connection: Raft puts ≥ 2.0 × ${jetstreamSync.name}`,
    ratio(raftPutTop?.opsPerSecond, row(jetstreamSync, "put", top)?.opsPerSecond),
    ratio(raftPutTop?.opsPerSecond, row(jetstreamSync, "put", top)?.opsPerSecond) >= 2,
    `${fmt(ratio(raftPutTop?.opsPerSecond, row(jetstreamSync, "put", top)?.opsPerSecond), 2)}×`,
  ),
  goal(
    `${top} clients on one connection: Raft puts ≥ 1.0 × ${jetstreamDefault.name}`,
    ratio(raftPutTop?.opsPerSecond, row(jetstreamDefault, "put", top)?.opsPerSecond),
    ratio(raftPutTop?.opsPerSecond, row(jetstreamDefault, "put", top)?.opsPerSecond) >= 1,
    `${fmt(ratio(raftPutTop?.opsPerSecond, row(jetstreamDefault, "put", top)?.opsPerSecond), 2)}×`,
  ),
  goal(
    "CPU per committed put at 1 client ≤ 0.3 ms per member (leader and follower each)",
    raftPut1?.busiestCpuMsPerOp,
    raftPut1?.busiestCpuMsPerOp <= 0.3 && raftPut1?.othersCpuMsPerOp <= 0.3,
    `leader ${fmt(raftPut1?.busiestCpuMsPerOp, 3)} ms, follower ${fmt(raftPut1?.othersCpuMsPerOp, 3)} ms`,
  ),
  goal(
    "Multi-Paxos within 10% of Raft: throughput",
    paxosVsRaft("throughput"),
    paxosVsRaft("throughput") >= 0.9,
    `worst Paxos/Raft ops/s ${fmt(paxosVsRaft("throughput"), 2)}×`,
  ),
  goal(
    "Multi-Paxos within 10% of Raft: latency",
    paxosVsRaft("latency"),
    paxosVsRaft("latency") >= 0.9,
    `worst Raft p50 / Paxos p50 ${fmt(paxosVsRaft("latency"), 2)}×`,
  ),
  goal(
    `Tracing every round costs ≤ 15% of Raft put throughput at ${top} clients`,
    tracingCost,
    tracingCost <= 0.15,
    `${fmt(100 * tracingCost, 0)}% (1% sampled: ${fmt(100 * tracingCostOf(tracedSystems[1]), 0)}%), each against an untraced run just before it`,
  ),
];
console.log("\nGoals:");
for (const [goal, met, detail] of goals) console.log(`  ${met ? "MET   " : "MISSED"} ${goal}: ${detail}`);

mkdirSync(OUT, { recursive: true });
writeFileSync(
  resolve(OUT, "results.json"),
  `${JSON.stringify({ info, roundTripMs: roundTrip, lmdbCommitMs: lmdbCommit, rows, tracingPairs: tracedSystems.map((system) => ({ traced: system.name, untraced: tracingPairs.get(system) })), notMeasured, goals }, null, 2)}\n`,
);
writeFileSync(resolve(OUT, "throughput.svg"), svgChart(rows));
const md = [
  "# Benchmark results",
  "",
  `Command: \`pnpm bench\` (test/bench/suite.mjs), ${SECONDS}s per point after ${WARMUP}s warm-up.`,
  "Log compaction, leadership transfer and catch-up have their own benchmark: [compaction.md](compaction.md).",
  "",
  `Run ${info.date} on ${info.machine}; Node ${info.node}; ${info.natsServer}; quorate ${info.quorate}.`,
  "Three nats-server processes with JetStream, routed on loopback; clients, members and servers share the machine.",
  "",
  "Durability:",
  ...[raftSystem, paxosSystem, jetstreamDefault, ...(syncAlways ? [jetstreamSync] : [])].map(
    (s) => `- ${s.name}: ${s.durability}.`,
  ),
  ...notMeasuredLines.map((line) => `- ${line}.`),
  "",
  "![puts per second](throughput.svg)",
  "",
  `| ${header.join(" | ")} |`,
  `| ${header.map(() => "---").join(" | ")} |`,
  ...body.map((r) => `| ${r.join(" | ")} |`),
  "",
  `Floors measured in the same run: a NATS request/reply round trip ${fmt(roundTrip, 3)} ms (p50, between two servers); a durable LMDB commit of one 100 B entry ${fmt(lmdbCommit, 3)} ms (p50).`,
  "CPU columns: the whole system's CPU per operation, then its busiest process (a Quorate leader; the JetStream stream leader) and the next one.",
  "",
  "## Goals",
  "",
  ...goals.map(([goal, met, detail]) => `- ${met ? "**met**" : "**missed**"}: ${goal} (${detail})`),
  "",
].join("\n");
writeFileSync(resolve(OUT, "results.md"), md);
console.log(`\nwrote ${resolve(OUT, "results.md")}, results.json, throughput.svg`);
clearTimeout(watchdog);
process.exit(0);
