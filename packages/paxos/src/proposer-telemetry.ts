import type { Headers, Inbound, PaxosBallot, Transport } from "@quorate/core";
import type { OutboundMessage } from "@quorate/core/internal";
import {
  Attr,
  type Context,
  extractContext,
  type MemberGauges,
  OpenSpans,
  RoleTelemetry,
  type Span,
  SpanStatusCode,
  startRoundSpan,
} from "@quorate/telemetry";
import type { PaxosObservation } from "./outbox.js";
import { sameBallot } from "./scout.js";
import { ballotAttributes, PaxosAttr, PaxosSpanName } from "./telemetry.js";

interface Phase1 {
  readonly ballot: PaxosBallot;
  readonly span: Span;
  readonly context: Context;
}

/** One commander's batch: phase 2 for its slots at one ballot. */
interface Phase2 {
  readonly ballot: PaxosBallot;
  readonly slots: ReadonlySet<number>;
  readonly span: Span;
  readonly context: Context;
  readonly startedAt: number;
}

/**
 * A proposer's telemetry: a `paxos.phase1` span per scout (promises and rejections as events,
 * its outcome), a `paxos.phase2` span per commander batch (accepts as events, then chosen),
 * and PRODUCER spans for the p1a and p2a that carry their trace context to the acceptors. A
 * batch's parent is the trace context of the learner request it carries (one caller), or it
 * links to each (several).
 */
export class ProposerTelemetry extends RoleTelemetry {
  #phase1: Phase1 | null = null;
  #phase2: Phase2[] = [];
  /** Trace contexts of learner requests, by "origin seq", until their batch is proposed. */
  readonly #requests = new OpenSpans<string, Context>(() => {});

  constructor(
    transport: Transport,
    gauges: () => MemberGauges,
    private readonly quorums: { readonly q1: number; readonly q2: number },
    private readonly now: () => number,
  ) {
    super(transport, gauges);
  }

  received(message: Inbound): void {
    switch (message.type) {
      case "paxos.request": {
        const parent = extractContext(message.headers);
        if (parent === undefined) return;
        const body = message.body as Inbound<"paxos.request">["body"];
        for (const request of body.requests) this.#requests.set(`${message.sender} ${request.seq}`, parent);
        return;
      }
      case "paxos.p1b": {
        const body = message.body as Inbound<"paxos.p1b">["body"];
        if (this.#phase1 === null || !sameBallot(body.ballot, this.#phase1.ballot)) return;
        this.#phase1.span.addEvent("promise", { [Attr.peer]: message.sender, [PaxosAttr.votes]: body.accepted.length });
        return;
      }
      case "paxos.nack": {
        const body = message.body as Inbound<"paxos.nack">["body"];
        const event = {
          [Attr.peer]: message.sender,
          [PaxosAttr.promisedRound]: body.promised[0],
          [PaxosAttr.promisedProposer]: body.promised[1],
        };
        if (this.#phase1 !== null && sameBallot(body.ballot, this.#phase1.ballot))
          this.#phase1.span.addEvent("nack", event);
        for (const phase2 of this.#phase2)
          if (sameBallot(body.ballot, phase2.ballot)) phase2.span.addEvent("nack", event);
        return;
      }
      case "paxos.p2b": {
        const body = message.body as Inbound<"paxos.p2b">["body"];
        for (const phase2 of this.#phase2) {
          if (!sameBallot(body.ballot, phase2.ballot)) continue;
          const slots = body.slots.filter((slot) => phase2.slots.has(slot)).length;
          if (slots > 0) phase2.span.addEvent("accept", { [Attr.peer]: message.sender, [PaxosAttr.slots]: slots });
        }
        return;
      }
      default:
        return;
    }
  }

  observe(observation: PaxosObservation): void {
    switch (observation.kind) {
      case "mode":
        if (observation.mode === "scouting") this.#startPhase1(observation.ballot);
        else if (observation.mode === "passive") {
          this.#endPhase1("superseded");
          this.#endPhase2("the proposer stopped leading before the slots were chosen");
        }
        return;
      case "preempted":
        this.#endPhase1("preempted");
        this.#endPhase2("preempted before the slots were chosen");
        return;
      case "adopted":
        this.metrics.electionsWon.add(1, this.attributes);
        this.#phase1?.span.setAttributes({
          [PaxosAttr.reproposed]: observation.reproposed,
          [PaxosAttr.noops]: observation.noops,
        });
        this.#endPhase1("adopted");
        return;
      case "decided": {
        const [first] = observation.slots;
        const index = this.#phase2.findIndex(
          (p) => sameBallot(p.ballot, observation.ballot) && p.slots.has(first ?? 0),
        );
        const phase2 = this.#phase2[index];
        if (phase2 === undefined) return;
        this.#phase2.splice(index, 1);
        phase2.span.addEvent("chosen", { [PaxosAttr.slots]: observation.slots.length });
        phase2.span.end();
        this.metrics.commits.add(observation.slots.length, this.attributes);
        this.metrics.commitLatency.record((this.now() - phase2.startedAt) / 1000, this.attributes);
        return;
      }
      default:
        return;
    }
  }

