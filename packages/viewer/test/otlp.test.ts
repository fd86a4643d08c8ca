import { gzipSync } from "node:zlib";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../core/src/index.js";
import {
  decodeTraceFile,
  decodeTraceJson,
  decodeTraceProtobuf,
  type RoundModel,
  type RoundPage,
  SpanKindCode,
  type SpanRecord,
  StatusCode,
  startViewer,
  type Viewer,
} from "../src/index.js";

/** Real SDK spans, as a member's exporter would send them: a round, a send under it, an event, a link, an error. */
function sdkSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.instance.id": "c1-n1",
      "service.namespace": "c1",
      "service.name": "q",
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("@quorate");
  const linked = tracer.startSpan("kv.serve.put", { kind: SpanKind.SERVER });
  const round = tracer.startSpan("raft.round", {
    kind: SpanKind.INTERNAL,
    attributes: { "quorate.raft.term": 3, "quorate.member": "n1", "quorate.ratio": 0.5, "quorate.flags": ["a", "b"] },
    links: [{ context: linked.spanContext() }],
  });
  const send = tracer.startSpan(
    "publish raft.append",
    { kind: SpanKind.PRODUCER, attributes: { "quorate.peer": "*", "messaging.message.body.size": 123 } },
    trace.setSpan(context.active(), round),
  );
  send.end();
  round.addEvent("ack", { "quorate.peer": "n2", "quorate.raft.index": 7, "quorate.raft.granted": true });
  round.setStatus({ code: SpanStatusCode.ERROR, message: "overwritten by another leader" });
  round.end();
  linked.end();
  return exporter.getFinishedSpans();
}

const hrMs = ([s, ns]: [number, number]) => s * 1000 + ns / 1e6;

function expectMatches(decoded: SpanRecord[], spans: ReadableSpan[]): void {
  expect(decoded.map((s) => s.name)).toEqual(spans.map((s) => s.name));
  for (const [i, span] of spans.entries()) {
    const d = decoded[i] as SpanRecord;
    expect(d.traceId).toBe(span.spanContext().traceId);
    expect(d.spanId).toBe(span.spanContext().spanId);
    expect(d.parentSpanId).toBe(span.parentSpanContext?.spanId);
    expect(d.kind).toBe(span.kind + 1);
    expect(d.startMs).toBeCloseTo(hrMs(span.startTime), 3);
    expect(d.endMs).toBeCloseTo(hrMs(span.endTime), 3);
    expect(d.instance).toBe("c1-n1");
    expect(d.namespace).toBe("c1");
  }
  const round = decoded.find((s) => s.name === "raft.round") as SpanRecord;
  expect(round.attributes).toEqual({
    "quorate.raft.term": 3,
    "quorate.member": "n1",
    "quorate.ratio": 0.5,
    "quorate.flags": ["a", "b"],
  });
  expect(round.events).toHaveLength(1);
  expect(round.events[0]?.name).toBe("ack");
  expect(round.events[0]?.attributes).toEqual({
    "quorate.peer": "n2",
    "quorate.raft.index": 7,
    "quorate.raft.granted": true,
  });
  expect(round.status).toBe(StatusCode.error);
  expect(round.statusMessage).toBe("overwritten by another leader");
  const server = decoded.find((s) => s.name === "kv.serve.put") as SpanRecord;
  expect(server.kind).toBe(SpanKindCode.server);
  expect(round.links).toEqual([{ traceId: server.traceId, spanId: server.spanId }]);
  const send = decoded.find((s) => s.name === "publish raft.append") as SpanRecord;
  expect(send.parentSpanId).toBe(round.spanId);
  expect(send.attributes["messaging.message.body.size"]).toBe(123);
}

