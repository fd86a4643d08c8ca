#!/usr/bin/env node
// `pnpm bench:timeline`: where the time of one KV operation goes. Three Raft members (one per
// server of a local 3-server NATS cluster) publish marks on Quorate's timeline channel
// (TIMELINE_CHANNEL: frames sent and received, writes started and durable, commit, apply, the KV
// request and reply); a preload records them in each member process. One client then does puts
// and linearizable gets one after another, and for each operation the marks that fall between its
// send and its reply are lined up on one clock (performance.timeOrigin + now, comparable across
// processes on one machine). Prints the median and mean time of each step from the client's send,
// and writes docs/benchmarks/timeline.md. In the same run: two NATS request round trips and one
// durable LMDB commit, the floors the steps are compared with.
//   BENCH_OPS=1000 BENCH_WARMUP_OPS=200 BENCH_OUT=dir (write timeline.md there instead of docs/)
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { KvClient } from "../../packages/kv/dist/nats.js";
import { connectNats } from "../../packages/transport-nats/dist/index.js";
import {
  benchInfo,
  fmt,
  lmdbCommits,
  memberStatus,
  natsRequests,
  percentile,
  startMembers,
  startNatsCluster,
} from "./cluster.mjs";

const OPS = Number(process.env.BENCH_OPS ?? 1000);
const WARMUP_OPS = Number(process.env.BENCH_WARMUP_OPS ?? 200);
const OUT = resolve(process.env.BENCH_OUT ?? resolve(import.meta.dirname, "../../docs/benchmarks"));
const RECORDER = resolve(import.meta.dirname, "timeline-recorder.mjs");
/** A step shown in the timeline must occur in at least this share of the operations. */
const MIN_SHARE = 0.9;
const IDS = ["n1", "n2", "n3"];

const watchdog = setTimeout(() => {
  console.error("timeline benchmark exceeded 10 minutes; aborting");
  process.exit(2);
}, 10 * 60_000);

const now = () => performance.timeOrigin + performance.now();

const info = benchInfo();
const nats = await startNatsCluster(3);
const marksDir = mkdtempSync(join(tmpdir(), "quorate-timeline-"));
const floors = {
  natsRoundTrip: percentile((await natsRequests(nats.urls, { count: 500, bytes: 100, warmup: 50 })).samples, 50),
  lmdbCommit: percentile(await lmdbCommits({ count: 500 }), 50),
};
const members = await startMembers({
  cluster: "timeline",
  ids: IDS,
  urls: nats.urls,
  nodeArgs: ["--import", RECORDER],
  env: { QUORATE_TIMELINE_DIR: marksDir },
});

const nc = await connectNats({ servers: nats.urls[0] });
const client = await KvClient.connect({ nats: nc, cluster: "timeline", timeoutMs: 10_000 });
const value = new Uint8Array(100).fill(7);
const windows = { put: [], get: [] };
const latencies = { put: [], get: [] };
for (const op of ["put", "get"]) {
  for (let i = 0; i < WARMUP_OPS + OPS; i++) {
    const key = `k${i % 16}`;
    const sentAtMs = now();
    if (op === "put") await client.put(key, value);
    else await client.get(key);
    const repliedAtMs = now();
    if (i >= WARMUP_OPS) {
      windows[op].push({ sentAtMs, repliedAtMs });
      latencies[op].push(repliedAtMs - sentAtMs);
    }
  }
}
const leaderId = (await Promise.all(IDS.map((id) => memberStatus(nc, "timeline", id)))).find(
  (s) => s?.role === "leader",
)?.id;
await client.close();
await nc.close();
await members.stop();
nats.stop();

// Each member wrote its marks on exit; the member named in a mark tells whose they are.
const marks = readdirSync(marksDir)
  .flatMap((file) => JSON.parse(readFileSync(join(marksDir, file), "utf8")))
  .sort((a, b) => a.atMs - b.atMs);
rmSync(marksDir, { recursive: true, force: true });

/**
 * The steps of one operation: every mark inside its window, named by who made it (client, leader,
 * the follower that answered first, the other one) and, for repeated marks, their order.
 */
