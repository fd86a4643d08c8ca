#!/usr/bin/env node
// `pnpm bench:coordination`: what the coordination recipes cost on a local 3-server NATS cluster
// with 3 Quorate members, with JetStream KV (R3) on the same servers as the baseline, in one run.
//   1. Watch delivery latency after commit, with 1 and 100 watchers on one key prefix: a writer
//      puts one value after another (a pause between them); every watcher records when each
//      revision reaches it. Latency = receipt − the put's acknowledgement, and receipt − put start.
//   2. Lock acquire+release cycles per second under contention (1, 8, 64 clients on one lock),
//      @quorate/concurrency's Mutex, a lease per client. JetStream KV has no lock: no baseline.
// Writes docs/benchmarks/coordination.md. Numbers, not a test.
//   BENCH_SECONDS=5 BENCH_WARMUP=1 BENCH_WATCHERS=1,100 BENCH_WRITE_PAUSE_MS=10
//   BENCH_LOCK_CLIENTS=1,8,64 BENCH_PROTOCOLS=raft,paxos BENCH_LEASE_TTL_MS=10000
//   BENCH_OUT=dir writes the results there instead (a quick run that leaves docs/ alone)
import { execFileSync } from "node:child_process";
import { setMaxListeners } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { Kvm } from "@nats-io/kv";
import { Mutex } from "../../packages/concurrency/dist/index.js";
import { KvClient } from "../../packages/kv/dist/nats.js";
import { connectNats } from "../../packages/transport-nats/dist/index.js";
import { benchInfo, fmt, percentile, startMembers, startNatsCluster, table } from "./cluster.mjs";
import { SYNC_ALWAYS_SINCE, versionAtLeast } from "./nats-version.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const WATCHERS = (process.env.BENCH_WATCHERS ?? "1,100").split(",").map(Number);
const WRITE_PAUSE_MS = Number(process.env.BENCH_WRITE_PAUSE_MS ?? 10);
const LOCK_CLIENTS = (process.env.BENCH_LOCK_CLIENTS ?? "1,8,64").split(",").map(Number);
const PROTOCOLS = (process.env.BENCH_PROTOCOLS ?? "raft,paxos").split(",");
const LEASE_TTL_MS = Number(process.env.BENCH_LEASE_TTL_MS ?? 10_000);
const OUT = resolve(process.env.BENCH_OUT ?? resolve(import.meta.dirname, "../../docs/benchmarks"));
/** How long watchers may take, after the last put, to receive what they have not yet. */
const DRAIN_MS = 5_000;
/** Keys the writer cycles through, all under the watched prefix. */
const KEYS = 16;
const VALUE = "v".repeat(100);
/** Lock clients share up to this many NATS connections, round-robin over the servers. */
const MAX_LOCK_CONNECTIONS = 8;

const watchdog = setTimeout(() => {
  console.error("benchmark exceeded 15 minutes; aborting");
  process.exit(2);
}, 15 * 60_000);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const protocolName = (protocol) => (protocol === "raft" ? "Quorate Raft" : "Quorate Paxos");
const JETSTREAM = "JetStream KV R3 (fsync every 2 min)";
const JETSTREAM_SYNC = "JetStream KV R3 (fsync always)";

