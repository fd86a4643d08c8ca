import type { Headers, Inbound, ReceivedFrame } from "@quorate/core";
import type { OutboundMessage } from "@quorate/core/internal";
import { OpenSpans, RoleTelemetry, type Span } from "@quorate/telemetry";
import { ballotAttributes, PaxosAttr } from "./telemetry.js";

/**
 * An acceptor's telemetry: a CONSUMER span per traced p1a or p2a, from its arrival until the
 * reply leaves, which is after the state it reports is fsynced.
 */
export class AcceptorTelemetry extends RoleTelemetry {
  /** Consumer spans by the reply that ends them. */
  readonly #awaitingReply = new OpenSpans<OutboundMessage, Span>((evicted) => {
    evicted.setAttribute(PaxosAttr.outcome, "unanswered");
    evicted.end();
  });

  /** A frame arrived: a traced prepare or accept starts a consumer span, handed back for `handled`. */
  received(message: Inbound, frame: ReceivedFrame | undefined): Span | null {
    if (message.type !== "paxos.p1a" && message.type !== "paxos.p2a") return null;
    const body = message.body as Inbound<"paxos.p1a" | "paxos.p2a">["body"];
    return this.consumer(message, frame, ballotAttributes(body.ballot));
  }

  /** The machine handled the frame and queued `replies`; the span ends when they leave. */
  handled(span: Span | null, replies: readonly OutboundMessage[]): void {
    if (span === null) return;
    // Not for this acceptor (a prepare from a stranger): nothing to wait for.
    if (replies.length === 0) span.end();
    for (const reply of replies) this.#awaitingReply.set(reply, span);
  }

  /** A reply leaves: it ends the span of the frame it answers. Replies carry no trace context. */
  sending(message: OutboundMessage): Headers | undefined {
    const span = this.#awaitingReply.take(message);
    if (span === undefined) return undefined;
    if (message.type === "paxos.p2b") {
      const body = message.body as OutboundMessage<"paxos.p2b">["body"];
      span.setAttributes({ [PaxosAttr.outcome]: "accepted", [PaxosAttr.slots]: body.slots.length });
    } else {
      span.setAttribute(PaxosAttr.outcome, message.type === "paxos.nack" ? "rejected" : "promised");
    }
    span.end();
    return undefined;
  }

  protected endAll(): void {
    for (const span of new Set(this.#awaitingReply.drain().map(([, span]) => span))) {
      span.setAttribute(PaxosAttr.outcome, "unanswered");
      span.end();
    }
  }
}
