import {
  type Attributes,
  type BatchObservableResult,
  type Context,
  type Counter,
  context,
  type Histogram,
  type Meter,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";

/**
 * Quorate's telemetry conventions, on the OpenTelemetry API only: libraries never configure
 * an SDK. With no SDK registered every call here is a cheap no-op.
 */

export const INSTRUMENTATION_NAME = "@quorate";
export const INSTRUMENTATION_VERSION = "0.1.0";

// The API's proxy tracer follows an SDK registered later, so one instance serves the process.
let cachedTracer: Tracer | undefined;

export function tracer(): Tracer {
  cachedTracer ??= trace.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  return cachedTracer;
}

export function meter(): Meter {
  return metrics.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
}

/** Span names. Every name and attribute is listed in docs/telemetry.md. */
export const SpanName = {
  raftRound: "raft.round",
  raftElection: "raft.election",
  kvClient: (op: string) => `kv.${op}`,
  kvServer: (op: string) => `kv.serve.${op}`,
  publish: (type: string) => `publish ${type}`,
  process: (type: string) => `process ${type}`,
} as const;

/** Our own attributes; messaging attributes follow the OpenTelemetry messaging conventions. */
export const Attr = {
  cluster: "quorate.cluster",
  group: "quorate.group",
  member: "quorate.member",
  term: "quorate.raft.term",
  firstIndex: "quorate.raft.first_index",
  lastIndex: "quorate.raft.last_index",
  batchSize: "quorate.raft.batch_size",
  quorumSize: "quorate.raft.quorum_size",
  preVote: "quorate.raft.pre_vote",
  outcome: "quorate.raft.outcome",
  peer: "quorate.peer",
  granted: "quorate.raft.granted",
  index: "quorate.raft.index",
  kvKey: "quorate.kv.key",
  messagingSystem: "messaging.system",
  messagingOperationName: "messaging.operation.name",
  messagingOperationType: "messaging.operation.type",
  messagingDestination: "messaging.destination.name",
  messagingBodySize: "messaging.message.body.size",
} as const;

/** Trace context travels in NATS headers, which arrive here as a plain string record. */
const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

const getter: TextMapGetter<Readonly<Record<string, string>> | undefined> = {
  keys: (carrier) => (carrier === undefined ? [] : Object.keys(carrier)),
  get: (carrier, key) => carrier?.[key],
};

/** Headers carrying `ctx`, or undefined when nothing is being traced (headers cost ~35% on NATS). */
export function injectHeaders(ctx: Context): Record<string, string> | undefined {
  if (!trace.getSpan(ctx)?.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier, setter);
  return Object.keys(carrier).length === 0 ? undefined : carrier;
}

/** The remote context in `headers`, or undefined when the frame carries none. */
export function extractContext(headers: Readonly<Record<string, string>> | undefined): Context | undefined {
  if (headers === undefined) return undefined;
  const ctx = propagation.extract(ROOT_CONTEXT, headers, getter);
  return trace.getSpanContext(ctx) === undefined ? undefined : ctx;
}

export function messagingAttributes(operation: "publish" | "process", destination: string, bytes?: number): Attributes {
  return {
    [Attr.messagingSystem]: "nats",
    [Attr.messagingOperationName]: operation,
    [Attr.messagingOperationType]: operation === "publish" ? "send" : "process",
    [Attr.messagingDestination]: destination,
    ...(bytes === undefined ? {} : { [Attr.messagingBodySize]: bytes }),
  };
}

/** A PRODUCER span for one send, ended at once; returns the headers that carry it. */
export function producerHeaders(
  parent: Context,
  type: string,
  attributes: Attributes,
): Record<string, string> | undefined {
  if (!trace.getSpan(parent)?.isRecording()) return undefined;
  const span = tracer().startSpan(
    SpanName.publish(type),
    { kind: SpanKind.PRODUCER, attributes: { ...attributes, ...messagingAttributes("publish", type) } },
    parent,
  );
  const headers = injectHeaders(trace.setSpan(parent, span));
  span.end();
  return headers;
}

/** A CONSUMER span for handling one received frame, child of the sender's context. */
export function startConsumerSpan(parent: Context, type: string, attributes: Attributes): Span {
  return tracer().startSpan(
    SpanName.process(type),
    { kind: SpanKind.CONSUMER, attributes: { ...attributes, ...messagingAttributes("process", type) } },
    parent,
  );
}

/** The active context, for hosts that capture it when a call enters. */
export function activeContext(): Context {
  return context.active();
}

/**
 * Runs `fn` outside any trace, as a timer callback does. A host catching up on ticks while it
 * handles a message or a caller's request runs them here, so that what a tick starts (an
 * election, a resend) does not join the trace of whatever it was handling.
 */
export function untraced<T>(fn: () => T): T {
  return context.with(ROOT_CONTEXT, fn);
}

export type { Attributes, Context, Link, Span } from "@opentelemetry/api";
export { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";

/** Metric instruments shared by the consensus hosts. Created once per process. */
export interface ConsensusMetrics {
  commitLatency: Histogram;
  proposals: Counter;
  commits: Counter;
  electionsStarted: Counter;
  electionsWon: Counter;
  leaderChanges: Counter;
  batchSize: Histogram;
}

let shared: ConsensusMetrics | undefined;

export function consensusMetrics(): ConsensusMetrics {
  if (shared !== undefined) return shared;
  const m = meter();
  shared = {
    commitLatency: m.createHistogram("quorate.commit.latency", {
      unit: "s",
      description: "Time from a leader accepting a proposal batch to its commit",
      advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5] },
    }),
    proposals: m.createCounter("quorate.proposals", { description: "Commands accepted for replication by a leader" }),
    commits: m.createCounter("quorate.commits", { description: "Entries committed, counted by the leader" }),
    electionsStarted: m.createCounter("quorate.elections.started", {
      description: "Campaigns started (pre-vote and vote)",
    }),
    electionsWon: m.createCounter("quorate.elections.won", { description: "Campaigns won" }),
    leaderChanges: m.createCounter("quorate.leader.changes", { description: "Times a member saw a new leader" }),
    batchSize: m.createHistogram("quorate.batch.size", {
      description: "Commands per proposal batch",
      advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] },
    }),
  };
  return shared;
}