/** Sorted latencies' p50/p99 and how many. */
function summary(samples) {
  const sorted = samples.sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

/**
 * The watch measurement against one system: `watchers` watches on the prefix, then a paced
 * writer (put, acknowledgement, WRITE_PAUSE_MS pause) for WARMUP + SECONDS; the puts started
 * after the warm-up are measured. `system.watch(i, onEvent)` starts watcher i and resolves once
 * it is set up; `system.put(key, value)` resolves with the revision; `stop()` ends the watches.
 */
async function measureWatch(system, watchers, label) {
  const received = Array.from({ length: watchers }, () => new Map());
  let lastRevision = 0;
  let allSeen = null;
  const seenLast = () => received.every((r) => r.has(lastRevision));
  for (let i = 0; i < watchers; i++) {
    await system.watch(i, (revision) => {
      received[i].set(revision, performance.now());
      if (allSeen !== null && revision === lastRevision && seenLast()) allSeen();
    });
  }
  const puts = [];
  const putMs = [];
  const started = performance.now();
  const measureFrom = started + WARMUP * 1000;
  const end = measureFrom + SECONDS * 1000;
  let errors = 0;
  for (let i = 0; performance.now() < end; i++) {
    const sentAt = performance.now();
    try {
      const revision = await system.put(`bench.k${i % KEYS}`, VALUE);
      const ackAt = performance.now();
      lastRevision = revision;
      if (sentAt >= measureFrom) {
        puts.push({ revision, sentAt, ackAt });
        putMs.push(ackAt - sentAt);
      }
    } catch {
      errors++;
    }
    if (i % 50 === 0) process.stderr.write(`\r\x1b[K  ${label}: ${puts.length} puts measured`);
    await sleep(WRITE_PAUSE_MS);
  }
  process.stderr.write("\r\x1b[K");
  if (!seenLast()) {
    await Promise.race([
      new Promise((r) => {
        allSeen = r;
      }),
      sleep(DRAIN_MS),
    ]);
  }
  await system.stop();
  const afterAck = [];
  const afterStart = [];
  let missing = 0;
  for (const { revision, sentAt, ackAt } of puts) {
    for (const r of received) {
      const at = r.get(revision);
      if (at === undefined) {
        missing++;
        continue;
      }
      afterAck.push(at - ackAt);
      afterStart.push(at - sentAt);
    }
  }
  return {
    watchers,
    puts: puts.length,
    deliveries: afterAck.length,
    missing,
    errors,
    afterAck: summary(afterAck),
    afterStart: summary(afterStart),
    put: summary(putMs),
  };
}

/** Watchers on KvClients, one client per NATS server; the writer on a connection of its own. */
async function quorateWatchSystem(urls, cluster) {
  const connections = await Promise.all(urls.map((url) => connectNats({ servers: url })));
  const clients = await Promise.all(
    connections.map((nc) => KvClient.connect({ nats: nc, cluster, timeoutMs: 30_000 })),
  );
  const writer = await KvClient.connect({ nats: { servers: urls[0] }, cluster, timeoutMs: 30_000 });
  const watches = [];
  const loops = [];
  return {
    async watch(i, onEvent) {
      const watch = clients[i % clients.length].watch({ prefix: "bench." });
      watches.push(watch);
      loops.push(
        (async () => {
          for await (const event of watch) onEvent(event.revision);
        })().catch((err) => console.error(`watcher ${i} failed: ${err.message}`)),
      );
    },
    put: (key, value) => writer.put(key, value),
    async stop() {
      await Promise.all(watches.map((w) => w.return()));
      await Promise.all(loops);
      await writer.close();
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(connections.map((c) => c.close()));
    },
  };
}

/**
 * A JetStream KV R3 bucket, one handle per server for the watchers and
 * one on a connection of its own for the writer; `destroy()` removes it.
 */
async function jetstreamBucket(urls) {
  const connections = await Promise.all(urls.map((url) => connectNats({ servers: url })));
  const writerConnection = await connectNats({ servers: urls[0] });
  const bucket = `bench${Math.random().toString(36).slice(2, 7)}`;
  // The JetStream meta leader needs a few seconds after the cluster forms.
  let writer;
  for (let attempt = 0; writer === undefined; attempt++) {
    try {
      writer = await new Kvm(writerConnection).create(bucket, { replicas: 3, history: 1 });
    } catch (err) {
      if (attempt > 60) throw err;
      await sleep(500);
    }
  }
  const stores = await Promise.all(connections.map((nc) => new Kvm(nc).open(bucket)));
  return {
    stores,
    writer,
    async destroy() {
      await writer.destroy().catch(() => {});
      await Promise.all([...connections, writerConnection].map((c) => c.close()));
    },
  };
}

/** Watches on a JetStream bucket: ordered push consumers, updates only, spread over the servers. */
function jetstreamWatchSystem({ stores, writer }) {
  const iterators = [];
  const loops = [];
  return {
    async watch(i, onEvent) {
      const iterator = await stores[i % stores.length].watch({ key: "bench.>", include: "updates" });
      iterators.push(iterator);
      loops.push(
        (async () => {
          for await (const entry of iterator) onEvent(entry.revision);
        })().catch((err) => console.error(`watcher ${i} failed: ${err.message}`)),
      );
    },
    put: (key, value) => writer.put(key, value),
    async stop() {
      for (const iterator of iterators) iterator.stop();
      await Promise.all(loops);
    },
  };
}

/**
 * Closed loop: `clients` KvClients, each with its own lease, lock and unlock the same Mutex one
 * cycle after another for WARMUP + SECONDS. Also checks what the lock promises while it runs:
 * never two holders at once, and each holder's fencing token above the one before.
 */
async function measureLocks(urls, cluster, clients, label) {
  const connections = await Promise.all(
    Array.from({ length: Math.min(MAX_LOCK_CONNECTIONS, clients) }, (_, i) =>
      connectNats({ servers: urls[i % urls.length] }),
    ),
  );
  const kvs = await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      KvClient.connect({ nats: connections[i % connections.length], cluster, timeoutMs: 30_000 }),
    ),
  );
  const leases = await Promise.all(kvs.map((kv) => kv.lease(LEASE_TTL_MS)));
  const name = `bench-${clients}-${Math.random().toString(36).slice(2, 7)}`;
  const stop = new AbortController();
  // Every waiting client listens on the one signal.
  setMaxListeners(2 * clients, stop.signal);
  const cycles = [];
  let measuring = false;
  let holders = 0;
  let overlaps = 0;
  let lastToken = 0;
  let tokenRegressions = 0;
  let errors = 0;
  const workers = kvs.map(async (kv, i) => {
    const mutex = new Mutex(kv);
    while (!stop.signal.aborted) {
      const t0 = performance.now();
      try {
        const lock = await mutex.lock(name, { lease: leases[i], signal: stop.signal });
        if (++holders > 1) overlaps++;
        if (lock.token <= lastToken) tokenRegressions++;
        lastToken = lock.token;
        // Held across a turn of the event loop, so that another client's lock resolving now would show.
        await new Promise((r) => setImmediate(r));
        holders--;
        await lock.unlock();
        if (measuring) cycles.push(performance.now() - t0);
      } catch {
        if (!stop.signal.aborted) errors++;
      }
    }
  });
  await sleep(WARMUP * 1000);
  measuring = true;
  const started = performance.now();
  const progress = setInterval(() => {
    const t = (performance.now() - started) / 1000;
    process.stderr.write(`\r\x1b[K  ${label}: ${fmt(cycles.length / t)} cycles/s, ${fmt(t)}/${SECONDS}s`);
  }, 500);
  await sleep(SECONDS * 1000);
  const elapsed = (performance.now() - started) / 1000;
  const count = cycles.length;
  measuring = false;
  clearInterval(progress);
  process.stderr.write("\r\x1b[K");
  stop.abort();
  await Promise.all(workers);
  await Promise.all(leases.map((l) => l.revoke().catch(() => false)));
  await Promise.all(kvs.map((kv) => kv.close()));
  await Promise.all(connections.map((c) => c.close()));
  return {
    clients,
    cycles: count,
    cyclesPerSecond: count / elapsed,
    ...summary(cycles.slice(0, count)),
    errors,
    overlaps,
    tokenRegressions,
  };
}

