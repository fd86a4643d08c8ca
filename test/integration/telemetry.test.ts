import { context, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { memberSet, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";
import { type OtlpSpan, otlpEnv, spanAttribute, startOtlpReceiver } from "../harness/otlp.js";

describe("OpenTelemetry across processes", () => {
  const CLUSTER = "ittrace";
  let nats: NatsServer;
  let nc: NatsConnection;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let cleanup: () => Promise<void>;
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  beforeAll(async () => {
    provider.register();
    receiver = await startOtlpReceiver();
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "telemetry-test" });
    const set = memberSet({
      cluster: CLUSTER,
      ids: ["n1", "n2", "n3"],
      natsUrl: nats.url,
      user: nats.user,
      pass: nats.pass,
      env: otlpEnv(receiver),
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
    // Each process names itself within its cluster, so two clusters in one backend do not collide.
    for (const instance of processes) expect(["ittrace-n1", "ittrace-n2", "ittrace-n3"]).toContain(instance);
    expect(new Set(inTrace.map((s) => s.namespace))).toEqual(new Set([CLUSTER]));
    const consumers = inTrace.filter((s) => s.name === "process raft.append");
    expect(consumers.every((c) => c.instance !== round?.instance)).toBe(true);
    // The put opens the client's session first: two rounds, each the parent of its sends.
    const rounds = new Set(inTrace.filter((s) => s.name === "raft.round").map((s) => s.spanId));
    const producers = inTrace.filter((s) => s.name === "publish raft.append");
    expect(producers.length).toBeGreaterThan(0);
    expect(producers.every((p) => rounds.has(p.parentSpanId ?? ""))).toBe(true);
    const producerIds = new Set(producers.map((p) => p.spanId));
    expect(consumers.every((c) => producerIds.has(c.parentSpanId ?? ""))).toBe(true);
    // OpenTelemetry messaging conventions, with the subject and server of the member's NATS connection.
    const [send, receipt] = [producers[0] as OtlpSpan, consumers[0] as OtlpSpan];
    for (const span of [send, receipt]) {
      expect(spanAttribute(span, "messaging.system")).toBe("nats");
      expect(spanAttribute(span, "quorate.message.type")).toBe("raft.append");
      expect(spanAttribute(span, "messaging.destination.name")).toMatch(/^quorate\.ittrace\.[^.]+\.(b|d\.n\d)\.n\d$/);
      expect(spanAttribute(span, "messaging.destination.template")).toMatch(/\.(b|d\.\{target\})\.\{sender\}$/);
      expect(spanAttribute(span, "server.address")).toEqual(expect.any(String));
      expect(spanAttribute(span, "server.port")).toEqual(expect.any(Number));
    }
    expect(spanAttribute(send, "messaging.operation.type")).toBe("send");
    expect(spanAttribute(receipt, "messaging.operation.type")).toBe("process");
    expect(spanAttribute(receipt, "messaging.message.body.size")).toBeGreaterThan(0);
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
