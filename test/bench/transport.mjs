#!/usr/bin/env node
// Benchmark: Quorate's codec + NATS transport against raw @nats-io publish/subscribe and request.
// Not a test: it prints numbers. Run with `pnpm bench:transport` (builds first; imports dist).
// Starts its own nats-server (from PATH) on a free loopback port; every phase has a fixed
// message count and a time limit, so the run always ends.
import { performance } from "node:perf_hooks";
import { EntryKind, encodeFrame, FrameReceiver, silentLogger } from "../../packages/core/dist/index.js";
import { packEntries } from "../../packages/raft/dist/internal.js";
import { connectNats, createNatsTransport } from "../../packages/transport-nats/dist/index.js";
import { startNatsServer } from "./cluster.mjs";

const THROUGHPUT_MESSAGES = 100_000;
const THROUGHPUT_RUNS = 3; // median of
const WINDOW = 5_000; // messages in flight, so neither side runs away from the other
const BATCH = 500; // publishes per event-loop turn
const RTT_WARMUP = 500;
const RTT_SAMPLES = 5_000;
const PHASE_LIMIT_MS = 60_000;
const GOAL_OVERHEAD = 0.2;

// A hard stop: whatever happens, the benchmark ends.
const watchdog = setTimeout(() => {
  console.error("benchmark exceeded 5 minutes; aborting");
  process.exit(2);
}, 300_000);

