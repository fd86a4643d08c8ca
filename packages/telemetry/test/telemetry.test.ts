import { readFileSync } from "node:fs";
import { context, type Span, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type FrameInfo,
  INSTRUMENTATION_VERSION,
  MAX_OPEN_SPANS,
  messagingAttributes,
  OpenSpans,
  parentOrLinks,
  type ReceivedMessage,
  RoleTelemetry,
  type RoleTransport,
  serverAttributes,
  startRoundSpan,
} from "../src/index.js";

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(() => provider.register());
beforeEach(() => exporter.reset());
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

const noGauges = () => ({ term: 0, applyLag: 0, inflight: 0, dropped: {} });

/** A role whose telemetry sends and receives one message type, to test the base. */
class TestRole extends RoleTelemetry {
  send(parent: Span, to: string | null): Record<string, string> | undefined {
    return this.producer(trace.setSpan(context.active(), parent), "test.ping", to, { "quorate.test.n": 1 });
  }

  receive(message: ReceivedMessage, frame: FrameInfo | undefined): Span | null {
    return this.consumer(message, frame, {});
  }

  protected endAll(): void {}
}

const natsTransport: RoleTransport = {
  cluster: "prod",
  group: "g",
  self: "n1",
  routeTo: (to) =>
    to === null
      ? { subject: "quorate.prod.g.b.n1", template: "quorate.prod.g.b.{sender}" }
      : { subject: `quorate.prod.g.d.${to}.n1`, template: "quorate.prod.g.d.{target}.{sender}" },
  serverAddress: () => "nats.example:4222",
};

describe("@quorate/telemetry", () => {
  it("a send span carries the messaging conventions: system, subject, its template, operation, server", () => {
    const role = new TestRole(natsTransport, noGauges);
    const parent = trace.getTracer("test").startSpan("round");
    const headers = role.send(parent, "n2");
    parent.end();
    role.close();
    expect(headers?.traceparent).toBeDefined();
    const send = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER);
    expect(send?.name).toBe("publish test.ping");
    expect(send?.attributes).toEqual({
      "quorate.cluster": "prod",
      "quorate.group": "g",
      "quorate.member": "n1",
      "quorate.peer": "n2",
      "quorate.test.n": 1,
      "quorate.message.type": "test.ping",
      "messaging.system": "nats",
      "messaging.system.name": "nats",
      "messaging.operation.type": "send",
      "messaging.operation.name": "publish",
      "messaging.destination.name": "quorate.prod.g.d.n2.n1",
      "messaging.destination.template": "quorate.prod.g.d.{target}.{sender}",
      "server.address": "nats.example",
      "server.port": 4222,
    });
  });

  it("a receive span carries the subject it arrived on and the frame's size; an untraced frame gets none", () => {
    const sender = new TestRole(natsTransport, noGauges);
    const receiver = new TestRole({ ...natsTransport, self: "n2" }, noGauges);
    const parent = trace.getTracer("test").startSpan("round");
    const headers = sender.send(parent, null);
    const frame = { bytes: 87, route: { subject: "quorate.prod.g.b.n1", template: "quorate.prod.g.b.{sender}" } };
    const span = receiver.receive({ type: "test.ping", sender: "n1", headers }, frame);
    span?.end();
    expect(receiver.receive({ type: "test.ping", sender: "n1", headers: undefined }, frame)).toBeNull();
    parent.end();
    const receive = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CONSUMER);
    expect(receive?.name).toBe("process test.ping");
    expect(receive?.attributes).toMatchObject({
      "quorate.member": "n2",
      "quorate.peer": "n1",
      "quorate.message.type": "test.ping",
      "messaging.system": "nats",
      "messaging.operation.type": "process",
      "messaging.destination.name": "quorate.prod.g.b.n1",
      "messaging.destination.template": "quorate.prod.g.b.{sender}",
      "messaging.message.body.size": 87,
      "server.address": "nats.example",
    });
    const producer = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER);
    expect(receive?.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);
  });

  it("a transport without subjects or server (in memory) gives no destination and no server", () => {
    expect(messagingAttributes("send", undefined)).toEqual({
      "messaging.system": "nats",
      "messaging.system.name": "nats",
      "messaging.operation.type": "send",
      "messaging.operation.name": "publish",
    });
  });

  it("server attributes split host and port, IPv6 hosts included", () => {
    expect(serverAttributes("10.0.0.1:4222")).toEqual({ "server.address": "10.0.0.1", "server.port": 4222 });
    expect(serverAttributes("[::1]:4222")).toEqual({ "server.address": "::1", "server.port": 4222 });
    expect(serverAttributes("nats")).toEqual({ "server.address": "nats" });
    expect(serverAttributes(undefined)).toEqual({});
  });

  it("the instrumentation version is the package's", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(INSTRUMENTATION_VERSION).toBe(pkg.version);
  });

  it("open spans are bounded: past the limit the oldest is evicted, and drained in order", () => {
    const evicted: string[] = [];
    const open = new OpenSpans<string, number>((_, key) => evicted.push(key), 2);
    open.set("a", 1);
    open.set("b", 2);
    open.set("a", 3); // replaced: now the newest
    open.set("c", 4);
    expect(evicted).toEqual(["b"]);
    expect(open.size).toBe(2);
    expect(open.take("a")).toBe(3);
    expect(open.take("a")).toBeUndefined();
    expect(open.drain()).toEqual([["c", 4]]);
    expect(open.size).toBe(0);
    expect(new OpenSpans(() => {}).limit).toBe(MAX_OPEN_SPANS);
    expect(() => new OpenSpans(() => {}, 0)).toThrow(/limit/);
  });

  it("a round serving one caller is its child; serving several, it links to each and starts a trace", () => {
    const tracer = trace.getTracer("test");
    const [a, b] = [tracer.startSpan("a"), tracer.startSpan("b")];
    const ctxA = trace.setSpan(context.active(), a);
    const ctxB = trace.setSpan(context.active(), b);
    expect(parentOrLinks([ctxA, ctxA, context.active()])).toEqual({ parent: ctxA, links: [] });
    expect(parentOrLinks([]).parent).toBeUndefined();
    const several = parentOrLinks([ctxA, ctxB]);
    expect(several.parent).toBeUndefined();
    expect(several.links.map((l) => l.context.spanId)).toEqual([a.spanContext().spanId, b.spanContext().spanId]);

    const one = startRoundSpan("round", { "quorate.test.n": 1 }, [ctxA]);
    one.span.end();
    expect(trace.getSpan(one.context)).toBe(one.span);
    const linked = startRoundSpan("round", {}, [ctxA, ctxB]);
    linked.span.end();
    const [first, second] = exporter.getFinishedSpans().filter((s) => s.name === "round");
    expect(first?.parentSpanContext?.spanId).toBe(a.spanContext().spanId);
    expect(second?.parentSpanContext).toBeUndefined();
    expect(second?.links).toHaveLength(2);
    a.end();
    b.end();
  });
});