describe("OTLP trace decoding", () => {
  const spans = sdkSpans();

  it("decodes the SDK's protobuf export: ids, kinds, times, attributes, events, links, status, resource", () => {
    const bytes = ProtobufTraceSerializer.serializeRequest(spans);
    expect(bytes).toBeDefined();
    expectMatches(decodeTraceProtobuf(bytes as Uint8Array), spans);
  });

  it("decodes the SDK's JSON export to the same records as its protobuf export", () => {
    const json = JSON.parse(new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans)));
    const fromJson = decodeTraceJson(json);
    expectMatches(fromJson, spans);
    const fromProtobuf = decodeTraceProtobuf(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array);
    expect(fromJson).toEqual(fromProtobuf);
  });

  it("reads nanosecond times past 2^53 exactly to the microsecond, from strings and {low, high}", () => {
    const span = (start: unknown) => ({
      resourceSpans: [
        {
          scopeSpans: [
            { spans: [{ traceId: "ab".repeat(16), spanId: "cd".repeat(8), name: "x", startTimeUnixNano: start }] },
          ],
        },
      ],
    });
    const ns = 1_764_000_000_123_456_789n;
    expect(decodeTraceJson(span(ns.toString()))[0]?.startMs).toBe(1_764_000_000_123 + 0.456789);
    const low = Number(ns & 0xffffffffn) | 0;
    const high = Number(ns >> 32n);
    expect(decodeTraceJson(span({ low, high }))[0]?.startMs).toBeCloseTo(1_764_000_000_123.4568, 3);
  });

  it("rejects a truncated protobuf export and a span without ids with a Rejected error", () => {
    const bytes = ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array;
    expect(() => decodeTraceProtobuf(bytes.subarray(0, bytes.length - 5))).toThrow(
      expect.objectContaining({ code: ErrorCode.Rejected }),
    );
    expect(() => decodeTraceJson({ resourceSpans: [{ scopeSpans: [{ spans: [{ name: "x" }] }] }] })).toThrow(
      expect.objectContaining({ code: ErrorCode.Rejected }),
    );
  });

  it("reads a saved export as one object, an array, or one request per line", () => {
    const text = new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans));
    expect(decodeTraceFile(text)).toHaveLength(3);
    expect(decodeTraceFile(`[${text},${text}]`)).toHaveLength(6);
    expect(decodeTraceFile(`${text}\n\n${text}\n`)).toHaveLength(6);
    expect(decodeTraceFile("")).toEqual([]);
    expect(() => decodeTraceFile(`${text}\nnot json`)).toThrow(/line 2 is not JSON/);
  });
});

describe("the OTLP/HTTP receiver", () => {
  let viewer: Viewer;
  const spans = sdkSpans();
  beforeAll(async () => {
    viewer = await startViewer({ port: 0 });
  });
  afterAll(() => viewer.close());

  const post = (path: string, body: Uint8Array, headers: Record<string, string>) =>
    fetch(`${viewer.url}${path}`, { method: "POST", body, headers });

  it("takes gzipped protobuf and JSON exports, answers in kind, and keeps the round", async () => {
    const protobuf = ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array;
    const res = await post("/v1/traces", gzipSync(protobuf), {
      "content-type": "application/x-protobuf",
      "content-encoding": "gzip",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-protobuf");
    expect(viewer.counters.spans).toBe(3);
    const json = JsonTraceSerializer.serializeRequest(spans) as Uint8Array;
    const jsonRes = await post("/v1/traces", json, { "content-type": "application/json" });
    expect(jsonRes.status).toBe(200);
    expect(await jsonRes.json()).toEqual({});
    // The same spans twice: still one round of three spans.
    expect(viewer.store.spanCount).toBe(3);
    const page = (await (await fetch(`${viewer.url}/api/rounds`)).json()) as RoundPage;
    expect(page.total).toBe(1);
    expect(page.rounds[0]).toMatchObject({ kind: "proposal", protocol: "raft", cluster: "c1", outcome: "overwritten" });
    const model = (await (await fetch(`${viewer.url}/api/rounds/${page.rounds[0]?.id}`)).json()) as RoundModel;
    // n2 acknowledged but exported nothing: its lane is inferred from the ack.
    expect(model.laneList.map((l) => [l.id, l.exported])).toEqual([
      ["c1-n1", true],
      ["peer:n2", false],
    ]);
  });

  it("answers metrics and logs exports with success and drops them", async () => {
    const res = await post("/v1/metrics", new Uint8Array(), { "content-type": "application/x-protobuf" });
    expect(res.status).toBe(200);
  });

  it("refuses a malformed export with 400 and counts it, and serves the page", async () => {
    const before = viewer.counters.rejected;
    const res = await post("/v1/traces", new TextEncoder().encode("{"), { "content-type": "application/json" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/not JSON/);
    const bad = await post("/v1/traces", new Uint8Array([0x0a, 0x05, 1]), { "content-type": "application/x-protobuf" });
    expect(bad.status).toBe(400);
    expect(viewer.counters.rejected).toBe(before + 2);
    const page = await fetch(`${viewer.url}/`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toContain("app.js");
    expect((await fetch(`${viewer.url}/api/rounds/nope`)).status).toBe(404);
  });
});
