/**
 * Quorate's telemetry, on the OpenTelemetry API only: conventions shared by every protocol
 * (names, trace propagation in NATS headers, messaging attributes, metrics), a bounded
 * registry of open spans, rounds with one parent or links, and a base for role telemetry.
 * Each protocol names its own spans and attributes in its package.
 */
export type { Attributes, Context, Link, Span } from "@opentelemetry/api";
export { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
export {
  Attr,
  activeContext,
  extractContext,
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  injectHeaders,
  meter,
  SpanName,
  traced,
  tracer,
  untraced,
} from "./conventions.js";
export {
  MESSAGE_BODY_SIZE,
  type MessageRoute,
  type MessagingOperation,
  messagingAttributes,
  producerHeaders,
  serverAttributes,
  startConsumerSpan,
} from "./messaging.js";
export { type ConsensusMetrics, consensusMetrics, type MemberGauges, observeMember } from "./metrics.js";
export { MAX_OPEN_SPANS, OpenSpans } from "./open-spans.js";
export { type FrameInfo, type ReceivedMessage, RoleTelemetry, type RoleTransport } from "./role.js";
export { parentOrLinks, type RoundSpan, startRoundSpan } from "./rounds.js";