  /** Headers for an outgoing frame: a prepare or accept is sent under a PRODUCER span of its phase. */
  sending(message: OutboundMessage): Headers | undefined {
    if (message.type === "paxos.p1a") {
      const body = message.body as OutboundMessage<"paxos.p1a">["body"];
      if (this.#phase1 === null || !sameBallot(body.ballot, this.#phase1.ballot)) return undefined;
      return this.producer(this.#phase1.context, message.type, message.to, ballotAttributes(body.ballot));
    }
    if (message.type === "paxos.p2a") {
      const body = message.body as OutboundMessage<"paxos.p2a">["body"];
      const slots = body.proposals.map((p) => p.slot);
      const phase2 = this.#batchOf(body.ballot, slots[0] ?? 0) ?? this.#startPhase2(body);
      return this.producer(phase2.context, message.type, message.to, {
        ...ballotAttributes(body.ballot),
        [PaxosAttr.firstSlot]: Math.min(...slots),
        [PaxosAttr.lastSlot]: Math.max(...slots),
      });
    }
    return undefined;
  }

  protected endAll(): void {
    this.#endPhase1("stopped");
    this.#endPhase2("the proposer stopped before the slots were chosen");
  }

  #startPhase1(ballot: PaxosBallot): void {
    this.#endPhase1("superseded");
    this.metrics.electionsStarted.add(1, this.attributes);
    const { span, context } = startRoundSpan(PaxosSpanName.phase1, {
      ...this.attributes,
      ...ballotAttributes(ballot),
      [PaxosAttr.quorumSize]: this.quorums.q1,
    });
    this.#phase1 = { ballot, span, context };
  }

  #endPhase1(outcome: string): void {
    const phase1 = this.#phase1;
    if (phase1 === null) return;
    this.#phase1 = null;
    phase1.span.setAttribute(PaxosAttr.outcome, outcome);
    phase1.span.end();
  }

  #batchOf(ballot: PaxosBallot, slot: number): Phase2 | undefined {
    // A slot is driven by one commander at a time, so open batches of one ballot never share slots.
    return this.#phase2.find((p) => sameBallot(p.ballot, ballot) && p.slots.has(slot));
  }

  /** A commander's first p2a: a new batch, parented by (or linked to) the requests it carries. */
  #startPhase2(body: OutboundMessage<"paxos.p2a">["body"]): Phase2 {
    const slots = body.proposals.map((p) => p.slot);
    const callers: Context[] = [];
    for (const { value } of body.proposals) {
      const caller = this.#requests.take(`${value.origin} ${value.seq}`);
      if (caller !== undefined) callers.push(caller);
    }
    const { span, context } = startRoundSpan(
      PaxosSpanName.phase2,
      {
        ...this.attributes,
        ...ballotAttributes(body.ballot),
        [PaxosAttr.firstSlot]: Math.min(...slots),
        [PaxosAttr.lastSlot]: Math.max(...slots),
        [PaxosAttr.batchSize]: slots.length,
        [PaxosAttr.quorumSize]: this.quorums.q2,
      },
      callers,
    );
    this.metrics.proposals.add(slots.length, this.attributes);
    this.metrics.batchSize.record(slots.length, this.attributes);
    const phase2: Phase2 = { ballot: body.ballot, slots: new Set(slots), span, context, startedAt: this.now() };
    this.#phase2.push(phase2);
    return phase2;
  }

  #endPhase2(reason: string): void {
    for (const phase2 of this.#phase2.splice(0)) {
      phase2.span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
      phase2.span.end();
    }
  }
}
