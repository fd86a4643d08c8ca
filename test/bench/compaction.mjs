#!/usr/bin/env node
// `pnpm bench:compaction`: what log compaction and snapshots cost a 3-member Raft KV cluster on
// one local nats-server, with compaction at its default (a snapshot every 8192 applied entries).
//   1. memory and disk over many puts to a bounded key space: flat after warm-up, or growing?
//   2. leadership transfer under a light write load, against a NATS round trip
//   3. a member with an empty data directory catching up from a large snapshot, against moving
//      the same bytes through NATS with plain request/reply
// Prints numbers; not a test.
//   node test/bench/compaction.mjs [--puts 1000000] [--keys 10000] [--value-bytes 100] [--clients 64]
//     [--transfers 20] [--snapshot-mb 100] [--snapshot-value-bytes 10240] [--catchup-minutes 10]
//     [--phases growth,transfer,catchup]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { adminRequest, collectStatus } from "../../packages/cli/dist/index.js";
import { decodeFrame, directSubject } from "../../packages/core/dist/index.js";
import { KV_GROUP, KvClient } from "../../packages/kv/dist/nats.js";
import { DEFAULT_SNAPSHOT_THRESHOLD, SNAPSHOT_CHUNK_BYTES } from "../../packages/raft/dist/index.js";
import { connectNats } from "../../packages/transport-nats/dist/index.js";
import {
  benchInfo,
  fmt,
  memberStatus,
  natsRequests,
  percentile,
  runWorkload,
  startMembers,
  startNatsServer,
  table,
} from "./cluster.mjs";

