import type { Headers, Inbound, NodeId } from "@quorate/core";
import {
  Attr,
  type Context,
  consensusMetrics,
  extractContext,
  type Link,
  producerHeaders,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanName,
  SpanStatusCode,
  startConsumerSpan,
  trace,
  tracer,
} from "@quorate/telemetry";
import type { OutboundMessage, RaftObservation } from "./outbox.js";

/** One proposal batch from acceptance by the leader to apply. */
interface Round {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly term: number;
  readonly span: Span;
  readonly context: Context;
  readonly startedAt: number;
  committed: boolean;
}

/** Consumer spans waiting for the reply that ends them; bounded, since some requests get none. */
const MAX_OPEN_CONSUMERS = 1024;

/**
 * Traces and metrics for one Raft member, driven by the host at its hook points. The
 * machine stays pure: everything here happens around it, from its observations and from
 * the frames the host sends and receives.
 */
export class RaftTelemetry {
  readonly #rounds: Round[] = [];
  #election: { span: Span; context: Context; term: number } | null = null;
  readonly #consumers = new Map<string, Span>();
  readonly #metrics = consensusMetrics();
  readonly #attributes: Record<string, string>;
  #leader: NodeId | null = null;

  constructor(
    private readonly member: NodeId,
    cluster: string,
    group: string,
    /** The quorum size now: it changes with the membership. */
    private readonly quorumSize: () => number,
    private readonly now: () => number,
  ) {
    this.#attributes = { [Attr.cluster]: cluster, [Attr.group]: group, [Attr.member]: member };
  }

  /** A batch was appended by this leader at [firstIndex, firstIndex + parents.length). */
  proposed(firstIndex: number, term: number, parents: readonly Context[]): void {
    const count = parents.length;
    const lastIndex = firstIndex + count - 1;
    this.#metrics.proposals.add(count, this.#attributes);
    this.#metrics.batchSize.record(count, this.#attributes);
    const traced = parents.filter((p) => trace.getSpanContext(p) !== undefined);
    const distinct = new Set(traced.map((p) => trace.getSpanContext(p)?.spanId));
    // One caller: its span is the parent. Many: the round links to each of them.
    const parent = distinct.size === 1 ? traced[0] : undefined;
    const links: Link[] = [];
    if (distinct.size > 1) {
      for (const p of traced) {
        const spanContext = trace.getSpanContext(p);
        if (spanContext !== undefined) links.push({ context: spanContext });
      }
    }
    const span = tracer().startSpan(
      SpanName.raftRound,
      {
        kind: SpanKind.INTERNAL,
        links,
        attributes: {
          ...this.#attributes,
          [Attr.term]: term,
          [Attr.firstIndex]: firstIndex,
          [Attr.lastIndex]: lastIndex,
          [Attr.batchSize]: count,
          [Attr.quorumSize]: this.quorumSize(),
        },
      },
      parent,
    );
    const context = trace.setSpan(parent ?? ROOT_CONTEXT, span);
    this.#rounds.push({ firstIndex, lastIndex, term, span, context, startedAt: this.now(), committed: false });
  }

