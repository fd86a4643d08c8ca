import type { Headers, Inbound, NodeId, ReceivedFrame } from "@quorate/core";
import type { OutboundMessage } from "@quorate/core/internal";
import { Attr, type Context, OpenSpans, RoleTelemetry, type Span, SpanStatusCode, trace } from "@quorate/telemetry";
import type { PaxosObservation } from "./outbox.js";
import { ballotAttributes, PaxosAttr } from "./telemetry.js";

/** A traced p2a a learner takes values from, until every slot it carried is applied here. */
interface Learning {
  readonly span: Span;
  readonly open: Set<number>;
}

/**
 * A learner's telemetry: its requests to the active proposer go out under PRODUCER spans of
 * their callers' contexts (so the proposer's phase 2 joins the caller's trace), and a CONSUMER
 * span per traced p2a records each of its slots being chosen and applied here.
 */
export class LearnerTelemetry extends RoleTelemetry {
  /** Callers' trace contexts by request seq, until applied. */
  readonly #callers = new OpenSpans<number, Context>(() => {});
  /** The consumer span of each open slot. */
  readonly #learning = new OpenSpans<number, Learning>((evicted, slot) =>
    LearnerTelemetry.#stopLearning(evicted, slot),
  );
  #leader: NodeId | null = null;

  /** A client request took `seq`; `caller` is the context its `propose()` was called in. */
  requested(seq: number, caller: Context): void {
    if (trace.getSpanContext(caller) === undefined) return;
    this.#callers.set(seq, caller);
  }

  /** The learner follows `leader` now; a change counts towards the leader-change metric. */
  following(leader: NodeId | null): void {
    if (leader !== null && leader !== this.#leader) this.metrics.leaderChanges.add(1, this.attributes);
    this.#leader = leader;
  }

  /** A traced p2a with slots still open here starts a consumer span. */
  received(message: Inbound, frame: ReceivedFrame | undefined, isOpen: (slot: number) => boolean): void {
    if (message.type !== "paxos.p2a") return;
    const body = message.body as Inbound<"paxos.p2a">["body"];
    const open = new Set(body.proposals.map((p) => p.slot).filter((slot) => isOpen(slot) && !this.#learning.has(slot)));
    if (open.size === 0) return;
    const span = this.consumer(message, frame, ballotAttributes(body.ballot));
    if (span === null) return;
    const learning: Learning = { span, open };
    for (const slot of open) this.#learning.set(slot, learning);
  }

  observe(observation: PaxosObservation): void {
    switch (observation.kind) {
      case "chosen":
        this.#learning.get(observation.slot)?.span.addEvent("chosen", { [PaxosAttr.slot]: observation.slot });
        return;
      case "applied": {
        if (observation.value.origin === this.attributes[Attr.member]) this.#callers.take(observation.value.seq);
        const learning = this.#learning.get(observation.slot);
        learning?.span.addEvent("apply", { [PaxosAttr.slot]: observation.slot });
        this.#settle(observation.slot);
        return;
      }
      case "restored":
        for (const [slot, learning] of [...this.#learning.entries()]) {
          if (slot > observation.slot) continue;
          learning.span.addEvent("restored", { [PaxosAttr.slot]: observation.slot });
          this.#settle(slot);
        }
        return;
      default:
        return;
    }
  }

  /** Headers for an outgoing frame: requests go out under a PRODUCER span of their first traced caller. */
  sending(message: OutboundMessage): Headers | undefined {
    if (message.type !== "paxos.request") return undefined;
    const body = message.body as OutboundMessage<"paxos.request">["body"];
    const caller = body.requests.map((r) => this.#callers.get(r.seq)).find((c) => c !== undefined);
    if (caller === undefined) return undefined;
    return this.producer(caller, message.type, message.to, { [PaxosAttr.requests]: body.requests.length });
  }

  protected endAll(): void {
    for (const [slot, learning] of this.#learning.drain()) LearnerTelemetry.#stopLearning(learning, slot);
    this.#callers.drain();
  }

  /** `slot` no longer waits here; the span ends with its last slot. */
  #settle(slot: number): void {
    const learning = this.#learning.take(slot);
    if (learning === undefined) return;
    learning.open.delete(slot);
    if (learning.open.size === 0) learning.span.end();
  }

  /** `slot` is given up on (evicted, or the learner stops): the span ends in error with its last slot. */
  static #stopLearning(learning: Learning, slot: number): void {
    learning.open.delete(slot);
    if (learning.open.size > 0) return;
    learning.span.setStatus({ code: SpanStatusCode.ERROR, message: "not applied before it was given up on" });
    learning.span.end();
  }
}
