import { context, type Span, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { encodeKvCommand } from "@quorate/kv";
import type { Learner } from "@quorate/paxos";
import { encodeSessionCommand } from "@quorate/service";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PaxosCluster } from "./cluster.js";

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

const MEMBERS = { acceptors: ["n1", "n2", "n3"], proposers: ["n1", "n2"], learners: ["n1", "n2", "n3"] };
const member = (s: ReadableSpan) => s.attributes["quorate.member"];
const isAcceptor = (s: ReadableSpan) => String(member(s)).endsWith("-acceptor");

function put(key: string, value: string): Uint8Array {
  return encodeSessionCommand(null, encodeKvCommand({ op: "put", key, value }));
}

/** A started cluster whose learners all follow the active proposer. */
async function settledCluster(): Promise<PaxosCluster> {
  // The traces below assume one clean round. Ticks follow real time, so an event-loop stall as
  // long as a leader timeout (5 ms ticks: 50 ms, as the first spans' export on a loaded machine
  // can take) starts a second proposer: the default tick keeps that timeout at half a second.
  const cluster = await new PaxosCluster(MEMBERS, { tickMs: 50 }).start();
  await cluster.waitFor(() => cluster.activeProposer() !== undefined, 10_000, "an active proposer");
  const active = cluster.activeProposer()?.id;
  await cluster.waitFor(
    () => [...cluster.learners.values()].every((l) => l.leader() === active),
    5_000,
    "learners follow the active proposer",
  );
  return cluster;
}

/** The spans of one trace, by the span that started it. */
function traceOf(root: Span): ReadableSpan[] {
  const traceId = root.spanContext().traceId;
  return exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
}

let cluster: PaxosCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe("Paxos telemetry", () => {
  it("a committed proposal is one trace: the caller, the request, phase 2 with its accepts, and a quorum of acceptors", async () => {
    cluster = await settledCluster();
    const c = cluster;
    const learner = c.learners.get("n2-learner") as Learner;
    exporter.reset();

    const client = trace.getTracer("test").startSpan("client.put", { kind: SpanKind.CLIENT });
    await context.with(trace.setSpan(context.active(), client), () => learner.propose(put("x", "traced")));
    client.end();
    const slot = learner.appliedIndex;
    await c.waitFor(
      () => [...c.learners.values()].every((l) => l.appliedIndex >= slot),
      5_000,
      "every learner applies",
    );
    await c.stop();
    cluster = undefined;

    const spans = traceOf(client);
    const names = spans.map((s) => `${s.name}@${member(s)}`).join(", ");
    const request = spans.find((s) => s.kind === SpanKind.PRODUCER && s.name === "publish paxos.request");
    expect(request, names).toBeDefined();
    expect(request?.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect(member(request as ReadableSpan)).toBe("n2-learner");

    const phase2 = spans.find((s) => s.name === "paxos.phase2");
    expect(phase2, names).toBeDefined();
    expect(phase2?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
    expect(phase2?.attributes["quorate.paxos.first_slot"]).toBe(slot);
    expect(phase2?.attributes["quorate.paxos.quorum_size"]).toBe(2);
    const accepts = phase2?.events.filter((e) => e.name === "accept") ?? [];
    const acceptors = new Set(accepts.map((e) => e.attributes?.["quorate.peer"]));
    expect(acceptors.size).toBeGreaterThanOrEqual(2);
    expect(phase2?.events.map((e) => e.name)).toContain("chosen");

    const producers = spans.filter((s) => s.kind === SpanKind.PRODUCER && s.name === "publish paxos.p2a");
    expect(producers.length).toBeGreaterThan(0);
    expect(producers.every((p) => p.parentSpanContext?.spanId === phase2?.spanContext().spanId)).toBe(true);
    // The accept is a broadcast: its subject names the proposer that sent it, its pattern any sender.
    const sender = member(producers[0] as ReadableSpan);
    const broadcast = {
      "messaging.system": "nats",
      "quorate.message.type": "paxos.p2a",
      "messaging.destination.name": `quorate.test.paxos.b.${sender}`,
      "messaging.destination.template": "quorate.test.paxos.b.{sender}",
    };
    expect(producers[0]?.attributes).toMatchObject({ ...broadcast, "messaging.operation.type": "send" });

    const producerIds = new Set(producers.map((p) => p.spanContext().spanId));
    const consumers = spans.filter((s) => s.kind === SpanKind.CONSUMER && s.name === "process paxos.p2a");
    expect(consumers.every((s) => producerIds.has(s.parentSpanContext?.spanId ?? ""))).toBe(true);
    // A phase-2 quorum of acceptors handled the p2a until their vote left, after the fsync.
    const voters = consumers.filter(isAcceptor);
    expect(new Set(voters.map(member)).size).toBeGreaterThanOrEqual(2);
    expect(voters.every((s) => s.attributes["quorate.paxos.outcome"] === "accepted")).toBe(true);
    expect(voters[0]?.attributes).toMatchObject({ ...broadcast, "messaging.operation.type": "process" });
    expect(voters[0]?.attributes["messaging.message.body.size"]).toBeGreaterThan(0);
    // Learners took the value from the same p2a: chosen, then applied.
    const learning = consumers.filter((s) => String(member(s)).endsWith("-learner"));
    expect(learning.length).toBeGreaterThan(0);
    for (const span of learning) expect(span.events.map((e) => e.name)).toEqual(["chosen", "apply"]);
  });

  it("a leadership change is a phase 1 span with the promises as events, and traced prepares on the acceptors", async () => {
    cluster = await settledCluster();
    const c = cluster;
    const first = c.activeProposer()?.id as string;
    exporter.reset();
    c.crash(first);
    await c.waitFor(() => {
      const active = c.activeProposer();
      return active !== undefined && active.id !== first;
    }, 10_000);
    const next = c.activeProposer()?.id;
    await c.stop();
    cluster = undefined;

    const adopted = exporter
      .getFinishedSpans()
      .find((s) => s.name === "paxos.phase1" && s.attributes["quorate.paxos.outcome"] === "adopted");
    expect(adopted).toBeDefined();
    const phase1 = adopted as ReadableSpan;
    expect(member(phase1)).toBe(next);
    expect(phase1.attributes["quorate.paxos.proposer"]).toBe(next);
    expect(phase1.attributes["quorate.paxos.quorum_size"]).toBe(2);
    const promises = phase1.events.filter((e) => e.name === "promise");
    expect(new Set(promises.map((e) => e.attributes?.["quorate.peer"])).size).toBeGreaterThanOrEqual(2);

    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === phase1.spanContext().traceId);
    const prepares = spans.filter((s) => s.kind === SpanKind.PRODUCER && s.name === "publish paxos.p1a");
    expect(prepares.length).toBeGreaterThan(0);
    expect(prepares.every((p) => p.parentSpanContext?.spanId === phase1.spanContext().spanId)).toBe(true);
    const promised = spans.filter(
      (s) => s.kind === SpanKind.CONSUMER && s.name === "process paxos.p1a" && isAcceptor(s),
    );
    expect(new Set(promised.map(member)).size).toBeGreaterThanOrEqual(2);
    expect(promised.some((s) => s.attributes["quorate.paxos.outcome"] === "promised")).toBe(true);
  });
});
