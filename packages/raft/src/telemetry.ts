import type { Headers, Inbound, NodeId, ReceivedFrame, Transport } from "@quorate/core";
import {
  Attr,
  type Context,
  OpenSpans,
  ROOT_CONTEXT,
  RoleTelemetry,
  type Span,
  SpanKind,
  SpanStatusCode,
  startRoundSpan,
  trace,
  tracer,
} from "@quorate/telemetry";
import type { OutboundMessage, RaftObservation } from "./outbox.js";
import { quorum, type RaftContext } from "./protocol.js";

/** Raft's span names, beside `@quorate/telemetry`'s SpanName. Every name is listed in docs/telemetry.md. */
export const RaftSpanName = {
  round: "raft.round",
  election: "raft.election",
} as const;

/** Raft's attributes, beside `@quorate/telemetry`'s Attr (cluster, group, member, peer, message type). */
export const RaftAttr = {
  term: "quorate.raft.term",
  firstIndex: "quorate.raft.first_index",
  lastIndex: "quorate.raft.last_index",
  batchSize: "quorate.raft.batch_size",
  quorumSize: "quorate.raft.quorum_size",
  preVote: "quorate.raft.pre_vote",
  outcome: "quorate.raft.outcome",
  granted: "quorate.raft.granted",
  index: "quorate.raft.index",
  /** On a follower's `process raft.append`: whether its reply accepted the entries. */
  success: "quorate.raft.success",
  /** On a `process` span ended without a reply (evicted, or the member stopped): false. */
  answered: "quorate.raft.answered",
} as const;

/** What the telemetry reads of its member, for gauges and quorum sizes. */
export interface RaftMemberView {
  context(): RaftContext;
  /** The last index applied to the state machine. */
  applied(): number;
  /** Proposals and reads waiting for an answer. */
  inflight(): number;
}

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

/**
 * Traces and metrics for one Raft member, driven by the host at its hook points. The
 * machine stays pure: everything here happens around it, from its observations and from
 * the frames the host sends and receives.
 */
export class RaftTelemetry extends RoleTelemetry {
  readonly #rounds: Round[] = [];
  #election: { span: Span; context: Context; term: number } | null = null;
  /** Consumer spans waiting for the reply that ends them; bounded, since some requests get none. */
  readonly #consumers = new OpenSpans<string, Span>((span) => RaftTelemetry.#unanswered(span));
  #leader: NodeId | null = null;

  constructor(
    transport: Transport,
    private readonly member: RaftMemberView,
    private readonly now: () => number = () => performance.now(),
  ) {
    super(transport, () => ({
      term: member.context().term,
      applyLag: member.context().commitIndex - member.applied(),
      inflight: member.inflight(),
      dropped: transport.stats.dropped,
    }));
  }

