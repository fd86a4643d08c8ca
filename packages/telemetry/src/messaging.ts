import { type Attributes, type Context, type Span, SpanKind, trace } from "@opentelemetry/api";
import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from "@opentelemetry/semantic-conventions";
// The messaging attributes are still incubating in the conventions, so only this entry point has them.
import {
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_TEMPLATE,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  ATTR_MESSAGING_SYSTEM_NAME,
  MESSAGING_OPERATION_TYPE_VALUE_PROCESS,
  MESSAGING_OPERATION_TYPE_VALUE_SEND,
} from "@opentelemetry/semantic-conventions/incubating";
import { Attr, injectHeaders, SpanName, tracer } from "./conventions.js";

/** Where a message travels on NATS: the subject, its pattern, and the server (none in memory). */
export interface MessageRoute {
  readonly subject: string;
  /** The subject with its variable tokens named, e.g. `quorate.prod.default.d.{target}.{sender}`. */
  readonly template: string;
  /** `host:port` (or `host`) of the NATS server the connection uses now. */
  readonly serverAddress?: string | undefined;
}

/**
 * `send` is a PRODUCER publishing, `process` a CONSUMER handling a message its subscription
 * delivered (OpenTelemetry's `messaging.operation.type`, where `publish` is the deprecated name
 * of `send`). Quorate has no `receive` (pull) operation: core NATS pushes every message.
 */
export type MessagingOperation = "send" | "process";

const OPERATION_TYPE: Record<MessagingOperation, string> = {
  send: MESSAGING_OPERATION_TYPE_VALUE_SEND,
  process: MESSAGING_OPERATION_TYPE_VALUE_PROCESS,
};

/**
 * `messaging.message.body.size`: a frame's encoded size in bytes, on PRODUCER and CONSUMER spans
 * and on the round events that record a reply's arrival (its sender traces no span for it).
 */
export const MESSAGE_BODY_SIZE = ATTR_MESSAGING_MESSAGE_BODY_SIZE;

/** NATS's own verbs, for `messaging.operation.name`. */
const OPERATION_NAME: Record<MessagingOperation, string> = { send: "publish", process: "process" };

/** `server.address` and `server.port` of a `host:port` (IPv6 hosts in brackets). */
export function serverAttributes(hostPort: string | undefined): Attributes {
  if (hostPort === undefined || hostPort === "") return {};
  const match = /^\[?(.*?)\]?:(\d+)$/.exec(hostPort);
  if (match === null) return { [ATTR_SERVER_ADDRESS]: hostPort };
  return { [ATTR_SERVER_ADDRESS]: match[1] as string, [ATTR_SERVER_PORT]: Number(match[2]) };
}

/**
 * OpenTelemetry messaging attributes of one operation on `route`. `messaging.system` is set
 * beside its newer name `messaging.system.name`, since backends still key on the older one.
 */
export function messagingAttributes(
  operation: MessagingOperation,
  route: MessageRoute | undefined,
  bodyBytes?: number,
): Attributes {
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: "nats",
    [ATTR_MESSAGING_SYSTEM_NAME]: "nats",
    [ATTR_MESSAGING_OPERATION_TYPE]: OPERATION_TYPE[operation],
    [ATTR_MESSAGING_OPERATION_NAME]: OPERATION_NAME[operation],
    ...serverAttributes(route?.serverAddress),
  };
  if (route !== undefined) {
    attributes[ATTR_MESSAGING_DESTINATION_NAME] = route.subject;
    attributes[ATTR_MESSAGING_DESTINATION_TEMPLATE] = route.template;
  }
  if (bodyBytes !== undefined) attributes[MESSAGE_BODY_SIZE] = bodyBytes;
  return attributes;
}

/**
 * A PRODUCER span for one send of a `type` message on `route`, ended at once; returns the
 * headers that carry it, or undefined when `parent` is not being traced. The transport encodes
 * the frame after this: a caller that wants its size on the span (`bodyBytes`) measures it.
 */
export function producerHeaders(
  parent: Context,
  type: string,
  route: MessageRoute | undefined,
  attributes: Attributes,
  bodyBytes?: number,
): Record<string, string> | undefined {
  if (!trace.getSpan(parent)?.isRecording()) return undefined;
  const span = tracer().startSpan(
    SpanName.publish(type),
    {
      kind: SpanKind.PRODUCER,
      attributes: { ...attributes, [Attr.messageType]: type, ...messagingAttributes("send", route, bodyBytes) },
    },
    parent,
  );
  const headers = injectHeaders(trace.setSpan(parent, span));
  span.end();
  return headers;
}

/** A CONSUMER span for handling one received `type` message of `bodyBytes`, child of the sender's context. */
export function startConsumerSpan(
  parent: Context,
  type: string,
  route: MessageRoute | undefined,
  bodyBytes: number | undefined,
  attributes: Attributes,
): Span {
  return tracer().startSpan(
    SpanName.process(type),
    {
      kind: SpanKind.CONSUMER,
      attributes: { ...attributes, [Attr.messageType]: type, ...messagingAttributes("process", route, bodyBytes) },
    },
    parent,
  );
}
