// Shared by the benchmarks: a local nats-server or NATS cluster from the nats-server binary,
// `quorate node` processes, and a closed-loop KV workload that reports throughput and latency
// percentiles.
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
const children = new Set();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** One nats-server on a free loopback port, ready for connections; `version` is what it reports. */
export async function startNatsServer() {
  const port = await freePort();
  const child = track(
    spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] }),
  );
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const failed = new Promise((_, reject) => {
    child.once("error", (err) =>
      reject(
        err.code === "ENOENT"
          ? new Error("nats-server is not on PATH. Install it (e.g. `apt-get install -y nats-server`) and rerun.")
          : err,
      ),
    );
    child.once("exit", (code) => reject(new Error(`nats-server exited with ${code}: ${stderr.slice(-500)}`)));
  });
  const ready = (async () => {
    for (const started = Date.now(); Date.now() - started < 10_000; ) {
      if (/Server is ready/.test(stderr)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`nats-server did not become ready: ${stderr.slice(-500)}`);
  })();
  await Promise.race([ready, failed]);
  failed.catch(() => {}); // later exits are ours
  const version = /Version:\s+(\S+)/.exec(stderr)?.[1] ?? "?";
  const url = `nats://127.0.0.1:${port}`;
  return { url, urls: [url], version, stop: () => child.kill("SIGTERM") };
}

/** `size` routed nats-server processes on loopback (JetStream on when asked); resolves with their URLs. */
export async function startNatsCluster(size, { jetstream = false } = {}) {
  const ports = await Promise.all(Array.from({ length: size }, freePort));
  const routePorts = await Promise.all(Array.from({ length: size }, freePort));
  const root = mkdtempSync(join(tmpdir(), "quorate-bench-nats-"));
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const servers = ports.map((port, i) =>
    track(
      spawn(
        "nats-server",
        [
          "-a",
          "127.0.0.1",
          "-p",
          String(port),
          "--server_name",
          `s${i + 1}`,
          "--cluster_name",
          "bench",
          "--cluster",
          `nats://127.0.0.1:${routePorts[i]}`,
          "--routes",
          routes,
          ...(jetstream ? ["-js", "-sd", join(root, `s${i + 1}`)] : []),
        ],
        { stdio: "ignore" },
      ),
    ),
  );
  const urls = ports.map((p) => `nats://127.0.0.1:${p}`);
  // Routes form within a second or two; a connection to each server proves it listens.
  for (const url of urls) {
    const nc = await connectNats({ servers: url, waitOnFirstConnect: true, firstConnectTimeoutMs: 10_000 });
    await nc.close();
  }
  await new Promise((r) => setTimeout(r, 1500));
  return {
    urls,
    pids: servers.map((s) => s.pid),
    stop() {
      for (const s of servers) s.kill("SIGTERM");
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * `quorate node` processes, member i on NATS server i (mod the cluster size). `nodeArgs` go to
 * Node itself: `["--cpu-prof", "--cpu-prof-dir", dir]` profiles every member.
 */
export async function startMembers({ protocol = "raft", cluster, ids, urls, env = {}, extraArgs = [], nodeArgs = [] }) {
  const root = mkdtempSync(join(tmpdir(), `quorate-bench-${cluster}-`));
  const procs = ids.map((id, i) =>
    track(
      spawn(
        process.execPath,
        [
          ...nodeArgs,
          CLI,
          "node",
          "--protocol",
          protocol,
          "--cluster",
          cluster,
          "--id",
          id,
          "--peers",
          ids.join(","),
          "--data",
          join(root, id),
          "--nats",
          urls[i % urls.length],
          "--log-level",
          "warn",
          ...extraArgs,
        ],
        { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ...env } },
      ),
    ),
  );
  const nc = await connectNats({ servers: urls[0] });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await collectStatus(nc, cluster, 300);
    if (status.some((m) => m.role === "leader" || m.role === "proposer:active")) break;
    if (Date.now() > deadline) throw new Error(`cluster ${cluster} elected no leader in 30 s`);
  }
  await nc.close();
  return {
    pids: procs.map((p) => p.pid),
    async stop() {
      await Promise.all(
        procs.map((p) =>
          p.exitCode !== null ? undefined : new Promise((done) => p.once("exit", done).kill("SIGTERM")),
        ),
      );
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Closed loop: `concurrency` KV clients (over a few shared connections) each do one operation
 * after another for `seconds` after `warmupSeconds`. `op(client, i, worker, round)` runs one
 * operation: `i` counts operations across all clients, `round` those of client number `worker`.
 * Clients share up to 8 connections round-robin, or, with `clientsPerConnection`, fill one
 * connection after another.
 */
export async function runWorkload({
  urls,
  cluster,
  concurrency,
  seconds,
  warmupSeconds,
  op,
  onProgress,
  clientsPerConnection,
}) {
  const connectionCount =
    clientsPerConnection === undefined ? Math.min(8, concurrency) : Math.ceil(concurrency / clientsPerConnection);
  const connections = await Promise.all(
    Array.from({ length: connectionCount }, (_, i) => connectNats({ servers: urls[i % urls.length] })),
  );
  const connectionOf = (i) =>
    clientsPerConnection === undefined ? i % connections.length : Math.floor(i / clientsPerConnection);
  const clients = await Promise.all(
    Array.from({ length: concurrency }, (_, i) =>
      KvClient.connect({ nats: connections[connectionOf(i)], cluster, timeoutMs: 30_000 }),
    ),
  );
  const latencies = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  let counter = 0;
  const workers = clients.map(async (client, worker) => {
    for (let round = 0; !stop; round++) {
      const i = counter++;
      const t0 = performance.now();
      try {
        await op(client, i, worker, round);
        if (measuring) latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  measuring = true;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const progress = setInterval(() => onProgress?.(latencies.length, (performance.now() - started) / 1000), 1000);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (performance.now() - started) / 1000;
  const measured = latencies.length;
  measuring = false;
  stop = true;
  clearInterval(progress);
  await Promise.all(workers);
  const clientCpu = process.cpuUsage(cpu0);
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(connections.map((c) => c.close()));
  const sorted = latencies.slice(0, measured).sort((a, b) => a - b);
  return {
    ops: measured,
    opsPerSecond: measured / elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    errors,
    clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
  };
}

export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padStart(widths[i])).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

export const fmt = (n, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "-";
