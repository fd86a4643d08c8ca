import type { Headers, Inbound, NodeId, OutboundMessage, PaxosBallot, Transport } from "@quorate/core";
import {
  Attr,
  type Attributes,
  type Context,
  consensusMetrics,
  extractContext,
  type Link,
  type MemberGauges,
  observeMember,
  producerHeaders,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  startConsumerSpan,
  trace,
  tracer,
} from "@quorate/telemetry";
import type { PaxosObservation } from "./outbox.js";
import { sameBallot } from "./scout.js";

/** Paxos span names, beside `@quorate/telemetry`'s SpanName. Every name and attribute is listed in docs/telemetry.md. */
export const PaxosSpanName = {
  phase1: "paxos.phase1",
  phase2: "paxos.phase2",
} as const;

/** Paxos attributes, beside `@quorate/telemetry`'s Attr (cluster, group, member, peer). */
export const PaxosAttr = {
  round: "quorate.paxos.round",
  proposer: "quorate.paxos.proposer",
  firstSlot: "quorate.paxos.first_slot",
  lastSlot: "quorate.paxos.last_slot",
  slot: "quorate.paxos.slot",
  slots: "quorate.paxos.slots",
  batchSize: "quorate.paxos.batch_size",
  quorumSize: "quorate.paxos.quorum_size",
  votes: "quorate.paxos.votes",
  promisedRound: "quorate.paxos.promised_round",
  promisedProposer: "quorate.paxos.promised_proposer",
  outcome: "quorate.paxos.outcome",
  reproposed: "quorate.paxos.reproposed",
  noops: "quorate.paxos.noops",
  requests: "quorate.paxos.requests",
} as const;

/** Spans waiting for something that may never come (a reply after a crash, an apply); bounded. */
const MAX_OPEN_SPANS = 1024;

function ballotAttributes(ballot: PaxosBallot): Attributes {
  return { [PaxosAttr.round]: ballot[0], [PaxosAttr.proposer]: ballot[1] };
}

/** Adds to a bounded map; past the bound the oldest entry is evicted and handed to `evicted`. */
function boundedSet<K, V>(map: Map<K, V>, key: K, value: V, evicted: (value: V, key: K) => void): void {
  map.set(key, value);
  if (map.size <= MAX_OPEN_SPANS) return;
  const [oldest] = map;
  if (oldest === undefined) return;
  map.delete(oldest[0]);
  evicted(oldest[1], oldest[0]);
}

/** What the telemetry of every role shares: where its spans are recorded, metrics, and its gauges. */
abstract class RoleTelemetry {
  protected readonly attributes: Attributes;
  protected readonly metrics = consensusMetrics();
  readonly #unobserve: () => void;

  constructor(transport: Transport, gauges: () => MemberGauges) {
    this.attributes = {
      [Attr.cluster]: transport.cluster,
      [Attr.group]: transport.group,
      [Attr.member]: transport.self,
    };
    this.#unobserve = observeMember({ [Attr.cluster]: transport.cluster, [Attr.member]: transport.self }, gauges);
  }

  /** Ends every open span and stops reporting gauges: the role is stopping. */
  close(): void {
    this.#unobserve();
    this.endAll();
  }

  protected abstract endAll(): void;
}

/**
 * An acceptor's telemetry: a CONSUMER span per traced p1a or p2a, from its arrival until the
 * reply leaves, which is after the state it reports is fsynced.
 */
export class AcceptorTelemetry extends RoleTelemetry {
  /** Consumer spans by the reply that ends them. */
  readonly #awaitingReply = new Map<OutboundMessage, Span>();

  /** A frame arrived: a traced prepare or accept starts a consumer span, handed back for `handled`. */
  received(message: Inbound): Span | null {
    if (message.type !== "paxos.p1a" && message.type !== "paxos.p2a") return null;
    const parent = extractContext(message.headers);
    if (parent === undefined) return null;
    const body = message.body as Inbound<"paxos.p1a" | "paxos.p2a">["body"];
    return startConsumerSpan(parent, message.type, {
      ...this.attributes,
      [Attr.peer]: message.sender,
      ...ballotAttributes(body.ballot),
    });
  }