  /** A batch was appended by this leader at [firstIndex, firstIndex + parents.length). */
  proposed(firstIndex: number, term: number, parents: readonly Context[]): void {
    const count = parents.length;
    const lastIndex = firstIndex + count - 1;
    this.metrics.proposals.add(count, this.attributes);
    this.metrics.batchSize.record(count, this.attributes);
    // One caller: its span is the parent. Many: the round links to each of them.
    const { span, context } = startRoundSpan(
      RaftSpanName.round,
      {
        ...this.attributes,
        [RaftAttr.term]: term,
        [RaftAttr.firstIndex]: firstIndex,
        [RaftAttr.lastIndex]: lastIndex,
        [RaftAttr.batchSize]: count,
        // The quorum size now: it changes with the membership.
        [RaftAttr.quorumSize]: quorum(this.member.context()),
      },
      parents,
    );
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
        return this.producer(round.context, message.type, message.to, {
          [RaftAttr.term]: body.term,
          [RaftAttr.firstIndex]: first,
          [RaftAttr.lastIndex]: body.prevLogIndex + count,
        });
      }
      case "raft.vote": {
        if (this.#election === null) return undefined;
        const body = message.body as OutboundMessage<"raft.vote">["body"];
        return this.producer(this.#election.context, message.type, message.to, {
          [RaftAttr.term]: body.term,
          [RaftAttr.preVote]: body.preVote,
        });
      }
      case "raft.append.resp": {
        const body = message.body as OutboundMessage<"raft.append.resp">["body"];
        this.#endConsumer(`${peer}/append/${body.seq}`, {
          [RaftAttr.success]: body.success,
          [RaftAttr.index]: body.index,
        });
        return undefined;
      }
      case "raft.vote.resp": {
        const body = message.body as OutboundMessage<"raft.vote.resp">["body"];
        this.#endConsumer(`${peer}/vote`, { [RaftAttr.granted]: body.granted });
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /** A frame arrived: a traced AppendEntries or RequestVote starts a consumer span here. */
  received(message: Inbound, frame: ReceivedFrame | undefined): void {
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
    const span = this.consumer(message, frame, { [RaftAttr.term]: body.term });
    if (span === null) return;
    this.#consumers.take(key)?.end();
    this.#consumers.set(key, span);
  }

  observe(observation: RaftObservation): void {
    switch (observation.kind) {
      case "role":
        if (observation.leader !== null && observation.leader !== this.#leader)
          this.metrics.leaderChanges.add(1, this.attributes);
        this.#leader = observation.leader;
        return;
      case "campaign": {
        this.metrics.electionsStarted.add(1, { ...this.attributes, [RaftAttr.preVote]: observation.preVote });
        if (this.#election === null) {
          const span = tracer().startSpan(RaftSpanName.election, {
            kind: SpanKind.INTERNAL,
            attributes: { ...this.attributes, [RaftAttr.term]: observation.term },
          });
          this.#election = { span, context: trace.setSpan(ROOT_CONTEXT, span), term: observation.term };
        }
        this.#election.span.addEvent(observation.preVote ? "pre-vote.start" : "vote.start", {
          [RaftAttr.term]: observation.term,
        });
        this.#election.span.setAttribute(RaftAttr.term, observation.term);
        return;
      }
      case "vote":
        this.#election?.span.addEvent(observation.preVote ? "pre-vote" : "vote", {
          [Attr.peer]: observation.from,
          [RaftAttr.granted]: observation.granted,
          [RaftAttr.term]: observation.term,
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
        if (observation.outcome === "won") this.metrics.electionsWon.add(1, this.attributes);
        election.span.setAttribute(RaftAttr.outcome, observation.outcome);
        election.span.setAttribute(RaftAttr.preVote, observation.preVote);
        election.span.end();
        this.#election = null;
        return;
      }
      case "ack":
        for (const round of this.#rounds) {
          if (round.firstIndex <= observation.index) {
            round.span.addEvent("ack", { [Attr.peer]: observation.from, [RaftAttr.index]: observation.index });
          }
        }
        return;
      case "commit":
        for (const round of this.#rounds) {
          if (!round.committed && round.lastIndex <= observation.index) {
            round.committed = true;
            round.span.addEvent("commit", { [RaftAttr.index]: observation.index });
            this.metrics.commitLatency.record((this.now() - round.startedAt) / 1000, this.attributes);
            this.metrics.commits.add(round.lastIndex - round.firstIndex + 1, this.attributes);
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
        round.span.addEvent("apply", { [RaftAttr.index]: round.lastIndex });
      } else {
        round.span.setStatus({ code: SpanStatusCode.ERROR, message: "overwritten by another leader" });
      }
      round.span.end();
    }
  }

  /** Ends every open span: the member is stopping. */
  protected endAll(): void {
    for (const round of this.#rounds.splice(0)) {
      round.span.setStatus({ code: SpanStatusCode.ERROR, message: "member stopped before apply" });
      round.span.end();
    }
    this.#election?.span.end();
    this.#election = null;
    for (const [, span] of this.#consumers.drain()) RaftTelemetry.#unanswered(span);
  }

  #endConsumer(key: string, attributes: Record<string, string | number | boolean>): void {
    const span = this.#consumers.take(key);
    if (span === undefined) return;
    span.setAttributes(attributes);
    span.end();
  }

  static #unanswered(span: Span): void {
    span.setAttribute(RaftAttr.answered, false);
    span.end();
  }
}
