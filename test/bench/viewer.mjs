#!/usr/bin/env node
// The round viewer's numbers: OTLP/HTTP receiver throughput (spans/s: protobuf, protobuf+gzip,
// JSON), then, in Debian's Chromium driven by playwright-core, the page's render time for the
// rounds list with 10,000 rounds in the window and for one round's diagram. Prints numbers; not a test.
//   pnpm bench:viewer          BENCH_ROUNDS=10000 QUORATE_CHROMIUM=/usr/bin/chromium
import { createRequire } from "node:module";
import { availableParallelism, loadavg } from "node:os";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { decodeTraceProtobuf, startViewer } from "../../packages/viewer/dist/index.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10_000);
const CHROMIUM = process.env.QUORATE_CHROMIUM ?? "/usr/bin/chromium";
const SPANS_PER_REQUEST = 512;

const watchdog = setTimeout(() => {
  console.error("benchmark exceeded 10 minutes; aborting");
  process.exit(2);
}, 10 * 60_000);

// The SDK and the OTLP serializers are the viewer package's dev dependencies: load them from there.
const fromViewer = createRequire(new URL("../../packages/viewer/package.json", import.meta.url));
const api = await import(fromViewer.resolve("@opentelemetry/api"));
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import(
  fromViewer.resolve("@opentelemetry/sdk-trace-base")
);
const { resourceFromAttributes } = await import(fromViewer.resolve("@opentelemetry/resources"));
const { JsonTraceSerializer, ProtobufTraceSerializer } = await import(
  fromViewer.resolve("@opentelemetry/otlp-transformer")
);

/** Three members' tracers, each its own process (resource) as in a deployment. */
function members() {
  return ["n1", "n2", "n3"].map((id) => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.instance.id": `bench-${id}`, "service.namespace": "bench" }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    return { id, exporter, tracer: provider.getTracer("@quorate") };
  });
}

/** `count` Raft rounds as members record them: a round and its send on the leader, a receipt on each follower. */
function raftRounds(count) {
  const [leader, ...followers] = members();
  const t0 = Date.now() - count * 5;
  const attrs = (id, more) => ({ "quorate.cluster": "bench", "quorate.member": id, ...more });
  for (let i = 0; i < count; i++) {
    const start = t0 + i * 5;
    const index = { "quorate.raft.term": 1, "quorate.raft.first_index": i + 1, "quorate.raft.last_index": i + 1 };
    const round = leader.tracer.startSpan(
      "raft.round",
      { startTime: start, attributes: attrs("n1", { ...index, "quorate.raft.quorum_size": 2 }) },
      api.ROOT_CONTEXT,
    );
    const send = leader.tracer.startSpan(
      "publish raft.append",
      {
        kind: api.SpanKind.PRODUCER,
        startTime: start + 0.1,
        attributes: attrs("n1", { ...index, "quorate.peer": "*" }),
      },
      api.trace.setSpan(api.ROOT_CONTEXT, round),
    );
    send.end(start + 0.2);
    followers.forEach((f, k) => {
      const receipt = f.tracer.startSpan(
        "process raft.append",
        { kind: api.SpanKind.CONSUMER, startTime: start + 0.5 + k, attributes: attrs(f.id, { "quorate.peer": "n1" }) },
        api.trace.setSpan(api.ROOT_CONTEXT, send),
      );
      receipt.end(start + 1.5 + k);
      round.addEvent("ack", { "quorate.peer": f.id, "quorate.raft.index": i + 1 }, start + 1.6 + k);
    });
    round.addEvent("commit", { "quorate.raft.index": i + 1 }, start + 1.7);
    round.addEvent("apply", { "quorate.raft.index": i + 1 }, start + 1.8);
    round.end(start + 1.9);
  }
  return [leader, ...followers].map((m) => m.exporter.getFinishedSpans());
}

/** Export requests of up to SPANS_PER_REQUEST spans, each from one process, as a BatchSpanProcessor sends them. */
function requests(spansByMember, serialize) {
  const out = [];
  for (const spans of spansByMember)
    for (let i = 0; i < spans.length; i += SPANS_PER_REQUEST)
      out.push(serialize(spans.slice(i, i + SPANS_PER_REQUEST)));
  return out;
}

async function post(url, bodies, headers) {
  const started = performance.now();
  let next = 0;
  // Four exporters at once, as four member processes would.
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++];
        const res = await fetch(`${url}/v1/traces`, { method: "POST", body, headers });
        if (!res.ok) throw new Error(`export refused: ${res.status} ${await res.text()}`);
      }
    }),
  );
  return performance.now() - started;
}

const fmt = (n, digits = 1) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const rows = [];

