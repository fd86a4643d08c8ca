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
    // The sender measured the frame the receiver got.
    expect(send?.attributes["messaging.message.body.size"]).toBe(receive?.attributes["messaging.message.body.size"]);
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

  it("a linearizable read is a round on the leader: its heartbeat, the followers' acks, confirmed, served", async () => {
    const cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    // ReadIndex needs an entry of the leader's term committed; a proposal makes sure of it.
    await leader.propose(encode("before"));
    exporter.reset();
    const client = trace.getTracer("test").startSpan("client.get", { kind: SpanKind.CLIENT });
    await context.with(trace.setSpan(context.active(), client), () => leader.readBarrier());
    client.end();
    await cluster.waitFor(() =>
      exporter
        .getFinishedSpans()
        .some((s) => s.name === "process raft.append" && s.spanContext().traceId === client.spanContext().traceId),
    );
    await cluster.stopAll();

    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === client.spanContext().traceId);
    const read = spans.find((s) => s.name === "raft.read");
    expect(read, spans.map((s) => s.name).join(",")).toBeDefined();
    expect(read?.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect(member(read as ReadableSpan)).toBe(leader.id);
    expect(read?.status.code).toBe(0);
    expect(read?.attributes["quorate.raft.quorum_size"]).toBe(2);
    const events = read?.events ?? [];
    const names = events.map((e) => e.name);
    expect(names.indexOf("ack")).toBeGreaterThanOrEqual(0);
    expect(names.indexOf("ack")).toBeLessThan(names.indexOf("confirmed"));
    expect(names.at(-1)).toBe("served");
    expect(read?.attributes["quorate.raft.read_index"]).toBeGreaterThan(0);
    const ack = events.find((e) => e.name === "ack");
    expect(ack?.attributes?.["quorate.peer"]).not.toBe(leader.id);
    expect(ack?.attributes?.["quorate.message.type"]).toBe("raft.append.resp");
    expect(ack?.attributes?.["messaging.message.body.size"]).toBeGreaterThan(0);

    // The heartbeat that confirms it: a PRODUCER child of the read, handled by the followers.
    const heartbeats = spans.filter((s) => s.kind === SpanKind.PRODUCER);
    expect(heartbeats.map((s) => s.name)).toEqual(["publish raft.append"]);
    const heartbeat = heartbeats[0] as ReadableSpan;
    expect(heartbeat.parentSpanContext?.spanId).toBe(read?.spanContext().spanId);
    expect(heartbeat.attributes["quorate.raft.seq"]).toBe(ack?.attributes?.["quorate.raft.seq"]);
    const handled = spans.filter((s) => s.parentSpanContext?.spanId === heartbeat.spanContext().spanId);
    expect(handled.length).toBeGreaterThan(0);
    for (const c of handled) {
      expect(c.kind).toBe(SpanKind.CONSUMER);
      expect(member(c)).not.toBe(leader.id);
      expect(c.attributes["messaging.message.body.size"]).toBe(heartbeat.attributes["messaging.message.body.size"]);
    }
  });

  it("a follower refuses a read and starts no read round", async () => {
    const cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    await cluster.waitFor(() => [...cluster.nodes.values()].every((n) => n.leader() === leader.id));
    const follower = [...cluster.nodes.values()].find((n) => n.id !== leader.id);
    exporter.reset();
    const client = trace.getTracer("test").startSpan("client.get");
    await expect(
      context.with(trace.setSpan(context.active(), client), () => follower?.readBarrier()),
    ).rejects.toMatchObject({ code: "QUORATE_NOT_LEADER" });
    client.end();
    await cluster.stopAll();
    expect(exporter.getFinishedSpans().filter((s) => s.name === "raft.read")).toEqual([]);
  });
});