/** What a running member reports on each metrics collection. */
export interface MemberGauges {
  term: number;
  /** Committed entries not yet applied. */
  applyLag: number;
  /** Messages sent and not yet acknowledged (leader), or proposals waiting (any member). */
  inflight: number;
  /** Inbound frames dropped so far, by reason. */
  dropped: Readonly<Record<string, number>>;
}

/** Registers observable instruments for one member; returns the function that unregisters them. */
export function observeMember(attributes: Attributes, read: () => MemberGauges): () => void {
  const m = meter();
  const term = m.createObservableGauge("quorate.term", { description: "Current term (Raft) or ballot round (Paxos)" });
  const lag = m.createObservableGauge("quorate.apply.lag", { description: "Committed entries not yet applied" });
  const inflight = m.createObservableGauge("quorate.inflight", { description: "Messages or proposals in flight" });
  const dropped = m.createObservableCounter("quorate.frames.dropped", {
    description: "Inbound frames dropped, by reason",
  });
  const callback = (result: BatchObservableResult): void => {
    const g = read();
    result.observe(term, g.term, attributes);
    result.observe(lag, g.applyLag, attributes);
    result.observe(inflight, g.inflight, attributes);
    for (const [reason, count] of Object.entries(g.dropped)) result.observe(dropped, count, { ...attributes, reason });
  };
  const observables = [term, lag, inflight, dropped];
  m.addBatchObservableCallback(callback, observables);
  return () => m.removeBatchObservableCallback(callback, observables);
}

/**
 * Runs `fn` inside a new span (a child of `parent`, else of the active context) that records
 * a thrown error, so an application's own trace continues into what `fn` does.
 */
export async function traced<T>(
  name: string,
  kind: SpanKind,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  parent: Context = context.active(),
): Promise<T> {
  const span = tracer().startSpan(name, { kind, attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    span.end();
  }
}