  /** Headers for an outgoing frame: trace context for rounds and campaigns, nothing for heartbeats. */
  headersFor(message: OutboundMessage): Headers | undefined {
    const peer = message.to ?? "*";
    switch (message.type) {
      case "raft.append": {
        const body = message.body as OutboundMessage<"raft.append">["body"];
        const count = body.entries.terms.length;
        if (count === 0) return undefined;
        const first = body.prevLogIndex + 1;
        const round = this.#rounds.find((r) => r.lastIndex >= first && r.firstIndex <= body.prevLogIndex + count);
        if (round === undefined) return undefined;
        return producerHeaders(round.context, message.type, {
          ...this.#attributes,
          [Attr.peer]: peer,
          [Attr.term]: body.term,
          [Attr.firstIndex]: first,
          [Attr.lastIndex]: body.prevLogIndex + count,
        });
      }
      case "raft.vote": {
        if (this.#election === null) return undefined;
        const body = message.body as OutboundMessage<"raft.vote">["body"];
        return producerHeaders(this.#election.context, message.type, {
          ...this.#attributes,
          [Attr.peer]: peer,
          [Attr.term]: body.term,
          [Attr.preVote]: body.preVote,
        });
      }
      case "raft.append.resp": {
        const body = message.body as OutboundMessage<"raft.append.resp">["body"];
        this.#endConsumer(`${peer}/append/${body.seq}`, { success: body.success, index: body.index });
        return undefined;
      }
      case "raft.vote.resp": {
        const body = message.body as OutboundMessage<"raft.vote.resp">["body"];
        this.#endConsumer(`${peer}/vote`, { granted: body.granted });
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /** A frame arrived: a traced AppendEntries or RequestVote starts a consumer span here. */
  received(message: Inbound): void {
    const parent = extractContext(message.headers);
    if (parent === undefined) return;
    let key: string;
    if (message.type === "raft.append") {
      const body = message.body as Inbound<"raft.append">["body"];
      key = `${message.sender}/append/${body.seq}`;
    } else if (message.type === "raft.vote") {
      key = `${message.sender}/vote`;
    } else {
      return;
    }
    const body = message.body as { term: number };
    this.#consumers.get(key)?.end();
    this.#consumers.set(
      key,
      startConsumerSpan(parent, message.type, {
        ...this.#attributes,
        [Attr.peer]: message.sender,
        [Attr.term]: body.term,
      }),
    );
    if (this.#consumers.size > MAX_OPEN_CONSUMERS) {
      const [oldest] = this.#consumers.keys();
      if (oldest !== undefined) this.#endConsumer(oldest, { answered: false });
    }
  }

  observe(observation: RaftObservation): void {
    switch (observation.kind) {
      case "role":
        if (observation.leader !== null && observation.leader !== this.#leader)
          this.#metrics.leaderChanges.add(1, this.#attributes);
        this.#leader = observation.leader;
        return;
      case "campaign": {
        this.#metrics.electionsStarted.add(1, { ...this.#attributes, [Attr.preVote]: observation.preVote });
        if (this.#election === null) {
          const span = tracer().startSpan(SpanName.raftElection, {
            kind: SpanKind.INTERNAL,
            attributes: { ...this.#attributes, [Attr.term]: observation.term },
          });
          this.#election = { span, context: trace.setSpan(ROOT_CONTEXT, span), term: observation.term };
        }
        this.#election.span.addEvent(observation.preVote ? "pre-vote.start" : "vote.start", {
          [Attr.term]: observation.term,
        });
        this.#election.span.setAttribute(Attr.term, observation.term);
        return;
      }
      case "vote":
        this.#election?.span.addEvent(observation.preVote ? "pre-vote" : "vote", {
          [Attr.peer]: observation.from,
          [Attr.granted]: observation.granted,
          [Attr.term]: observation.term,
        });
        return;
      case "campaign-end": {
        const election = this.#election;
        if (election === null) return;
        // A pre-vote that is won moves on to the vote phase of the same candidacy.
        if (observation.preVote && observation.outcome === "won") {
          election.span.addEvent("pre-vote.won");
          return;
        }
        if (observation.outcome === "won") this.#metrics.electionsWon.add(1, this.#attributes);
        election.span.setAttribute(Attr.outcome, observation.outcome);
        election.span.setAttribute(Attr.preVote, observation.preVote);
        election.span.end();
        this.#election = null;
        return;
      }
      case "ack":
        for (const round of this.#rounds) {
          if (round.firstIndex <= observation.index) {
            round.span.addEvent("ack", { [Attr.peer]: observation.from, [Attr.index]: observation.index });
          }
        }
        return;
      case "commit":
        for (const round of this.#rounds) {
          if (!round.committed && round.lastIndex <= observation.index) {
            round.committed = true;
            round.span.addEvent("commit", { [Attr.index]: observation.index });
            this.#metrics.commitLatency.record((this.now() - round.startedAt) / 1000, this.#attributes);
            this.#metrics.commits.add(round.lastIndex - round.firstIndex + 1, this.#attributes);
          }
        }
        return;
      default:
        return;
    }
  }

  /** The state machine reached `index`; `termAt` tells which term's entry sits at an index. */
  applied(index: number, termAt: (index: number) => number | undefined): void {
    while (this.#rounds.length > 0 && (this.#rounds[0] as Round).lastIndex <= index) {
      const round = this.#rounds.shift() as Round;
      if (termAt(round.lastIndex) === round.term) {
        round.span.addEvent("apply", { [Attr.index]: round.lastIndex });
      } else {
        round.span.setStatus({ code: SpanStatusCode.ERROR, message: "overwritten by another leader" });
      }
      round.span.end();
    }
  }

  /** Ends every open span: the member is stopping. */
  close(): void {
    for (const round of this.#rounds.splice(0)) {
      round.span.setStatus({ code: SpanStatusCode.ERROR, message: "member stopped before apply" });
      round.span.end();
    }
    this.#election?.span.end();
    this.#election = null;
    for (const key of [...this.#consumers.keys()]) this.#endConsumer(key, { answered: false });
  }

  #endConsumer(key: string, attributes: Record<string, string | number | boolean>): void {
    const span = this.#consumers.get(key);
    if (span === undefined) return;
    this.#consumers.delete(key);
    span.setAttributes(attributes);
    span.end();
  }
}