function stepsOf(window) {
  const inside = marks.filter((m) => m.atMs >= window.sentAtMs && m.atMs <= window.repliedAtMs);
  const leader = inside.find((m) => m.what === "receive kv.request")?.member ?? leaderId;
  const answered = inside.filter((m) => m.member !== leader && m.what === "send raft.append.resp").map((m) => m.member);
  const followers = [...new Set([...answered, ...IDS.filter((id) => id !== leader)])];
  const role = (member) =>
    member === leader ? "leader" : member === followers[0] ? "follower (first to answer)" : "follower (second)";
  const steps = [{ who: "client", what: "send request", atMs: window.sentAtMs }];
  const seen = new Map();
  for (const mark of inside) {
    const who = role(mark.member);
    const key = `${who}\0${mark.what}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    steps.push({ who, what: n === 1 ? mark.what : `${mark.what} #${n}`, atMs: mark.atMs });
  }
  steps.push({ who: "client", what: "reply received", atMs: window.repliedAtMs });
  return steps.map((s) => ({ ...s, offsetMs: s.atMs - window.sentAtMs }));
}

function timeline(op) {
  const byStep = new Map();
  for (const window of windows[op]) {
    for (const step of stepsOf(window)) {
      const key = `${step.who}\0${step.what}`;
      if (!byStep.has(key)) byStep.set(key, { who: step.who, what: step.what, offsets: [] });
      byStep.get(key).offsets.push(step.offsetMs);
    }
  }
  return [...byStep.values()]
    .filter((s) => s.offsets.length >= MIN_SHARE * windows[op].length)
    .map((s) => {
      const sorted = s.offsets.sort((a, b) => a - b);
      return {
        who: s.who,
        what: s.what,
        share: s.offsets.length / windows[op].length,
        p50: percentile(sorted, 50),
        mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
      };
    })
    .sort((a, b) => a.p50 - b.p50);
}

const results = {};
for (const op of ["put", "get"]) {
  const sorted = latencies[op].sort((a, b) => a - b);
  // One operation as it happened: the one whose latency is the median.
  const median = windows[op].find((w) => w.repliedAtMs - w.sentAtMs === percentile(sorted, 50));
  results[op] = {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    steps: timeline(op),
    medianOperation: stepsOf(median).map(({ who, what, offsetMs }) => ({ who, what, offsetMs })),
  };
}

const lines = [
  "# Timeline of one operation",
  "",
  "Command: `pnpm bench:timeline` (test/bench/timeline.mjs). One client does operations one after another",
  "against three Raft members, each on its own server of a local 3-server NATS cluster; the members",
  "publish marks on Quorate's timeline channel (`TIMELINE_CHANNEL` in @quorate/core), recorded in each",
  "process and lined up on one clock. Times are milliseconds from the client's send; a step is",
  `listed when it occurs in at least ${MIN_SHARE * 100}% of the operations; "#2" is a step's second occurrence.`,
  "",
  `Run ${info.date} on ${info.machine}; Node ${info.node}; ${info.natsServer}; ${OPS} operations of each kind after ${WARMUP_OPS}.`,
  "",
  `Floors measured in the same run: NATS request round trip p50 ${fmt(floors.natsRoundTrip, 3)} ms; durable LMDB commit (one 100 B entry) p50 ${fmt(floors.lmdbCommit, 3)} ms.`,
  "",
];
for (const op of ["put", "get"]) {
  const r = results[op];
  lines.push(
    `## ${op === "put" ? "Put (100 B)" : "Linearizable get (ReadIndex)"}: p50 ${fmt(r.p50, 3)} ms, p99 ${fmt(r.p99, 3)} ms`,
    "",
    "| ms from send, p50 | mean | where | step |",
    "| ---: | ---: | --- | --- |",
    ...r.steps.map((s) => `| ${fmt(s.p50, 3)} | ${fmt(s.mean, 3)} | ${s.who} | ${s.what} |`),
    "",
    "The operation whose latency was the median, every mark in order:",
    "",
    "| ms from send | where | step |",
    "| ---: | --- | --- |",
    ...r.medianOperation.map((s) => `| ${fmt(s.offsetMs, 3)} | ${s.who} | ${s.what} |`),
    "",
  );
}
const text = lines.join("\n");
console.log(text);
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, "timeline.md"), text);
writeFileSync(join(OUT, "timeline.json"), `${JSON.stringify({ info, floors, ops: OPS, results }, null, 2)}\n`);
clearTimeout(watchdog);
