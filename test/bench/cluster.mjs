// Shared by the benchmarks: a local nats-server or NATS cluster from the nats-server binary,
// `quorate node` processes and their status, a closed-loop KV workload that reports throughput
// and latency percentiles, and plain NATS request/reply as the baseline.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { collectStatus } from "../../packages/cli/dist/index.js";
import { ServiceName, serviceControlSubject, serviceInstanceId } from "../../packages/cli/dist/service/discovery.js";
import { KvClient } from "../../packages/kv/dist/nats.js";
import { openLmdbStorage } from "../../packages/storage/dist/index.js";
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

/**
 * The nats-server binary benchmarks run: $QUORATE_NATS_SERVER, else Debian 13's 2.10 that
 * deploy/nats-local/fetch-nats-server.sh keeps in a cache (it fetches it the first time), else
 * the one on PATH (Debian 12's 2.9, without `sync_interval: always`).
 */
export const NATS_SERVER = (() => {
  if (process.env.QUORATE_NATS_SERVER) return process.env.QUORATE_NATS_SERVER;
  try {
    const script = resolve(import.meta.dirname, "../../deploy/nats-local/fetch-nats-server.sh");
    return execFileSync(script, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    process.stderr.write("could not fetch nats-server 2.10; using the nats-server on PATH\n");
    return "nats-server";
  }
})();

/** One nats-server on a free loopback port, ready for connections; `version` is what it reports. */
export async function startNatsServer() {
  const port = await freePort();
  const child = track(
    spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] }),
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

/**
 * `size` routed nats-server processes on loopback (JetStream on when asked); resolves with their URLs.
 * `syncAlways` makes JetStream fsync every write (`sync_interval: always`, nats-server 2.10 and later).
 */