// ---------------------------------------------------------------------------------------------

const info = benchInfo();
const commit = (() => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
})();
const load = loadavg()[0];
const cores = Number(/^(\d+) ×/.exec(info.machine)?.[1] ?? 1);
const loadNote =
  `1-minute load average at the start: ${fmt(load, 1)} on ${cores} cores` +
  (load > cores / 2
    ? ": the machine was busy with other work, so absolute numbers are noisy; each baseline ran in the same run"
    : "");
console.log(
  `pnpm bench:coordination — ${info.date}\n${info.machine}; Node ${info.node}; ${info.natsServer}; quorate ${info.quorate}`,
);
const syncAlways = versionAtLeast(info.natsServer, SYNC_ALWAYS_SINCE);
const notMeasured = syncAlways
  ? ""
  : `${JETSTREAM_SYNC} not measured: \`sync_interval: always\` needs nats-server ${SYNC_ALWAYS_SINCE} or later`;
console.log(`${loadNote}\n`);
if (notMeasured) console.log(`${notMeasured}\n`);

const watchRows = [];
const lockRows = [];

/** The JetStream watch rows, on a fresh cluster's bucket (one for every watcher count). */
async function measureJetstream(system, urls) {
  const bucket = await jetstreamBucket(urls);
  try {
    for (const watchers of WATCHERS) {
      const label = `${system} watch ×${watchers}`;
      watchRows.push({ system, ...(await measureWatch(jetstreamWatchSystem(bucket), watchers, label)) });
    }
  } finally {
    await bucket.destroy();
  }
}

