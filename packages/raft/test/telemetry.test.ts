import { context, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, LocalCluster } from "./cluster.js";

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(() => {
  provider.register();
});

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

const member = (s: ReadableSpan) => s.attributes["quorate.member"];

describe("Raft telemetry", () => {
  it("a committed proposal is one trace: client span, the leader's round, and a quorum of followers", async () => {
    const cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    await cluster.waitFor(() => [...cluster.nodes.values()].every((n) => n.leader() === leader.id));
    exporter.reset();

    const client = trace.getTracer("test").startSpan("client.put", { kind: SpanKind.CLIENT });
    await context.with(trace.setSpan(context.active(), client), () => leader.propose(encode("traced")));
    client.end();
    await cluster.waitFor(() => [...cluster.machines.values()].every((m) => m.items.includes("traced")));
    await cluster.stopAll();

    const traceId = client.spanContext().traceId;
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const round = spans.find((s) => s.name === "raft.round");
    expect(round, spans.map((s) => s.name).join(",")).toBeDefined();
    expect(round?.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect(member(round as ReadableSpan)).toBe(leader.id);
    expect(round?.attributes["quorate.raft.batch_size"]).toBe(1);
    const events = round?.events.map((e) => e.name) ?? [];
    expect(events).toContain("ack");
    expect(events).toContain("commit");
    expect(events).toContain("apply");

    const producers = spans.filter((s) => s.kind === SpanKind.PRODUCER && s.name === "publish raft.append");
    expect(producers.length).toBeGreaterThan(0);
    expect(producers.every((p) => p.parentSpanContext?.spanId === round?.spanContext().spanId)).toBe(true);
    expect(producers[0]?.attributes["messaging.system"]).toBe("nats");

    const consumers = spans.filter((s) => s.kind === SpanKind.CONSUMER && s.name === "process raft.append");
    const followers = new Set(consumers.map(member));
    // A quorum of 2 in 3 is the leader and at least one follower; here both followers took part.
    expect(followers.size).toBeGreaterThanOrEqual(1);
    expect(followers.has(leader.id)).toBe(false);
    const producerIds = new Set(producers.map((p) => p.spanContext().spanId));
    expect(consumers.every((c) => producerIds.has(c.parentSpanContext?.spanId ?? ""))).toBe(true);
  });

  it("send and receive spans follow the OpenTelemetry messaging conventions with the concrete subject", async () => {
    const cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    await cluster.waitFor(() => [...cluster.nodes.values()].every((n) => n.leader() === leader.id));
    exporter.reset();
    const client = trace.getTracer("test").startSpan("client.put");
    await context.with(trace.setSpan(context.active(), client), () => leader.propose(encode("semconv")));
    client.end();
    await cluster.waitFor(() => [...cluster.machines.values()].every((m) => m.items.includes("semconv")));
    await cluster.stopAll();
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === client.spanContext().traceId);

    // A leader broadcasts an append to every follower or sends it to one (catching up, or its reply came first).
    const routeOf = (peer: unknown) =>
      peer === "*"
        ? {
            "messaging.destination.name": `quorate.test.kv.b.${leader.id}`,
            "messaging.destination.template": "quorate.test.kv.b.{sender}",
          }
        : {
            "messaging.destination.name": `quorate.test.kv.d.${peer}.${leader.id}`,
            "messaging.destination.template": "quorate.test.kv.d.{target}.{sender}",
          };
    const receive = spans.find((s) => s.kind === SpanKind.CONSUMER);
    const send = spans.find((s) => s.spanContext().spanId === receive?.parentSpanContext?.spanId);
    expect(send?.kind).toBe(SpanKind.PRODUCER);
    expect(send?.name).toBe("publish raft.append");
    const route = routeOf(send?.attributes["quorate.peer"]);
    expect(send?.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.operation.type": "send",
      "quorate.message.type": "raft.append",
      ...route,
    });
    // The in-memory transport is connected to no server.
    expect(send?.attributes["server.address"]).toBeUndefined();

    expect(receive?.name).toBe("process raft.append");
    expect(receive?.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.operation.type": "process",
      "quorate.message.type": "raft.append",
      ...route,
      "quorate.raft.success": true,
    });
    expect(receive?.attributes["messaging.message.body.size"]).toBeGreaterThan(0);
  });

  it("proposals of several callers in one batch link to each caller", async () => {
    const cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    exporter.reset();
    const tracer = trace.getTracer("test");
    const callers = [tracer.startSpan("c1"), tracer.startSpan("c2"), tracer.startSpan("c3")];
    await Promise.all(
      callers.map((c, i) => context.with(trace.setSpan(context.active(), c), () => leader.propose(encode(`m${i}`)))),
    );
    for (const c of callers) c.end();
    await cluster.stopAll();
    const round = exporter
      .getFinishedSpans()
      .find((s) => s.name === "raft.round" && s.attributes["quorate.raft.batch_size"] === 3);
    expect(round?.links.map((l) => l.context.spanId).sort()).toEqual(callers.map((c) => c.spanContext().spanId).sort());
  });

  it("an election is a span with its votes as events and an outcome", async () => {
    exporter.reset();
    const cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    await cluster.waitFor(() =>
      exporter
        .getFinishedSpans()
        .some((s) => s.name === "raft.election" && s.attributes["quorate.raft.outcome"] === "won"),
    );
    await cluster.stopAll();
    const won = exporter
      .getFinishedSpans()
      .find((s) => s.name === "raft.election" && s.attributes["quorate.raft.outcome"] === "won");
    expect(member(won as ReadableSpan)).toBe(leader.id);
    const names = won?.events.map((e) => e.name) ?? [];
    expect(names).toContain("pre-vote.start");
    expect(names).toContain("vote.start");
    const votes = won?.events.filter((e) => e.name === "vote") ?? [];
    expect(votes.some((v) => v.attributes?.["quorate.raft.granted"] === true)).toBe(true);
    // Voters handled the traced RequestVote as consumer spans of the same trace.
    const voterSpans = exporter
      .getFinishedSpans()
      .filter((s) => s.name === "process raft.vote" && s.spanContext().traceId === won?.spanContext().traceId);
    expect(voterSpans.length).toBeGreaterThan(0);
  });
});
