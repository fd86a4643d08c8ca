import { encodeFor, type Headers, type Inbound, type NodeId, type ReceivedFrame, type Transport } from "@quorate/core";
import {
  Attr,
  type Context,
  MESSAGE_BODY_SIZE,
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
import type { OutboundMessage, RaftObservation, ReadOutcome } from "./outbox.js";
import { quorum, type RaftContext } from "./protocol.js";
import { RaftAttr, RaftSpanName } from "./telemetry-names.js";

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
 * One batch of linearizable reads on the leader, from acceptance until served: the heartbeat
 * round whose quorum of acknowledgements confirms leadership, then the apply of the read index.
 */
interface ReadRound {
  /** The machine's id for the batch (`read` event, ReadOutcome, PendingRead). */
  readonly id: number;
  readonly span: Span;
  readonly context: Context;
  /** The heartbeat round whose acknowledgements (or later ones') confirm the read, once known. */
  heartbeatRound: number | null;
  /** Followers whose acknowledgement was recorded; the first one each counts. */
  readonly acked: Set<NodeId>;
  /** The read index, once confirmed; served when the state machine reaches it. */
  index: number | null;
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
  /** Read rounds by batch id; only while tracing records them, and bounded like every open span. */
  readonly #reads = new OpenSpans<number, ReadRound>((read) =>
    RaftTelemetry.#endRead(read, "given up: too many reads open"),
  );
  #leader: NodeId | null = null;

  /** Who sends: the frame a PRODUCER span measures is encoded as this transport encodes it. */
  readonly #sender: Pick<Transport, "cluster" | "group" | "self">;

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
    this.#sender = transport;
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

  /**
   * A batch of reads goes to the machine. On the leader, while tracing records, it starts a read
   * round: the callers' spans are its parent or links, as for a proposal round. A follower
   * refuses reads (the caller retries at the leader), so it starts none.
   */
  readStarted(id: number, callers: readonly { readonly context: Context }[]): void {
    const ctx = this.member.context();
    if (ctx.leader !== ctx.id) return;
    const { span, context } = startRoundSpan(
      RaftSpanName.read,
      {
        ...this.attributes,
        [RaftAttr.term]: ctx.term,
        [RaftAttr.batchSize]: callers.length,
        [RaftAttr.quorumSize]: quorum(ctx),
      },
      callers.map((c) => c.context),
    );
    // No SDK, or an unsampled trace: nothing to keep.
    if (!span.isRecording()) return;
    this.#reads.set(id, { id, span, context, heartbeatRound: null, acked: new Set(), index: null });
  }

  /** The machine answered a batch of reads: refused, or confirmed at a read index (served once applied there). */
  readAnswered(outcome: ReadOutcome, applied: number): void {
    if (this.#reads.size === 0) return;
    const read = this.#reads.get(outcome.id);
    if (read === undefined) return;
    if (!outcome.ok) {
      this.#reads.take(outcome.id);
      RaftTelemetry.#endRead(read, "not the leader");
      return;
    }
    read.index = outcome.index;
    read.span.setAttribute(RaftAttr.readIndex, outcome.index);
    read.span.addEvent("confirmed", { [RaftAttr.readIndex]: outcome.index });
    if (outcome.index <= applied) this.#served(read);
  }

  /** Headers for an outgoing frame: trace context for rounds, campaigns and the heartbeats of reads. */
  headersFor(message: OutboundMessage): Headers | undefined {
    const peer = message.to ?? "*";
    switch (message.type) {
      case "raft.append": {
        const body = message.body as OutboundMessage<"raft.append">["body"];
        const count = body.entries.terms.length;
        if (count === 0) return this.#readHeartbeat(message, body);
        const first = body.prevLogIndex + 1;
        const round = this.#rounds.find((r) => r.lastIndex >= first && r.firstIndex <= body.prevLogIndex + count);
        if (round === undefined) return undefined;
        return this.#produce(round.context, message, {
          [RaftAttr.term]: body.term,
          [RaftAttr.firstIndex]: first,
          [RaftAttr.lastIndex]: body.prevLogIndex + count,
        });
      }
      case "raft.vote": {
        if (this.#election === null) return undefined;
        const body = message.body as OutboundMessage<"raft.vote">["body"];
        return this.#produce(this.#election.context, message, {
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

  /**
   * A frame arrived: a traced AppendEntries or RequestVote starts a consumer span here; an
   * AppendEntries acknowledgement is an event of the read rounds it confirms.
   */
  received(message: Inbound, frame: ReceivedFrame | undefined): void {
    let key: string;
    if (message.type === "raft.append.resp") {
      this.#readAck(message as Inbound<"raft.append.resp">, frame);
      return;
    }
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
    if (this.#reads.size > 0) {
      for (const [, read] of [...this.#reads.entries()])
        if (read.index !== null && read.index <= index) this.#served(read);
    }
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
    for (const [, read] of this.#reads.drain())
      RaftTelemetry.#endRead(read, "member stopped before the read was served");
  }

  /** A PRODUCER span for `message` when `parent` is traced, with the size of the frame the transport will send. */
  #produce(
    parent: Context,
    message: OutboundMessage,
    attributes: Record<string, string | number | boolean>,
  ): Headers | undefined {
    // Untraced: no span, and no second encoding to measure the frame.
    if (!trace.getSpan(parent)?.isRecording()) return undefined;
    const { type, body } = message as OutboundMessage<"raft.append">;
    return this.producer(parent, type, message.to, attributes, encodeFor(this.#sender, type, body).length);
  }

  /**
   * A heartbeat (an empty AppendEntries): traced when it is the round the machine sent for a
   * read it holds (its PendingRead's heartbeatRound). Reads sharing that round record its acks; the
   * oldest is the heartbeat's parent.
   */
  #readHeartbeat(message: OutboundMessage, body: OutboundMessage<"raft.append">["body"]): Headers | undefined {
    if (this.#reads.size === 0) return undefined;
    const pending = this.member.context().pendingReads;
    let parent: ReadRound | undefined;
    for (const [, read] of this.#reads.entries()) {
      if (read.heartbeatRound === null) {
        const waiting = pending.find((p) => p.id === read.id);
        if (waiting === undefined || waiting.index === null) continue;
        read.heartbeatRound = waiting.heartbeatRound;
      }
      // Its own round only: later heartbeats confirm it too, but add nothing to draw.
      if (parent === undefined && body.seq === read.heartbeatRound && read.index === null) parent = read;
    }
    if (parent === undefined) return undefined;
    return this.#produce(parent.context, message, { [RaftAttr.term]: body.term, [RaftAttr.seq]: body.seq });
  }

  /** An acknowledgement of heartbeat round `seq` (on the wire) or later confirms leadership for the reads waiting on that round or an earlier one. */
  #readAck(message: Inbound<"raft.append.resp">, frame: ReceivedFrame | undefined): void {
    if (this.#reads.size === 0) return;
    const { seq } = message.body;
    for (const [, read] of this.#reads.entries()) {
      if (read.heartbeatRound === null || seq < read.heartbeatRound || read.acked.has(message.sender)) continue;
      read.acked.add(message.sender);
      read.span.addEvent("ack", {
        [Attr.peer]: message.sender,
        [RaftAttr.seq]: seq,
        [Attr.messageType]: message.type,
        ...(frame === undefined ? {} : { [MESSAGE_BODY_SIZE]: frame.bytes }),
      });
    }
  }

  #served(read: ReadRound): void {
    this.#reads.take(read.id);
    read.span.addEvent("served", { [RaftAttr.readIndex]: read.index ?? 0 });
    read.span.end();
  }

  static #endRead(read: ReadRound, why: string): void {
    read.span.setStatus({ code: SpanStatusCode.ERROR, message: why });
    read.span.end();
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