if (syncAlways) {
  // Its own cluster: the sync interval is a server setting, which the other rows must not pay for.
  const synced = await startNatsCluster(3, { jetstream: true, syncAlways: true });
  try {
    await measureJetstream(JETSTREAM_SYNC, synced.urls);
  } finally {
    synced.stop();
  }
}
const nats = await startNatsCluster(3, { jetstream: true });
try {
  // JetStream first, while its cluster is fresh.
  await measureJetstream(JETSTREAM, nats.urls);
  for (const protocol of PROTOCOLS) {
    const cluster = `c${protocol}${Math.random().toString(36).slice(2, 7)}`;
    const members = await startMembers({ protocol, cluster, ids: ["n1", "n2", "n3"], urls: nats.urls });
    try {
      for (const watchers of WATCHERS) {
        const system = await quorateWatchSystem(nats.urls, cluster);
        const label = `${protocolName(protocol)} watch ×${watchers}`;
        watchRows.push({ system: protocolName(protocol), ...(await measureWatch(system, watchers, label)) });
      }
      for (const clients of LOCK_CLIENTS) {
        const label = `${protocolName(protocol)} lock ×${clients}`;
        lockRows.push({ system: protocolName(protocol), ...(await measureLocks(nats.urls, cluster, clients, label)) });
      }
    } finally {
      await members.stop();
    }
  }
} finally {
  nats.stop();
}

const watchHeader = [
  "system",
  "watchers",
  "puts",
  "deliveries",
  "missing",
  "ack → receipt p50 ms",
  "ack → receipt p99 ms",
  "put start → receipt p50 ms",
  "put start → receipt p99 ms",
  "put p50 ms",
  "put errors",
];
const watchBody = watchRows.map((r) => [
  r.system,
  r.watchers,
  r.puts,
  r.deliveries,
  r.missing,
  fmt(r.afterAck.p50, 2),
  fmt(r.afterAck.p99, 2),
  fmt(r.afterStart.p50, 2),
  fmt(r.afterStart.p99, 2),
  fmt(r.put.p50, 2),
  r.errors,
]);
const lockHeader = [
  "system",
  "clients",
  "cycles",
  "cycles/s",
  "cycle p50 ms",
  "cycle p99 ms",
  "errors",
  "overlapping holds",
  "token regressions",
];
const lockBody = lockRows.map((r) => [
  r.system,
  r.clients,
  r.cycles,
  fmt(r.cyclesPerSecond),
  fmt(r.p50, 2),
  fmt(r.p99, 2),
  r.errors,
  r.overlaps,
  r.tokenRegressions,
]);
console.log("1. Watch delivery latency after commit (one key prefix, a paced writer)");
console.log(table(watchHeader, watchBody));
console.log(
  "\n2. Mutex acquire+release cycles, all clients on one lock (no JetStream baseline: JetStream KV has no lock)",
);
console.log(table(lockHeader, lockBody));

