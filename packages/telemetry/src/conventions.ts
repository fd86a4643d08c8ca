import { createRequire } from "node:module";
import {
  type Attributes,
  type Context,
  context,
  type Meter,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanKind,
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
/** This package's version (dist/ and src/ both sit one level below package.json). */
export const INSTRUMENTATION_VERSION: string = (
  createRequire(import.meta.url)("../package.json") as { version: string }
).version;

// The API's proxy tracer follows an SDK registered later, so one instance serves the process.
let cachedTracer: Tracer | undefined;

export function tracer(): Tracer {
  cachedTracer ??= trace.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  return cachedTracer;
}

export function meter(): Meter {
  return metrics.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
}

/**
 * Span names every protocol shares; each protocol names its own spans in its package. Every
 * name and attribute is listed in docs/telemetry.md.
 */
export const SpanName = {
  /** A client's call to a replicated service (`kv.put`, `jobs.command`). */
  serviceClient: (service: string, op: string) => `${service}.${op}`,
  /** A member serving a request of a replicated service (`kv.serve.put`, `jobs.serve.query`). */
  serviceServer: (service: string, op: string) => `${service}.serve.${op}`,
  publish: (type: string) => `publish ${type}`,
  process: (type: string) => `process ${type}`,
} as const;

/**
 * Attributes every protocol shares; each protocol names its own in its package, under
 * `quorate.<protocol>.`. Messaging attributes follow the OpenTelemetry conventions (messaging.ts).
 */
export const Attr = {
  cluster: "quorate.cluster",
  group: "quorate.group",
  member: "quorate.member",
  peer: "quorate.peer",
  /** The Quorate message type (`raft.append`, `paxos.p2a`, …); the NATS subject is `messaging.destination.name`. */
  messageType: "quorate.message.type",
  kvKey: "quorate.kv.key",
  /** Why inbound frames were dropped, on `quorate.frames.dropped`. */
  dropReason: "quorate.drop.reason",
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