export async function startNatsCluster(size, { jetstream = false, syncAlways = false } = {}) {
  const ports = await Promise.all(Array.from({ length: size }, freePort));
  const routePorts = await Promise.all(Array.from({ length: size }, freePort));
  const root = mkdtempSync(join(tmpdir(), "quorate-bench-nats-"));
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  // JetStream settings go in a config file: `sync_interval` has no command-line flag.
  const jetstreamConfig = (name) => {
    const file = join(root, `${name}.conf`);
    const sync = syncAlways ? "\n  sync_interval: always" : "";
    writeFileSync(file, `jetstream {\n  store_dir: ${JSON.stringify(join(root, name))}${sync}\n}\n`);
    return ["-c", file];
  };
  const servers = ports.map((port, i) =>
    track(
      spawn(
        NATS_SERVER,
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
          ...(jetstream ? jetstreamConfig(`s${i + 1}`) : []),
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
 * Node itself: `["--cpu-prof", "--cpu-prof-dir", dir]` profiles every member. `stopMember` and
 * `startMember` stop and restart one member on its data directory (`dataDirs[id]`), which may be
 * wiped in between.
 */
export async function startMembers({
  protocol = "raft",
  cluster,
  ids,
  urls,
  env = {},
  extraArgs = [],
  nodeArgs = [],
  joiners = [],
}) {
  const root = mkdtempSync(join(tmpdir(), `quorate-bench-${cluster}-`));
  const all = [...ids, ...joiners];
  const dataDirs = Object.fromEntries(all.map((id) => [id, join(root, id)]));
  const spawnMember = (id) =>
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
          // Joiners start with no configuration and wait for `quorate member add`: started by startMember.
          ...(joiners.includes(id) ? ["--join"] : ["--peers", ids.join(",")]),
          "--data",
          dataDirs[id],
          "--nats",
          urls[all.indexOf(id) % urls.length],
          "--log-level",
          "warn",
          ...extraArgs,
        ],
        { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ...env } },
      ),
    );
  const procs = new Map(ids.map((id) => [id, spawnMember(id)]));
  const stopProc = (p) =>
    p.exitCode !== null || p.signalCode !== null
      ? undefined
      : new Promise((done) => p.once("exit", done).kill("SIGTERM"));
  const nc = await connectNats({ servers: urls[0] });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await collectStatus(nc, cluster, 300);
    if (status.some((m) => m.role === "leader" || m.role === "proposer:active")) break;
    if (Date.now() > deadline) throw new Error(`cluster ${cluster} elected no leader in 30 s`);
  }
  await nc.close();
  return {
    get pids() {
      return ids.map((id) => procs.get(id).pid);
    },
    pid(id) {
      return procs.get(id)?.pid;
    },
    dataDirs,
    async stopMember(id) {
      await stopProc(procs.get(id));
    },
    startMember(id) {
      procs.set(id, spawnMember(id));
    },
    async stop() {
      await Promise.all([...procs.values()].map(stopProc));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * One member's consensus status (role, term, leader, indexes) from its `$SRV.STATS` reply, or
 * null if it does not answer within `timeoutMs`. Unlike `quorate status`, it does not hash the
 * whole replicated state, so it is cheap to poll however large the state is.
 */
export async function memberStatus(nc, cluster, id, timeoutMs = 1000) {
  const subject = serviceControlSubject("STATS", ServiceName.raft, serviceInstanceId(cluster, id));
  try {
    const reply = await nc.request(subject, "", { timeout: timeoutMs });
    return reply.json().endpoints[0]?.data ?? null;
  } catch {
    return null;
  }
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Closed loop: `concurrency` KV clients (over a few shared connections) each do one operation
 * after another for `seconds` after `warmupSeconds`; or, instead of `seconds`, until `operations`
 * operations are done, or until the promise `until` settles. `op(client, i, worker, round)` runs
 * one operation: `i` counts operations across all clients, `round` those of client number `worker`.
 * Clients share up to 8 connections round-robin, or, with `clientsPerConnection`, fill one
 * connection after another.
 */
export async function runWorkload({
  urls,
  cluster,
  concurrency,
  seconds,
  operations,
  until,
  warmupSeconds = 0,
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
    for (let round = 0; !stop && (operations === undefined || counter < operations); round++) {
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
  const finished = Promise.all(workers);
  await (operations !== undefined ? finished : (until ?? new Promise((r) => setTimeout(r, seconds * 1000))));
  const elapsed = (performance.now() - started) / 1000;
  const measured = latencies.length;
  measuring = false;
  stop = true;
  clearInterval(progress);
  await finished;
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
    max: sorted.at(-1) ?? Number.NaN,
    errors,
    clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
  };
}

/**
 * Request/reply through NATS alone: `warmup` and then `count` requests of `bytes` each, one after
 * another, from a connection to the first server to a responder on the second (the same one if
 * there is only one) that echoes them, or replies with `replyBytes` bytes. The floor for anything
 * that rides on NATS requests. Returns the measured latencies in ms, sorted, and their total.
 */
export async function natsRequests(urls, { count, bytes, replyBytes, warmup = 0 }) {
  const responder = await connectNats({ servers: urls[0] });
  const requester = await connectNats({ servers: urls[1 % urls.length] });
  const reply = replyBytes === undefined ? null : new Uint8Array(replyBytes);
  responder.subscribe("bench.echo", { callback: (_err, msg) => msg.respond(reply ?? msg.data) });
  await responder.flush();
  const payload = new Uint8Array(bytes).fill("x".charCodeAt(0));
  const samples = [];
  let totalMs = 0;
  for (let i = 0; i < warmup + count; i++) {
    const t0 = performance.now();
    await requester.request("bench.echo", payload, { timeout: 10_000 });
    const ms = performance.now() - t0;
    if (i >= warmup) {
      samples.push(ms);
      totalMs += ms;
    }
  }
  await responder.close();
  await requester.close();
  return { samples: samples.sort((a, b) => a - b), totalMs };
}

/**
 * One durable LMDB commit, the floor under every acknowledged write: `warmup` and then `count`
 * single-entry writes of `bytes` to Quorate's Raft storage in a fresh directory, one after another,
 * each awaited until fsynced. Returns the latencies in ms, sorted.
 */
export async function lmdbCommits({ count, bytes = 100, warmup = 20 }) {
  const dir = mkdtempSync(join(tmpdir(), "quorate-bench-lmdb-"));
  const storage = await openLmdbStorage({ dir, cluster: "bench", member: "m1" });
  await storage.load();
  const data = new Uint8Array(bytes).fill(42);
  const samples = [];
  for (let i = 1; i <= warmup + count; i++) {
    const t0 = performance.now();
    await storage.write({
      hardState: { term: 1, vote: "m1", commit: i - 1 },
      entries: [{ index: i, term: 1, kind: 0, data }],
    });
    if (i > warmup) samples.push(performance.now() - t0);
  }
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
  return samples.sort((a, b) => a - b);
}

/** An OTLP/HTTP endpoint that accepts and discards, so exporting costs what it costs in production. */
export async function startTraceSink() {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/** What a run's numbers depend on: versions, the machine, the time. */
export function benchInfo() {
  const nats = execFileSync(NATS_SERVER, ["--version"], { encoding: "utf8" }).trim();
  const cpu = cpus();
  return {
    node: process.version,
    natsServer: nats,
    quorate: JSON.parse(readFileSync(resolve(import.meta.dirname, "../../packages/cli/package.json"), "utf8")).version,
    machine: `${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, ${fmt(totalmem() / 2 ** 30, 1)} GiB`,
    date: new Date().toISOString(),
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