const markdownTable = (header, body) => [
  `| ${header.join(" | ")} |`,
  `| ${header.map(() => "---").join(" | ")} |`,
  ...body.map((r) => `| ${r.join(" | ")} |`),
];
const md = [
  "# Coordination: watch latency and lock throughput",
  "",
  "Command: `pnpm bench:coordination` (test/bench/coordination.mjs). Numbers, not a test; each",
  "baseline ran in the same run. Knobs: `BENCH_SECONDS` (5) and `BENCH_WARMUP` (1) per point,",
  "`BENCH_WATCHERS` (1,100), `BENCH_WRITE_PAUSE_MS` (10), `BENCH_LOCK_CLIENTS` (1,8,64),",
  "`BENCH_PROTOCOLS` (raft,paxos), `BENCH_LEASE_TTL_MS` (10000), `BENCH_OUT` (write elsewhere).",
  "",
  `Run ${info.date} on ${info.machine}; Node ${info.node}; ${info.natsServer}; quorate ${info.quorate} at commit ${commit};`,
  `${SECONDS}s per point after ${WARMUP}s warm-up. Three nats-server processes with JetStream, routed on`,
  "loopback; 3 Quorate members (fsync before every acknowledgement) on them; clients, members and",
  `servers share the machine. ${loadNote}.`,
  "",
  "## 1. Watch delivery latency after commit",
  "",
  `One writer puts 100 B values to ${KEYS} keys under the prefix \`bench.\`, one at a time: put, wait`,
  `for the acknowledgement, pause ${WRITE_PAUSE_MS} ms. Every watcher follows the whole prefix and records`,
  "when each revision reaches it; the puts started after the warm-up are measured, for every",
  "watcher. **ack → receipt** is receipt minus the moment the put was acknowledged to the writer",
  "(negative when the event overtakes the reply); **put start → receipt** counts from the call.",
  "Watchers share one client process and one connection per server (the writer has its own), so",
  "with 100 watchers the later ones also wait for the process to hand the event to the earlier ones;",
  "both systems pay that alike. Quorate watchers use `KvClient.watch({ prefix })`; the baseline is",
  'JetStream KV R3 with `kv.watch({ key: "bench.>", include: "updates" })` (an ordered push',
  "consumer per watcher) on the same servers with nats-server's default fsync (every 2 minutes), and",
  "again on a cluster that fsyncs every write (`sync_interval: always`), like Quorate. `missing`",
  `counts deliveries that had not arrived ${DRAIN_MS / 1000} s after the last put.`,
  ...(notMeasured ? ["", `${notMeasured}.`] : []),
  "",
  ...markdownTable(watchHeader, watchBody),
  "",
  "## 2. Lock acquire+release cycles under contention",
  "",
  "Each client is a `KvClient` with its own lease (`kv.lease(ttl)`, kept alive by the client) that",
  "runs `new Mutex(kv).lock(name, { lease })` then `lock.unlock()` in a closed loop, all clients on",
  `the same lock name; clients share up to ${MAX_LOCK_CONNECTIONS} connections over the three servers. A cycle is`,
  "measured from the `lock` call to the end of `unlock`, so under contention it includes the wait in",
  "the queue. The run also checks, as it goes, that no two clients held the lock at once and that",
  "each holder's fencing token was above the previous holder's.",
  "",
  "A cycle is two consensus writes (create the client's key, delete it on unlock) and at least one",
  "linearizable range read (the queue); a waiter wakes on the watch event of its predecessor's delete",
  "and reads the queue again. Holds are serial, so no number of contenders gets more cycles per",
  "second than one client alone; the cycle time grows with the queue in front.",
  "",
  "There is no JetStream baseline: JetStream KV offers no lock and no lease; a lock on top of its",
  "compare-and-set would be a recipe of our own making, not a baseline, so none was measured.",
  "",
  ...markdownTable(lockHeader, lockBody),
  "",
].join("\n");
mkdirSync(OUT, { recursive: true });
writeFileSync(resolve(OUT, "coordination.md"), md);
console.log(`\nwrote ${resolve(OUT, "coordination.md")}`);
clearTimeout(watchdog);
process.exit(0);