const spansByMember = raftRounds(ROUNDS);
const totalSpans = spansByMember.reduce((n, s) => n + s.length, 0);
const protobuf = requests(spansByMember, (s) => ProtobufTraceSerializer.serializeRequest(s));
const json = requests(spansByMember, (s) => JsonTraceSerializer.serializeRequest(s));
const gzipped = protobuf.map((b) => gzipSync(b));

{
  // Once to warm the JIT up, then measured.
  for (const body of protobuf) decodeTraceProtobuf(body);
  const started = performance.now();
  let decoded = 0;
  for (const body of protobuf) decoded += decodeTraceProtobuf(body).length;
  const ms = performance.now() - started;
  rows.push(["protobuf decoding alone", `${fmt((decoded / ms) * 1000, 0)} spans/s`]);
}

let viewer;
for (const [label, bodies, headers] of [
  ["receiver, protobuf", protobuf, { "content-type": "application/x-protobuf" }],
  ["receiver, protobuf + gzip", gzipped, { "content-type": "application/x-protobuf", "content-encoding": "gzip" }],
  ["receiver, JSON", json, { "content-type": "application/json" }],
]) {
  await viewer?.close();
  viewer = await startViewer({ port: 0 });
  const ms = await post(viewer.url, bodies, headers);
  if (viewer.store.spanCount !== totalSpans) throw new Error(`kept ${viewer.store.spanCount} of ${totalSpans} spans`);
  rows.push([`${label} (${bodies.length} exports)`, `${fmt((totalSpans / ms) * 1000, 0)} spans/s`]);
}

// The window now holds ROUNDS rounds (the JSON run's): the page's numbers.
{
  const started = performance.now();
  const page = viewer.store.query({ limit: 60 });
  rows.push([
    `server: first list query over ${fmt(page.total, 0)} rounds (summaries built)`,
    `${fmt(performance.now() - started)} ms`,
  ]);
  const again = performance.now();
  viewer.store.query({ kind: "proposal", offset: 5000, limit: 60 });
  rows.push(["server: a filtered page after that", `${fmt(performance.now() - again, 2)} ms`]);
  const model = performance.now();
  viewer.store.round(page.rounds[0].id);
  rows.push(["server: one round's diagram model", `${fmt(performance.now() - model, 2)} ms`]);
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  const tab = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const timings = () => tab.evaluate(() => globalThis.viewerTimings);
  const loadStarted = performance.now();
  await tab.goto(`${viewer.url}/`);
  await tab.locator("#list .row").first().waitFor();
  rows.push([
    `page: load to first rows, ${fmt(ROUNDS, 0)} rounds in the window`,
    `${fmt(performance.now() - loadStarted)} ms`,
  ]);
  rows.push(["page: first rows render (DOM only)", `${fmt((await timings()).listRenderMs, 2)} ms`]);
  const rowCount = await tab.locator("#list .row").count();
  rows.push(["page: rows in the DOM (virtualised)", `${rowCount}`]);
  // Jumps through the list: each one fetches a page of rows and renders it.
  const jumps = [];
  const renders = [];
  for (const fraction of [0.5, 0.1, 0.9, 0.3, 0.7]) {
    const before = (await timings()).listRenders;
    const started = performance.now();
    await tab.locator("#list").evaluate((list, f) => {
      list.scrollTop = list.scrollHeight * f;
    }, fraction);
    await tab.waitForFunction((n) => globalThis.viewerTimings.listRenders > n, before);
    jumps.push(performance.now() - started);
    renders.push((await timings()).listRenderMs);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  rows.push(["page: scroll jump, fetch and render (median of 5)", `${fmt(median(jumps))} ms`]);
  rows.push(["page: rows render after a jump (median of 5)", `${fmt(median(renders), 2)} ms`]);
  const clickStarted = performance.now();
  await tab
    .locator("#list .row")
    .nth(Math.floor(rowCount / 2))
    .click();
  await tab.locator("svg.sequence").waitFor();
  rows.push(["page: click to a round's diagram shown", `${fmt(performance.now() - clickStarted)} ms`]);
  rows.push(["page: round diagram render (SVG only)", `${fmt((await timings()).roundRenderMs, 2)} ms`]);
} finally {
  await browser.close();
  await viewer.close();
}

console.log(
  `\nround viewer: ${fmt(ROUNDS, 0)} Raft rounds of 4 spans (${fmt(totalSpans, 0)} spans), ${SPANS_PER_REQUEST} spans per export; ` +
    `load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores\n`,
);
const width = Math.max(...rows.map(([label]) => label.length));
for (const [label, value] of rows) console.log(`  ${label.padEnd(width)}  ${value}`);
clearTimeout(watchdog);