  /** The machine handled the frame and queued `replies`; the span ends when they leave. */
  handled(span: Span | null, replies: readonly OutboundMessage[]): void {
    if (span === null) return;
    // Not for this acceptor (a prepare from a stranger): nothing to wait for.
    if (replies.length === 0) span.end();
    for (const reply of replies) {
      boundedSet(this.#awaitingReply, reply, span, (evicted) => {
        evicted.setAttribute(PaxosAttr.outcome, "unanswered");
        evicted.end();
      });
    }
  }

  /** A reply leaves: it ends the span of the frame it answers. Replies carry no trace context. */
  sending(message: OutboundMessage): Headers | undefined {
    const span = this.#awaitingReply.get(message);
    if (span === undefined) return undefined;
    this.#awaitingReply.delete(message);
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
    for (const span of new Set(this.#awaitingReply.values())) {
      span.setAttribute(PaxosAttr.outcome, "unanswered");
      span.end();
    }
    this.#awaitingReply.clear();
  }
}

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
  readonly #requests = new Map<string, Context>();

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
        for (const request of body.requests) {
          boundedSet(this.#requests, `${message.sender} ${request.seq}`, parent, () => {});
        }
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
    const peer = message.to ?? "*";
    if (message.type === "paxos.p1a") {
      const body = message.body as OutboundMessage<"paxos.p1a">["body"];
      if (this.#phase1 === null || !sameBallot(body.ballot, this.#phase1.ballot)) return undefined;
      return producerHeaders(this.#phase1.context, message.type, {
        ...this.attributes,
        [Attr.peer]: peer,
        ...ballotAttributes(body.ballot),
      });
    }
    if (message.type === "paxos.p2a") {
      const body = message.body as OutboundMessage<"paxos.p2a">["body"];
      const slots = body.proposals.map((p) => p.slot);
      const phase2 = this.#batchOf(body.ballot, slots[0] ?? 0) ?? this.#startPhase2(body);
      return producerHeaders(phase2.context, message.type, {
        ...this.attributes,
        [Attr.peer]: peer,
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
    const span = tracer().startSpan(PaxosSpanName.phase1, {
      kind: SpanKind.INTERNAL,
      attributes: { ...this.attributes, ...ballotAttributes(ballot), [PaxosAttr.quorumSize]: this.quorums.q1 },
    });
    this.#phase1 = { ballot, span, context: trace.setSpan(ROOT_CONTEXT, span) };
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
    const parents: Context[] = [];
    for (const { value } of body.proposals) {
      const key = `${value.origin} ${value.seq}`;
      const parent = this.#requests.get(key);
      if (parent === undefined) continue;
      this.#requests.delete(key);
      parents.push(parent);
    }
    const distinct = new Set(parents.map((p) => trace.getSpanContext(p)?.spanId));
    // One caller: its span is the parent. Many: the batch links to each of them.
    const parent = distinct.size === 1 ? parents[0] : undefined;
    const links: Link[] = [];
    if (distinct.size > 1) {
      for (const p of parents) {
        const spanContext = trace.getSpanContext(p);
        if (spanContext !== undefined) links.push({ context: spanContext });
      }
    }
    const span = tracer().startSpan(
      PaxosSpanName.phase2,
      {
        kind: SpanKind.INTERNAL,
        links,
        attributes: {
          ...this.attributes,
          ...ballotAttributes(body.ballot),
          [PaxosAttr.firstSlot]: Math.min(...slots),
          [PaxosAttr.lastSlot]: Math.max(...slots),
          [PaxosAttr.batchSize]: slots.length,
          [PaxosAttr.quorumSize]: this.quorums.q2,
        },
      },
      parent,
    );
    this.metrics.proposals.add(slots.length, this.attributes);
    this.metrics.batchSize.record(slots.length, this.attributes);
    const phase2: Phase2 = {
      ballot: body.ballot,
      slots: new Set(slots),
      span,
      context: trace.setSpan(parent ?? ROOT_CONTEXT, span),
      startedAt: this.now(),
    };
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
  readonly #callers = new Map<number, Context>();
  /** The consumer span of each open slot. */
  readonly #learning = new Map<number, Learning>();
  #leader: NodeId | null = null;

  /** A client request took `seq`; `caller` is the context its `propose()` was called in. */
  requested(seq: number, caller: Context): void {
    if (trace.getSpanContext(caller) === undefined) return;
    boundedSet(this.#callers, seq, caller, () => {});
  }

  /** The learner follows `leader` now; a change counts towards the leader-change metric. */
  following(leader: NodeId | null): void {
    if (leader !== null && leader !== this.#leader) this.metrics.leaderChanges.add(1, this.attributes);
    this.#leader = leader;
  }

  /** A traced p2a with slots still open here starts a consumer span. */
  received(message: Inbound, isOpen: (slot: number) => boolean): void {
    if (message.type !== "paxos.p2a") return;
    const parent = extractContext(message.headers);
    if (parent === undefined) return;
    const body = message.body as Inbound<"paxos.p2a">["body"];
    const open = new Set(body.proposals.map((p) => p.slot).filter((slot) => isOpen(slot) && !this.#learning.has(slot)));
    if (open.size === 0) return;
    const span = startConsumerSpan(parent, message.type, {
      ...this.attributes,
      [Attr.peer]: message.sender,
      ...ballotAttributes(body.ballot),
    });
    const learning: Learning = { span, open };
    for (const slot of open) {
      boundedSet(this.#learning, slot, learning, (evicted, evictedSlot) => this.#stopLearning(evicted, evictedSlot));
    }
  }

  observe(observation: PaxosObservation): void {
    switch (observation.kind) {
      case "chosen":
        this.#learning.get(observation.slot)?.span.addEvent("chosen", { [PaxosAttr.slot]: observation.slot });
        return;
      case "applied": {
        if (observation.value.origin === this.attributes[Attr.member]) this.#callers.delete(observation.value.seq);
        const learning = this.#learning.get(observation.slot);
        learning?.span.addEvent("apply", { [PaxosAttr.slot]: observation.slot });
        this.#settle(observation.slot);
        return;
      }
      case "restored":
        for (const [slot, learning] of this.#learning) {
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
    return producerHeaders(caller, message.type, {
      ...this.attributes,
      [Attr.peer]: message.to ?? "*",
      [PaxosAttr.requests]: body.requests.length,
    });
  }

  protected endAll(): void {
    for (const [slot, learning] of this.#learning) this.#stopLearning(learning, slot);
    this.#learning.clear();
    this.#callers.clear();
  }

  /** `slot` no longer waits here; the span ends with its last slot. */
  #settle(slot: number): void {
    const learning = this.#learning.get(slot);
    if (learning === undefined) return;
    this.#learning.delete(slot);
    learning.open.delete(slot);
    if (learning.open.size === 0) learning.span.end();
  }

  /** `slot` is given up on (evicted, or the learner stops): the span ends in error with its last slot. */
  #stopLearning(learning: Learning, slot: number): void {
    learning.open.delete(slot);
    if (learning.open.size > 0) return;
    learning.span.setStatus({ code: SpanStatusCode.ERROR, message: "not applied before it was given up on" });
    learning.span.end();
  }
}