function appendBody(entries) {
  return {
    term: 3,
    prevLogIndex: 1_000,
    prevLogTerm: 3,
    leaderCommit: 999,
    seq: 42,
    entries: packEntries(
      Array.from({ length: entries }, (_, i) => ({
        term: 3,
        kind: EntryKind.Command,
        data: new Uint8Array(100).fill(i),
      })),
    ),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Sends `count` messages with a bounded window; resolves with messages per second. */
async function pump(count, sendOne, delivered) {
  const base = delivered();
  const received = () => delivered() - base;
  let sent = 0;
  const started = performance.now();
  while (received() < count) {
    const room = Math.min(count - sent, WINDOW - (sent - received()), BATCH);
    for (let i = 0; i < room; i++) sendOne(sent++);
    await tick();
    if (performance.now() - started > PHASE_LIMIT_MS) {
      throw new Error(`throughput phase timed out: ${received()} of ${count} delivered`);
    }
  }
  return count / ((performance.now() - started) / 1000);
}

/** Microseconds per call of `fn`, after a warm-up; shows where the per-frame time goes. */
function microsPerCall(fn, calls = 50_000) {
  for (let i = 0; i < 5_000; i++) fn();
  const started = performance.now();
  for (let i = 0; i < calls; i++) fn();
  return ((performance.now() - started) * 1000) / calls;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function roundTrips(once) {
  for (let i = 0; i < RTT_WARMUP; i++) await once();
  const samples = [];
  const started = performance.now();
  for (let i = 0; i < RTT_SAMPLES && performance.now() - started < PHASE_LIMIT_MS; i++) {
    const t = performance.now();
    await once();
    samples.push((performance.now() - t) * 1000);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length };
}

async function main() {
  const server = await startNatsServer();
  const ncA = await connectNats({ servers: server.url, name: "bench-a" });
  const ncB = await connectNats({ servers: server.url, name: "bench-b" });
  const scope = { cluster: "bench", group: "g1" };
  const a = createNatsTransport({ nc: ncA, ...scope, self: "a" });
  const b = createNatsTransport({ nc: ncB, ...scope, self: "b" });
  try {
    // --- throughput ---------------------------------------------------------------------
    let quorateDelivered = 0;
    let replyTo;
    b.listen((message) => {
      quorateDelivered++;
      if (message.type === "raft.vote")
        b.send("a", "raft.vote.resp", { term: message.body.term, granted: true, preVote: false });
    });
    a.listen((message) => {
      if (message.type === "raft.vote.resp") replyTo?.();
    });
    let rawDelivered = 0;
    ncB.subscribe("bench.raw.*", {
      callback: () => {
        rawDelivered++;
      },
    });
    ncB.subscribe("bench.rpc", { callback: (_err, msg) => msg.respond(msg.data) });
    await a.flush();
    await b.flush();
    await ncA.flush();
    await ncB.flush();

    const rows = [];
    for (const entries of [1, 16]) {
      const body = appendBody(entries);
      const frame = encodeFrame(scope.cluster, scope.group, "a", "raft.append", body);
      const sendQuorate = () => a.send("b", "raft.append", body);
      const sendRaw = () => ncA.publish("bench.raw.a", frame);
      // Warm both paths up (JIT, buffers) before measuring.
      await pump(20_000, sendRaw, () => rawDelivered);
      await pump(20_000, sendQuorate, () => quorateDelivered);
      const raw = [];
      const ours = [];
      for (let run = 0; run < THROUGHPUT_RUNS; run++) {
        raw.push(await pump(THROUGHPUT_MESSAGES, sendRaw, () => rawDelivered));
        ours.push(await pump(THROUGHPUT_MESSAGES, sendQuorate, () => quorateDelivered));
      }
      // The same frame through the shared codec and receive path alone, without NATS.
      const receiver = new FrameReceiver({ ...scope, self: "b" }, silentLogger, 1 << 20, Date.now);
      receiver.listen(() => {});
      const encodeUs = microsPerCall(() => encodeFrame(scope.cluster, scope.group, "a", "raft.append", body));
      const receiveUs = microsPerCall(() => receiver.receive(frame, "a", undefined));
      rows.push({
        encodeUs,
        receiveUs,
        label: `append, ${entries} x 100 B entr${entries === 1 ? "y" : "ies"}`,
        bytes: frame.length,
        raw: median(raw),
        ours: median(ours),
      });
    }
    if (b.stats.dropped.invalid + b.stats.dropped.malformed > 0) throw new Error("benchmark frames were dropped");

    // --- round trip ---------------------------------------------------------------------
    const voteBody = { term: 1, lastLogIndex: 10, lastLogTerm: 1, preVote: false };
    const voteFrame = encodeFrame(scope.cluster, scope.group, "a", "raft.vote", voteBody);
    const rawRtt = await roundTrips(() => ncA.request("bench.rpc", voteFrame, { timeout: 5_000 }));
    const ourRtt = await roundTrips(
      () =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no reply within 5 s")), 5_000);
          replyTo = () => {
            clearTimeout(timer);
            resolve();
          };
          a.send("b", "raft.vote", voteBody);
        }),
    );

    // --- report -------------------------------------------------------------------------
    const pct = (x) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;
    const num = (x) => Math.round(x).toLocaleString("en-US");
    console.log(
      `\nQuorate transport benchmark: nats-server ${server.version} on ${server.url}, Node ${process.version}`,
    );
    console.log(
      `throughput: one publisher -> one subscriber, median of ${THROUGHPUT_RUNS} x ${num(THROUGHPUT_MESSAGES)} messages\n`,
    );
    console.log(
      `${"frame".padEnd(28)}${"bytes".padStart(7)}${"raw msg/s".padStart(14)}${"quorate msg/s".padStart(16)}${"overhead".padStart(11)}`,
    );
    const overheads = [];
    for (const row of rows) {
      const overhead = row.raw / row.ours - 1;
      overheads.push(overhead);
      console.log(
        `${row.label.padEnd(28)}${String(row.bytes).padStart(7)}${num(row.raw).padStart(14)}${num(row.ours).padStart(16)}${pct(overhead).padStart(11)}`,
      );
    }
    console.log("\nper frame, in this process (µs): where the difference goes\n");
    console.log(
      `${"frame".padEnd(28)}${"raw pub+sub".padStart(13)}${"quorate".padStart(10)}${"encode".padStart(9)}${"decode+validate".padStart(17)}${"rest".padStart(8)}`,
    );
    for (const row of rows) {
      const rawUs = 1e6 / row.raw;
      const oursUs = 1e6 / row.ours;
      const rest = oursUs - rawUs - row.encodeUs - row.receiveUs;
      console.log(
        `${row.label.padEnd(28)}${rawUs.toFixed(1).padStart(13)}${oursUs.toFixed(1).padStart(10)}${row.encodeUs.toFixed(1).padStart(9)}${row.receiveUs.toFixed(1).padStart(17)}${rest.toFixed(1).padStart(8)}`,
      );
    }
    const rttOverhead = ourRtt.p50 / rawRtt.p50 - 1;
    overheads.push(rttOverhead);
    console.log(
      `\nround trip: ${num(rawRtt.n)} sequential (raw: nc.request; quorate: directed send + directed reply)\n`,
    );
    console.log(`${"".padEnd(28)}${"p50 µs".padStart(10)}${"p99 µs".padStart(10)}${"p50 overhead".padStart(15)}`);
    console.log(
      `${"raw NATS request".padEnd(28)}${rawRtt.p50.toFixed(0).padStart(10)}${rawRtt.p99.toFixed(0).padStart(10)}`,
    );
    console.log(
      `${"quorate send/reply".padEnd(28)}${ourRtt.p50.toFixed(0).padStart(10)}${ourRtt.p99.toFixed(0).padStart(10)}${pct(rttOverhead).padStart(15)}`,
    );
    const worst = Math.max(...overheads);
    console.log(
      `\ngoal: codec + transport <= ${pct(GOAL_OVERHEAD)} over raw NATS; worst measured ${pct(worst)}: ${worst <= GOAL_OVERHEAD ? "MET" : "MISSED"}\n`,
    );
  } finally {
    await a.close();
    await b.close();
    await ncA.close();
    await ncB.close();
    server.stop();
    clearTimeout(watchdog);
  }
}

main().catch((err) => {
  console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
  clearTimeout(watchdog);
  // Connections or the child may still hold the loop open after a failure.
  setTimeout(() => process.exit(1), 1_000).unref();
});
