import { DROP_REASONS, type DropReason, decodeFrame, type Envelope, encodeFrame } from "./codec.js";
import type { NodeId } from "./ids.js";
import { type Logger, RateLimiter } from "./log.js";
import type { MessageMap, MessageType } from "./schema.js";
import { markTimeline, timelineActive } from "./timeline.js";

/** W3C trace context and similar carriers; kept as plain strings, empty by default. */
export type Headers = Readonly<Record<string, string>>;

/** A frame that passed decoding and validation, with the sender it was verified to come from. */
export interface Inbound<T extends MessageType = MessageType> extends Envelope<T> {
  readonly headers: Headers | undefined;
}

/**
 * Where a frame travels, for the OpenTelemetry messaging attributes of the spans around it:
 * the concrete NATS subject and its pattern, with the member tokens as `{sender}` and `{target}`.
 */
export interface FrameRoute {
  readonly subject: string;
  readonly template: string;
}

/** What the transport knows of a received frame beyond its content. */
export interface ReceivedFrame {
  /** Size of the encoded frame (the NATS message payload), in bytes. */
  readonly bytes: number;
  /** The subject it arrived on; undefined when the transport has none to tell. */
  readonly route: FrameRoute | undefined;
}

/** `frame` is undefined when a wrapper (the simulator's) hands over a message it held back. */
export type InboundHandler = (message: Inbound, frame?: ReceivedFrame) => void;

export interface TransportStats {
  sent: number;
  received: number;
  /** Frames whose handler threw; the error is logged and reported, and delivery goes on. */
  handlerErrors: number;
  readonly dropped: Record<DropReason, number>;
}

/**
 * How consensus members of one group talk. Sends never block and never wait: consensus
 * retransmits on its own, so a send is fire-and-forget, like core NATS. Inbound frames are
 * handed to the single listener synchronously, in arrival order.
 */
export interface Transport {
  readonly self: NodeId;
  readonly cluster: string;
  readonly group: string;
  /** Sends to every other member of the group. */
  broadcast<T extends MessageType>(type: T, body: MessageMap[T], headers?: Headers): void;
  /** Sends to one member. */
  send<T extends MessageType>(to: NodeId, type: T, body: MessageMap[T], headers?: Headers): void;
  /** Sets the consumer of inbound frames; frames that arrive before it is set are dropped. */
  listen(handler: InboundHandler): void;
  readonly stats: TransportStats;
  /** The subject a frame to `to` (null: to every member) is published on, for telemetry. */
  routeTo?(to: NodeId | null): FrameRoute;
  /** The NATS server connected to now, as `host:port`; undefined in memory or while disconnected. */
  serverAddress?(): string | undefined;
  /** Stops receiving, flushes what was sent, and releases the connection if the transport owns it. */
  close(): Promise<void>;
}

export function emptyStats(): TransportStats {
  const dropped = {} as Record<DropReason, number>;
  for (const reason of DROP_REASONS) dropped[reason] = 0;
  return { sent: 0, received: 0, handlerErrors: 0, dropped };
}

/**
 * The receive path both transports share: decode, validate, check the subject's sender
 * against the envelope's, count and log drops at a limited rate, then hand over.
 */
export class FrameReceiver {
  readonly stats = emptyStats();
  #handler: InboundHandler | undefined;
  readonly #limiter: RateLimiter;

  constructor(
    private readonly scope: { cluster: string; group: string; self: NodeId },
    private readonly logger: Logger,
    private readonly maxFrameBytes: number,
    now: () => number,
  ) {
    this.#limiter = new RateLimiter(10, 10_000, now);
  }

  listen(handler: InboundHandler): void {
    this.#handler = handler;
  }

  /** `subjectSender` is the sender named by the subject the frame arrived on, `route` that subject. */
  receive(data: Uint8Array, subjectSender: string, headers: Headers | undefined, route?: FrameRoute): void {
    // Broadcasts come back to their publisher; that is not a message to ourselves. The subject
    // names the sender, and a frame whose envelope names another is dropped anyway, so this
    // member's own frames are skipped before paying for their decoding (a leader's own appends).
    if (subjectSender === this.scope.self) return;
    const result = decodeFrame(data, this.scope, this.maxFrameBytes);
    if (!result.ok) {
      this.#drop(result.reason, result.detail, subjectSender);
      return;
    }
    const envelope = result.envelope;
    if (envelope.sender !== subjectSender) {
      this.#drop("spoofed", `envelope says ${envelope.sender}`, subjectSender);
      return;
    }
    const handler = this.#handler;
    if (handler === undefined) return;
    this.stats.received++;
    if (timelineActive()) markTimeline(this.scope.self, `receive ${envelope.type}`);
    try {
      handler(
        {
          cluster: envelope.cluster,
          group: envelope.group,
          sender: envelope.sender,
          type: envelope.type,
          body: envelope.body,
          headers,
        } as Inbound,
        { bytes: data.length, route },
      );
    } catch (err) {
      // One bad frame must not stop the subscription; the host decides how loud to be.
      this.stats.handlerErrors++;
      this.logger.error("frame handler failed", { type: envelope.type, from: envelope.sender, error: String(err) });
      this.onHandlerError?.(err);
    }
  }

  /** Lets a host (the simulator) turn a handler failure into a failed run. */
  onHandlerError: ((err: unknown) => void) | undefined;

  #drop(reason: DropReason, detail: string, from: string): void {
    this.stats.dropped[reason]++;
    const suppressed = this.#limiter.take();
    if (suppressed !== null) {
      this.logger.warn("dropped frame", { reason, detail, from, suppressed, self: this.scope.self });
    }
  }
}

/** Encodes with the transport's own identity; shared by both transports' send paths. */
export function encodeFor<T extends MessageType>(
  scope: { cluster: string; group: string; self: NodeId },
  type: T,
  body: MessageMap[T],
): Uint8Array {
  return encodeFrame(scope.cluster, scope.group, scope.self, type, body);
}
