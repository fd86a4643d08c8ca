#!/usr/bin/env node
// Benchmark: KV puts against a 3-member Multi-Paxos cluster and a 3-member Raft cluster, in one
// run, at 1, 16 and 256 concurrent KvClients (closed loop). Not a test: it prints numbers.
// Run with `pnpm bench:paxos` (builds first; imports dist). Starts its own nats-server (from PATH)
// on a free loopback port and `quorate node` processes with LMDB storage (fsync on). The two
// clusters run one after the other, so they never compete for the machine's cores.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { collectStatus } from "../../packages/cli/dist/index.js";
import { KvClient } from "../../packages/kv/dist/index.js";
import { connectNats } from "../../packages/transport-nats/dist/index.js";

const CLI = resolve(import.meta.dirname, "../../packages/cli/dist/bin.js");
const CONCURRENCY = [1, 16, 256];
const WARMUP_MS = 1_000;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 5_000);
const CLIENTS_PER_CONNECTION = 16;

// A hard stop: whatever happens, the benchmark ends.
const watchdog = setTimeout(() => {
  console.error("benchmark exceeded 5 minutes; aborting");
  process.exit(2);
}, 300_000);

const children = [];
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

async function startNatsServer() {
  const port = await freePort();
  const child = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  child.once("error", (err) => {
    console.error(err.code === "ENOENT" ? "nats-server is not on PATH; install it and rerun." : err);
    process.exit(2);
  });
  for (const started = Date.now(); !/Server is ready/.test(stderr); ) {
    if (Date.now() - started > 10_000) throw new Error(`nats-server did not start: ${stderr.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return `nats://127.0.0.1:${port}`;
}

/** Starts `quorate node` ×3 for `protocol` and waits until the cluster has a leader. */
async function startCluster(protocol, url, nc) {
  const cluster = `bench${protocol}`;
  const root = mkdtempSync(join(tmpdir(), `quorate-bench-${protocol}-`));
  const ids = ["n1", "n2", "n3"];
  const procs = ids.map((id) => {
    const args = [CLI, "node", "--protocol", protocol, "--cluster", cluster, "--id", id, "--peers", ids.join(",")];
    args.push("--data", join(root, id), "--nats", url, "--log-level", "warn");
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
    children.push(child);
    return child;
  });
  const leaderRole = protocol === "paxos" ? "proposer:active" : "leader";
  for (const started = Date.now(); ; ) {
    const members = await collectStatus(nc, cluster, 300);
    if (members.some((m) => m.role === leaderRole)) break;
    if (Date.now() - started > 30_000) throw new Error(`${protocol} cluster elected no leader`);
  }
  return {
    cluster,
    async stop() {
      await Promise.all(
        procs.map(
          (child) =>
            new Promise((done) => {
              if (child.exitCode !== null) return done();
              child.once("exit", done);
              child.kill("SIGTERM");
            }),
        ),
      );
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Closed loop: each client puts, waits for the reply, puts again. */
async function run(url, cluster, concurrency) {
  const connections = await Promise.all(
    Array.from({ length: Math.ceil(concurrency / CLIENTS_PER_CONNECTION) }, () =>
      connectNats({ servers: url, name: "quorate-bench" }),
    ),
  );
  const clients = await Promise.all(
    Array.from({ length: concurrency }, (_, i) =>
      KvClient.connect({ nats: connections[Math.floor(i / CLIENTS_PER_CONNECTION)], cluster, timeoutMs: 30_000 }),
    ),
  );
  const latencies = [];
  let measuring = false;
  let stop = false;
  let errors = 0;
  const loops = clients.map(async (client, c) => {
    for (let i = 0; !stop; i++) {
      const started = performance.now();
      try {
        await client.put(`k${c}-${i % 100}`, `value-${i}`);
        if (measuring) latencies.push(performance.now() - started);
      } catch {
        errors++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  measuring = true;
  const begin = performance.now();
  await new Promise((r) => setTimeout(r, MEASURE_MS));
  measuring = false;
  const elapsed = performance.now() - begin;
  stop = true;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(connections.map((nc) => nc.close()));
  latencies.sort((a, b) => a - b);
  return {
    opsPerSec: (latencies.length / elapsed) * 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
  };
}

const url = await startNatsServer();
const nc = await connectNats({ servers: url, name: "quorate-bench-status" });
const results = {};
for (const protocol of ["paxos", "raft"]) {
  const cluster = await startCluster(protocol, url, nc);
  results[protocol] = {};
  for (const concurrency of CONCURRENCY) {
    results[protocol][concurrency] = await run(url, cluster.cluster, concurrency);
    const r = results[protocol][concurrency];
    console.error(`${protocol} c=${concurrency}: ${r.opsPerSec.toFixed(0)} ops/s p50 ${r.p50.toFixed(1)} ms`);
  }
  await cluster.stop();
}
await nc.close();

const fmt = (r) =>
  `${r.opsPerSec.toFixed(0).padStart(7)} ${r.p50.toFixed(1).padStart(7)} ${r.p99.toFixed(1).padStart(7)}`;
console.log(`KV put, 3 members, LMDB fsync on, ${MEASURE_MS / 1000} s per point (closed loop)`);
console.log(`${"clients".padEnd(8)}|${" paxos ops/s   p50ms   p99ms".padEnd(26)} |${" raft ops/s    p50ms   p99ms"}`);
for (const concurrency of CONCURRENCY) {
  const p = results.paxos[concurrency];
  const r = results.raft[concurrency];
  console.log(`${String(concurrency).padEnd(8)}| ${fmt(p)}     | ${fmt(r)}`);
  if (p.errors > 0 || r.errors > 0) console.log(`        errors: paxos ${p.errors}, raft ${r.errors}`);
}
clearTimeout(watchdog);
process.exit(0);
