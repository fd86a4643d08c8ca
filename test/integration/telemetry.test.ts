import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../packages/kv/src/index.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { memberSet, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";

/** The parts of an OTLP/JSON span this test reads. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  instance: string;
}

/** A minimal OTLP/HTTP receiver (http/json) on loopback, standing in for a collector. */
function startReceiver(): Promise<{ server: Server; url: string; spans: OtlpSpan[]; metricNames: Set<string> }> {
  const spans: OtlpSpan[] = [];
  const metricNames = new Set<string>();
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on("end", () => {
      try {
        const payload = JSON.parse(body);
        if (req.url === "/v1/traces") {
          for (const rs of payload.resourceSpans ?? []) {
            const attrs = rs.resource?.attributes ?? [];
            const instance =
              attrs.find((a: { key: string }) => a.key === "service.instance.id")?.value?.stringValue ?? "?";
            for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push({ ...s, instance });
          }
        } else if (req.url === "/v1/metrics") {
          for (const rm of payload.resourceMetrics ?? [])
            for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) metricNames.add(m.name);
        }
      } catch {
        // Not JSON: not ours to read.
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}`, spans, metricNames });
    }),
  );
}

describe("OpenTelemetry across processes", () => {
  const CLUSTER = "ittrace";
  let nats: NatsServer;
  let nc: NatsConnection;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let cleanup: () => Promise<void>;
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  beforeAll(async () => {
    provider.register();
    receiver = await startReceiver();
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "telemetry-test" });
    const set = memberSet({
      cluster: CLUSTER,
      ids: ["n1", "n2", "n3"],
      natsUrl: nats.url,
      user: nats.user,
      pass: nats.pass,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "quorate-it",
        OTEL_BSP_SCHEDULE_DELAY: "100",
        OTEL_METRIC_EXPORT_INTERVAL: "500",
      },
    });
    cleanup = set.cleanup;
    for (const m of set.members) m.start();
    await waitForCluster(nc, CLUSTER, (s) => s.length === 3 && s.some((m) => m.role === "leader"));
  });

  afterAll(async () => {
    await cleanup?.();
    await nc?.close();
    await nats?.stop();
    receiver?.server.close();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  it("a put is one trace from the client through the round on the leader to a quorum of followers", async () => {
    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER });
    const app = trace.getTracer("app").startSpan("app.request", { kind: SpanKind.SERVER });
    await context.with(trace.setSpan(context.active(), app), () => client.put("traced", "value"));
    app.end();
    await client.close();
    const traceId = app.spanContext().traceId;

    const deadline = Date.now() + 20_000;
    let inTrace: OtlpSpan[] = [];
    // Members export spans as they end: a round ends after its sends, so wait for whole families.
    const complete = (spans: OtlpSpan[]) => {
      const roundIds = new Set(spans.filter((s) => s.name === "raft.round").map((s) => s.spanId));
      const sends = spans.filter((s) => s.name === "publish raft.append");
      const sendIds = new Set(sends.map((s) => s.spanId));
      const receipts = spans.filter((s) => s.name === "process raft.append");
      return (
        roundIds.size > 0 &&
        receipts.length > 0 &&
        sends.every((p) => roundIds.has(p.parentSpanId ?? "")) &&
        receipts.every((c) => sendIds.has(c.parentSpanId ?? ""))
      );
    };
    while (Date.now() < deadline) {
      inTrace = receiver.spans.filter((s) => s.traceId === traceId);
      if (complete(inTrace)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const round = inTrace.find((s) => s.name === "raft.round");
    expect(round, JSON.stringify(inTrace.map((s) => [s.name, s.instance]))).toBeDefined();
    const processes = new Set(inTrace.map((s) => s.instance));
    // The leader and at least one follower (a quorum of 3), in separate processes.
    expect(processes.size).toBeGreaterThanOrEqual(2);
    const consumers = inTrace.filter((s) => s.name === "process raft.append");
    expect(consumers.every((c) => c.instance !== round?.instance)).toBe(true);
    // The put opens the client's session first: two rounds, each the parent of its sends.
    const rounds = new Set(inTrace.filter((s) => s.name === "raft.round").map((s) => s.spanId));
    const producers = inTrace.filter((s) => s.name === "publish raft.append");
    expect(producers.length).toBeGreaterThan(0);
    expect(producers.every((p) => rounds.has(p.parentSpanId ?? ""))).toBe(true);
    const producerIds = new Set(producers.map((p) => p.spanId));
    expect(consumers.every((c) => producerIds.has(c.parentSpanId ?? ""))).toBe(true);
    // The client's own span (exported in this process) is the root of the trace.
    const local = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    expect(local.map((s) => s.name)).toContain("kv.put");
    expect(inTrace.some((s) => s.name === "kv.serve.put")).toBe(true);
  });

  it("members export consensus metrics", async () => {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !receiver.metricNames.has("quorate.commit.latency")) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect([...receiver.metricNames]).toEqual(
      expect.arrayContaining(["quorate.commit.latency", "quorate.term", "quorate.proposals"]),
    );
  });
});
