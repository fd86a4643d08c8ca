import { type Attributes, type Context, type Link, ROOT_CONTEXT, type Span, SpanKind, trace } from "@opentelemetry/api";
import { tracer } from "./conventions.js";

/**
 * How a span that serves several callers at once (a batch of proposals) relates to them: one
 * traced caller is its parent; several are links, one each, and the span starts a trace.
 */
export function parentOrLinks(callers: readonly Context[]): { parent: Context | undefined; links: Link[] } {
  const traced = callers.filter((c) => trace.getSpanContext(c) !== undefined);
  const distinct = new Set(traced.map((c) => trace.getSpanContext(c)?.spanId));
  if (distinct.size <= 1) return { parent: traced[0], links: [] };
  const links: Link[] = [];
  for (const c of traced) {
    const spanContext = trace.getSpanContext(c);
    if (spanContext !== undefined) links.push({ context: spanContext });
  }
  return { parent: undefined, links };
}

/** An INTERNAL span for one round of a protocol, and the context its messages are sent in. */
export interface RoundSpan {
  readonly span: Span;
  readonly context: Context;
}

/** Starts a round serving `callers` (parent or links, as `parentOrLinks` decides); none: a new trace. */
export function startRoundSpan(name: string, attributes: Attributes, callers: readonly Context[] = []): RoundSpan {
  const { parent, links } = parentOrLinks(callers);
  const span = tracer().startSpan(name, { kind: SpanKind.INTERNAL, links, attributes }, parent);
  return { span, context: trace.setSpan(parent ?? ROOT_CONTEXT, span) };
}