const { values: flags } = parseArgs({
  options: {
    puts: { type: "string", default: "1000000" },
    keys: { type: "string", default: "10000" },
    "value-bytes": { type: "string", default: "100" },
    clients: { type: "string", default: "64" },
    transfers: { type: "string", default: "20" },
    "snapshot-mb": { type: "string", default: "100" },
    "snapshot-value-bytes": { type: "string", default: "10240" },
    "catchup-minutes": { type: "string", default: "10" },
    phases: { type: "string", default: "growth,transfer,catchup" },
  },
});
const positive = (name) => {
  const n = Number(flags[name]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number (got '${flags[name]}')`);
  return n;
};
const PUTS = Math.round(positive("puts"));
const KEYS = Math.round(positive("keys"));
const VALUE_BYTES = Math.round(positive("value-bytes"));
const CLIENTS = Math.round(positive("clients"));
const TRANSFERS = Math.round(positive("transfers"));
const SNAPSHOT_MB = positive("snapshot-mb");
const SNAPSHOT_VALUE_BYTES = Math.round(positive("snapshot-value-bytes"));
const CATCHUP_MINUTES = positive("catchup-minutes");
const PHASES = new Set(flags.phases.split(","));
const IDS = ["n1", "n2", "n3"];
/** The member phase 3 adds to the running cluster. */
const JOINER = "n4";
// The members run with the default; phase 3 writes past the next multiple so the snapshot holds every key.
const SNAPSHOT_THRESHOLD = DEFAULT_SNAPSHOT_THRESHOLD;
/** Chunk bytes sent per snapshot byte past which phase 3 gives up on a catch-up. */
const RESEND_LIMIT = 10;
const MiB = 2 ** 20;

const watchdog = setTimeout(
  () => {
    console.error(`benchmark exceeded ${60 + CATCHUP_MINUTES} minutes; aborting`);
    process.exit(2);
  },
  (60 + CATCHUP_MINUTES) * 60_000,
);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clusterName = (phase) => `c${phase}${Math.random().toString(36).slice(2, 7)}`;
const pct = (from, to) => `${to >= from ? "+" : ""}${fmt((100 * (to - from)) / from, 2)}%`;

function rssMb(pid) {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Disk space a directory's files take, as `du` counts it (allocated blocks, not apparent sizes). */
function diskMb(dir) {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) bytes += statSync(join(entry.parentPath ?? entry.path, entry.name)).blocks * 512;
  }
  return bytes / MiB;
}

async function leaderOf(nc, cluster) {
  for (const id of IDS) {
    const status = await memberStatus(nc, cluster, id);
    if (status?.role === "leader") return status;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------

/** Phase 1: RSS and disk of every member, sampled every 5% of `PUTS` puts. */
async function growth(nats) {
  const cluster = clusterName("growth");
  const members = await startMembers({ cluster, ids: IDS, urls: nats.urls });
  const value = "x".repeat(VALUE_BYTES);
  const step = Math.max(1, Math.floor(PUTS / 20));
  const sample = (puts) => ({
    puts,
    at: performance.now(),
    rss: members.pids.map(rssMb),
    disk: IDS.map((id) => diskMb(members.dataDirs[id])),
  });
  const samples = [sample(0)];
  let done = 0;
  let result;
  try {
    result = await runWorkload({
      urls: nats.urls,
      cluster,
      concurrency: CLIENTS,
      operations: PUTS,
      op: async (client, i) => {
        await client.put(`k${i % KEYS}`, value);
        done++;
        if (done % step === 0 || done === PUTS) {
          const s = sample(done);
          samples.push(s);
          process.stderr.write(
            `\r\x1b[K  ${fmt(done)} puts; RSS ${s.rss.map((v) => fmt(v)).join("/")} MB; disk ${s.disk.map((v) => fmt(v, 1)).join("/")} MiB`,
          );
        }
      },
    });
  } finally {
    process.stderr.write("\r\x1b[K");
    await members.stop();
  }
  if (samples.at(-1).puts !== done) samples.push(sample(done));

  const rows = samples.slice(1).map((s, i) => {
    const prev = samples[i];
    return [
      fmt(s.puts),
      `${fmt((100 * s.puts) / PUTS)}%`,
      fmt((s.puts - prev.puts) / ((s.at - prev.at) / 1000)),
      ...s.rss.map((v) => fmt(v)),
      ...s.disk.map((v) => fmt(v, 1)),
    ];
  });
  console.log(
    table(["puts", "done", "ops/s", ...IDS.map((id) => `${id} RSS MB`), ...IDS.map((id) => `${id} disk MiB`)], rows),
  );
  console.log(
    `${fmt(result.ops)} puts in all, ${fmt(result.opsPerSecond)} ops/s, p50 ${fmt(result.p50, 1)} ms, p99 ${fmt(result.p99, 1)} ms, ${result.errors} errors`,
  );
  const after = samples.filter((s) => s.puts >= PUTS * 0.1);
  if (after.length < 2) {
    console.log("too few puts for a growth figure after warm-up");
    return;
  }
  const xs = after.map((s) => s.puts);
  // RSS saws up and down with garbage collection, so one sample against another says little: the
  // growth is that of a least-squares line through every sample after warm-up, start to end.
  for (const [what, key, unit] of [
    ["RSS", "rss", "MB"],
    ["disk", "disk", "MiB"],
  ]) {
    const perMember = IDS.map((id, m) => {
      const ys = after.map((s) => s[key][m]);
      const { start, end } = trend(xs, ys);
      const range = `${fmt(Math.min(...ys), 1)}–${fmt(Math.max(...ys), 1)} ${unit}`;
      return { text: `${id} ${range}, trend ${pct(start, end)}`, growth: (end - start) / start };
    });
    const worst = Math.max(...perMember.map((p) => p.growth));
    console.log(
      `${what} after warm-up (${fmt(xs[0])} → ${fmt(xs.at(-1))} puts): ${perMember.map((p) => p.text).join("; ")}; ` +
        `goal flat, ≤ +10%: ${worst <= 0.1 ? "met" : "missed"}`,
    );
  }
}

/** The least-squares line through (xs, ys), evaluated at the first and last x. */
function trend(xs, ys) {
  const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
  const mx = mean(xs);
  const my = mean(ys);
  const sxx = xs.reduce((sum, x) => sum + (x - mx) ** 2, 0);
  const slope = xs.reduce((sum, x, i) => sum + (x - mx) * (ys[i] - my), 0) / sxx;
  const at = (x) => my + slope * (x - mx);
  return { start: at(xs[0]), end: at(xs.at(-1)) };
}

/** Phase 2: leadership transfer through the admin API `quorate leader transfer` uses, under a light write load. */
async function transfer(nats) {
  const cluster = clusterName("transfer");
  const members = await startMembers({ cluster, ids: IDS, urls: nats.urls });
  const nc = await connectNats({ servers: nats.urls[0] });
  const probe = await KvClient.connect({ nats: nc, cluster, timeoutMs: 10_000 });
  const replyMs = [];
  const answerMs = [];
  const failures = [];
  const value = "x".repeat(100);
  let release;
  const loadDone = new Promise((r) => {
    release = r;
  });
  const load = runWorkload({
    urls: nats.urls,
    cluster,
    concurrency: 4,
    until: loadDone,
    op: async (client, i) => {
      await client.put(`k${i % 1000}`, value);
      await sleep(20);
    },
  });
  try {
    let leader = (await collectStatus(nc, cluster, 500)).find((m) => m.role === "leader")?.id;
    await sleep(1000);
    for (let k = 0; k < TRANSFERS; k++) {
      const t0 = performance.now();
      // As `quorate leader transfer` does; the reply names the new leader.
      const reply = await adminRequest(nc, cluster, leader, { op: "transfer-leadership" }, 10_000).catch((err) => ({
        ok: false,
        code: err.message,
      }));
      if (reply.ok) {
        replyMs.push(performance.now() - t0);
        // The probe client still prefers the old leader: it is redirected, as any client would be.
        await probe.put("probe", String(k));
        answerMs.push(performance.now() - t0);
        leader = reply.leader;
      } else {
        failures.push(reply.code);
        leader = (await leaderOf(nc, cluster))?.id ?? leader;
      }
      process.stderr.write(`\r\x1b[K  transfer ${k + 1}/${TRANSFERS}`);
      await sleep(500);
    }
  } finally {
    process.stderr.write("\r\x1b[K");
    release();
  }
  const loadResult = await load;
  await probe.close();
  await nc.close();
  await members.stop();
  const { samples: rtt } = await natsRequests(nats.urls, { count: 1000, bytes: 100, warmup: 100 });
  replyMs.sort((a, b) => a - b);
  answerMs.sort((a, b) => a - b);
  console.log(
    table(
      ["", "p50 ms", "max ms", "n"],
      [
        [
          "transfer request → admin reply naming the new leader",
          fmt(percentile(replyMs, 50), 1),
          fmt(replyMs.at(-1), 1),
          replyMs.length,
        ],
        [
          "transfer request → first put acknowledged by the new leader",
          fmt(percentile(answerMs, 50), 1),
          fmt(answerMs.at(-1), 1),
          answerMs.length,
        ],
        ["baseline: NATS request/reply round trip, 100 B", fmt(percentile(rtt, 50), 3), fmt(rtt.at(-1), 3), rtt.length],
      ],
    ),
  );
  if (failures.length > 0) console.log(`transfers that failed: ${failures.join(", ")}`);
  console.log(
    `light load during the transfers: 4 clients, ${fmt(loadResult.opsPerSecond)} puts/s, p99 ${fmt(loadResult.p99, 1)} ms, slowest ${fmt(loadResult.max, 1)} ms, ${loadResult.errors} errors`,
  );
}

/** Watches a member's snapshot transfer on the wire: the chunks sent to it and its acknowledgements. */
function watchSnapshot(nc, cluster, target) {
  const scope = { cluster, group: KV_GROUP };
  const seen = { total: 0, index: 0, firstChunkAt: Number.NaN, ackedAt: Number.NaN, acked: 0, bytesSent: 0 };
  const subs = [directSubject(scope, target, "*"), directSubject(scope, "*", target)].map((subject) =>
    nc.subscribe(subject, {
      callback: (_err, msg) => {
        const decoded = decodeFrame(msg.data, scope);
        if (!decoded.ok) return;
        const { type, body } = decoded.envelope;
        if (type === "raft.snapshot") {
          if (Number.isNaN(seen.firstChunkAt)) seen.firstChunkAt = performance.now();
          seen.total = body.total;
          seen.index = body.index;
          seen.bytesSent += body.data.length;
        } else if (type === "raft.snapshot.resp" && body.index === seen.index) {
          seen.acked = Math.max(seen.acked, body.next);
          if (seen.acked >= seen.total && Number.isNaN(seen.ackedAt)) seen.ackedAt = performance.now();
        }
      },
    }),
  );
  return {
    seen,
    stop() {
      for (const s of subs) s.unsubscribe();
    },
  };
}

/** Phase 3: fill to ~SNAPSHOT_MB, add a 4th member, time its catch-up from the leader's snapshot. */
async function catchUp(nats) {
  const cluster = clusterName("catchup");
  const members = await startMembers({ cluster, ids: IDS, urls: nats.urls, joiners: [JOINER] });
  const nc = await connectNats({ servers: nats.urls[0] });
  const keys = Math.ceil((SNAPSHOT_MB * MiB) / SNAPSHOT_VALUE_BYTES);
  const value = "x".repeat(SNAPSHOT_VALUE_BYTES);
  const fillClients = 16;
  try {
    const fill = async (operations, label) => {
      const started = performance.now();
      const r = await runWorkload({
        urls: nats.urls,
        cluster,
        concurrency: fillClients,
        operations,
        op: (client, i) => client.put(`s${i % keys}`, value),
        onProgress: (ops) => process.stderr.write(`\r\x1b[K  ${label}: ${fmt(ops)}/${fmt(operations)} puts`),
      });
      process.stderr.write("\r\x1b[K");
      if (r.errors > 0) console.log(`${label}: ${r.errors} puts failed`);
      return (performance.now() - started) / 1000;
    };
    let seconds = await fill(keys, "fill");
    // Overwrites (same keys, same size) up to just past the next snapshot point, so the snapshot a
    // new member receives holds every key and little log is left to replay after it. Each closed-loop
    // client adds a session entry, and each snapshot may land up to one batch late.
    const filled = (await leaderOf(nc, cluster)).commitIndex;
    const snapshots = Math.ceil(filled / SNAPSHOT_THRESHOLD);
    const extra = snapshots * SNAPSHOT_THRESHOLD + fillClients * (snapshots + 1) - filled - fillClients;
    seconds += await fill(extra, "overwrite");
    console.log(
      `state: ${fmt(keys)} keys × ${fmt(SNAPSHOT_VALUE_BYTES)} B = ${fmt((keys * SNAPSHOT_VALUE_BYTES) / MiB, 1)} MiB, ` +
        `written with ${fmt(keys + extra)} puts in ${fmt(seconds, 1)} s`,
    );

    const leader = await leaderOf(nc, cluster);
    const target = JOINER;
    const watch = watchSnapshot(nc, cluster, target);
    await nc.flush();
    const t0 = performance.now();
    members.startMember(target);
    // As `quorate member add` does: a learner first, then a voter once it has caught up.
    let addedAt = Number.NaN;
    const add = adminRequest(
      nc,
      cluster,
      leader.id,
      { op: "add-member", member: target, learner: false },
      CATCHUP_MINUTES * 60_000,
    )
      .then(() => {
        addedAt = performance.now();
      })
      .catch((err) => console.log(`member add ${target} failed: ${err.message}`));
    let caughtUp = null;
    let leaderNow = leader;
    const { seen } = watch;
    // A transfer that resends this much will not finish, and memory piles up while it tries (one
    // unguarded run used up the machine's): stop there and say so.
    const storm = () => seen.total > 0 && seen.bytesSent > RESEND_LIMIT * Math.max(seen.total, SNAPSHOT_CHUNK_BYTES);
    for (const deadline = t0 + CATCHUP_MINUTES * 60_000; performance.now() < deadline && !storm(); await sleep(50)) {
      const [mine, theirs] = await Promise.all([
        memberStatus(nc, cluster, target, 500),
        memberStatus(nc, cluster, leader.id, 500),
      ]);
      if (theirs !== null) leaderNow = theirs;
      if (mine !== null && mine.appliedIndex >= leaderNow.commitIndex && Number.isFinite(addedAt)) {
        caughtUp = mine;
        break;
      }
      process.stderr.write(
        `\r\x1b[K  snapshot ${fmt(seen.acked / MiB, 1)}/${fmt(seen.total / MiB, 1)} MiB acknowledged, ${fmt(seen.bytesSent / MiB)} MiB sent`,
      );
    }
    process.stderr.write("\r\x1b[K");
    await Promise.race([add, sleep(1000)]);
    const elapsedSoFar = performance.now() - t0;
    const elapsed = caughtUp === null ? Number.NaN : elapsedSoFar;
    watch.stop();
    const targetRss = rssMb(members.pid(target));
    const leaderRss = rssMb(members.pid(leader.id));

    const chunks = Math.ceil(seen.total / SNAPSHOT_CHUNK_BYTES);
    const { totalMs: natsMs } = await natsRequests(nats.urls, {
      count: chunks,
      bytes: SNAPSHOT_CHUNK_BYTES,
      replyBytes: 16,
      warmup: 4,
    });
    const transferMs = seen.ackedAt - seen.firstChunkAt;
    const rate = (bytes, ms) => (Number.isFinite(ms) ? `${fmt(bytes / MiB / (ms / 1000), 1)} MiB/s` : "");
    console.log(`${target} started with --join and added with member add (learner, caught up, then voter)`);
    if (caughtUp === null) {
      const why = storm()
        ? `stopped after the leader had sent over ${RESEND_LIMIT}× the snapshot in chunks (${fmt(elapsedSoFar / 1000, 1)} s)`
        : `did not catch up within ${CATCHUP_MINUTES} min`;
      console.log(`${target} ${why}: ${fmt(seen.acked / MiB, 1)} of ${fmt(seen.total / MiB, 1)} MiB acknowledged`);
    }
    console.log(
      table(
        ["", "ms", "rate"],
        [
          ["start → first snapshot chunk (process start, NATS, member add)", fmt(seen.firstChunkAt - t0), ""],
          ["first chunk → last chunk acknowledged", fmt(transferMs), rate(seen.total, transferMs)],
          ["last chunk acknowledged → applied = leader's commit", fmt(t0 + elapsed - seen.ackedAt), ""],
          ["start → voter, applied = leader's commit (catch-up)", fmt(elapsed), rate(seen.total, elapsed)],
          ["start → member add answered (a voter)", fmt(addedAt - t0), ""],
          [
            `baseline: same bytes as NATS requests, ${fmt(chunks)} × 256 KiB, one at a time`,
            fmt(natsMs),
            rate(seen.total, natsMs),
          ],
        ],
      ),
    );
    console.log(
      `snapshot: ${fmt(seen.total / MiB, 1)} MiB at index ${fmt(seen.index)}; ${fmt(seen.bytesSent / MiB, 1)} MiB of chunks sent, resends included` +
        (caughtUp === null
          ? ""
          : `; then ${fmt(caughtUp.appliedIndex - seen.index)} log entries up to the leader's commit ${fmt(leaderNow.commitIndex)}`),
    );
    console.log(`RSS at the end: ${target} ${fmt(targetRss)} MB, leader ${leader.id} ${fmt(leaderRss)} MB`);
  } finally {
    await nc.close();
    await members.stop();
  }
}

// ---------------------------------------------------------------------------------------------

const info = benchInfo();
console.log(
  `pnpm bench:compaction — ${info.date}\n${info.machine}; Node ${info.node}; ${info.natsServer}; quorate ${info.quorate}`,
);
console.log(
  "3 Raft members (fsync before every ack, snapshot every 8192 applied entries) on one local nats-server; clients, members and server share the machine\n",
);
const nats = await startNatsServer();
try {
  if (PHASES.has("growth")) {
    console.log(
      `1. Memory and disk over ${fmt(PUTS)} puts: ${fmt(KEYS)} keys, ${fmt(VALUE_BYTES)} B values, ${CLIENTS} clients; first 10% is warm-up`,
    );
    await growth(nats);
    console.log();
  }
  if (PHASES.has("transfer")) {
    console.log(`2. Leadership transfer, ${TRANSFERS} times, under a light write load`);
    await transfer(nats);
    console.log();
  }
  if (PHASES.has("catchup")) {
    console.log(`3. A new member added to a cluster holding ~${fmt(SNAPSHOT_MB)} MiB: catch-up from the snapshot`);
    await catchUp(nats);
  }
} finally {
  nats.stop();
}
clearTimeout(watchdog);
process.exit(0);
