import { type AttributeValue, SpanKindCode, type SpanRecord, StatusCode } from "./otlp.js";

/**
 * The diagram model: what the page draws for one round, built from spans alone (pure, no IO).
 * A round is one consensus span (`raft.round`, `raft.election`, `raft.read`, `paxos.phase1`,
 * `paxos.phase2`, `paxos.read`) with its family: the PRODUCER spans of its sends (children) and the CONSUMER spans that
 * handled them (grandchildren). Spans may arrive in any order and some may never arrive (a
 * member without an exporter, a crash): the model is rebuilt from whatever is there, and says
 * what it had to infer in `missing`.
 */

export type RoundKind = "proposal" | "election" | "phase1" | "phase2" | "read";
export type Protocol = "raft" | "paxos";

/** The consensus span names, by the kind of round each one roots. */
export const ROUND_SPAN: Readonly<Record<string, { kind: RoundKind; protocol: Protocol }>> = {
  "raft.round": { kind: "proposal", protocol: "raft" },
  "raft.election": { kind: "election", protocol: "raft" },
  "paxos.phase1": { kind: "phase1", protocol: "paxos" },
  "paxos.phase2": { kind: "phase2", protocol: "paxos" },
  /**
   * A linearizable read: the leader (or proposer) confirms it still leads with a round of
   * messages, its PRODUCER children, each acknowledgement an `ack` event (`quorate.peer`, and
   * `quorate.message.type` and `messaging.message.body.size` of the reply when known), then
   * `confirmed` when a quorum has answered and `served` once applied through the read index.
   */
  "raft.read": { kind: "read", protocol: "raft" },
  "paxos.read": { kind: "read", protocol: "paxos" },
};

/**
 * The message a round's PRODUCER spans send, by round kind; it names the round when its own
 * span is missing. A read round's sends have no type of their own (Raft's are heartbeats: an
 * AppendEntries with no entries), so they are told apart by what they carry (`kindOf`).
 */
const REQUEST_TYPE: Readonly<Record<Exclude<RoundKind, "read">, string>> = {
  proposal: "raft.append",
  election: "raft.vote",
  phase1: "paxos.p1a",
  phase2: "paxos.p2a",
};

/** The reply each request gets, and the event the round span records when it arrives. */
const REPLY: Readonly<Record<RoundKind, { type: string; event: string }>> = {
  proposal: { type: "raft.append.resp", event: "ack" },
  election: { type: "raft.vote.resp", event: "vote" },
  phase1: { type: "paxos.p1b", event: "promise" },
  phase2: { type: "paxos.p2b", event: "accept" },
  /** Typed by the event's `quorate.message.type`, else after the request (`<request>.resp`). */
  read: { type: "", event: "ack" },
};

/** The round kind whose sends a PRODUCER span named `publish <type>` is, if any (a read's are told apart by `kindOf`). */
export function roundKindOfProducer(name: string): RoundKind | undefined {
  for (const [kind, type] of Object.entries(REQUEST_TYPE)) if (name === `publish ${type}`) return kind as RoundKind;
  return undefined;
}

export interface Lane {
  /** The service instance (`<cluster>-<id>`), or `peer:<id>` for a member known only from others' spans. */
  readonly id: string;
  /** The member id(s) this instance recorded spans as (`n1`, or `n1-acceptor` for a Paxos role). */
  readonly members: readonly string[];
  /** The role it played in this round. */
  readonly role: string;
  /** False when the member exported no span of this round: its lane is inferred from the others'. */
  readonly exported: boolean;
}

export interface Arrow {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly type: string;
  readonly direction: "request" | "reply";
  readonly sentMs: number;
  /** When the receiver's span shows it arrived; absent when the receiver exported nothing for it. */
  readonly receivedMs?: number;
  /** `messaging.message.body.size` of the frame: the sender's, else the receiver's. */
  readonly bytes?: number;
  /** Log entries (Raft) or slots (Paxos) the message carries, when known. */
  readonly entries?: number;
  /** Pre-vote or vote, for election messages. */
  readonly phase?: "pre-vote" | "vote";
  /** For replies: whether it granted, promised or accepted. */
  readonly granted?: boolean;
  /** The acknowledgement that completed the quorum. */
  readonly quorum: boolean;
  readonly critical: boolean;
  readonly spanId?: string;
}

export type MarkKind =
  | "start"
  | "fsync"
  | "vote-granted"
  | "vote-denied"
  | "quorum"
  | "commit"
  | "chosen"
  | "apply"
  | "reply"
  | "outcome"
  | "ack"
  | "confirmed"
  | "served";

export interface Mark {
  readonly id: string;
  readonly lane: string;
  readonly kind: MarkKind;
  readonly timeMs: number;
  readonly label: string;
  readonly critical: boolean;
}

export interface Phase {
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
}

/** A client request a batch carries: its span (a link, or the round's parent). */
export interface RequestRef {
  readonly traceId: string;
  readonly spanId: string;
  readonly name?: string;
  readonly key?: string;
}

export interface RoundSummary {
  /** The round span's id, or (round span missing) the id its sends name as their parent. */
  readonly id: string;
  readonly traceId: string;
  readonly kind: RoundKind;
  readonly protocol: Protocol;
  readonly cluster: string;
  readonly startMs: number;
  readonly durationMs: number;
  /** `applied`, `overwritten`, `won`, `lost`, `adopted`, `preempted`, `chosen`, `served`, ... or `unknown`. */
  readonly outcome: string;
  /** `term 3 [5..7]`, `ballot 2.n1 slots 4..6`. */
  readonly label: string;
  readonly lanes: number;
  readonly partial: boolean;
}

export interface RoundModel extends RoundSummary {
  readonly lanes: number;
  readonly laneList: readonly Lane[];
  readonly arrows: readonly Arrow[];
  readonly marks: readonly Mark[];
  readonly phases: readonly Phase[];
  readonly quorumSize?: number;
  readonly requests: readonly RequestRef[];
  /** What the model had to infer because spans were missing. */
  readonly missing: readonly string[];
}

/** The spans a round is built from: its own span (if it arrived) and the spans around it. */
export interface RoundFamily {
  readonly id: string;
  readonly round?: SpanRecord;
  /** The round span's known ancestors, parent first (a request's send, a KV request's SERVER span). */
  readonly ancestors: readonly SpanRecord[];
  /** Spans linked from the round (the requests of a batch), when known. */
  readonly linked: readonly SpanRecord[];
  readonly producers: readonly SpanRecord[];
  /** CONSUMER spans whose parent is one of `producers`. */
  readonly consumers: readonly SpanRecord[];
}

const str = (v: AttributeValue | undefined): string | undefined => (v === undefined ? undefined : String(v));
const num = (v: AttributeValue | undefined): number | undefined => {
  const n = typeof v === "number" ? v : typeof v === "string" && v !== "" ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : undefined;
};
const bool = (v: AttributeValue | undefined): boolean | undefined =>
  typeof v === "boolean" ? v : v === "true" ? true : v === "false" ? false : undefined;

const byTime = <T extends { timeMs: number }>(a: T, b: T) => a.timeMs - b.timeMs;

/** Kind and protocol of a family: from its round span, else from its sends. */
function kindOf(family: RoundFamily): { kind: RoundKind; protocol: Protocol } | undefined {
  if (family.round !== undefined) return ROUND_SPAN[family.round.name];
  for (const p of family.producers) {
    const kind = roundKindOfProducer(p.name);
    if (kind === undefined) continue;
    const protocol = kind === "proposal" || kind === "election" ? "raft" : "paxos";
    // An AppendEntries that carries no entries is a heartbeat: a read round's.
    if (kind === "proposal" && p.attributes["quorate.raft.first_index"] === undefined)
      return { kind: "read", protocol };
    return { kind, protocol };
  }
  return undefined;
}

/** The lanes: one per exporting instance, plus one per peer named in attributes or events that exported nothing. */
class Lanes {
  readonly #byInstance = new Map<string, { members: Set<string>; role: string; exported: boolean; firstMs: number }>();
  /** member id → instance */
  readonly #byMember = new Map<string, string>();

  seen(span: SpanRecord, role: string): string {
    const member = str(span.attributes["quorate.member"]);
    let lane = this.#byInstance.get(span.instance);
    if (lane === undefined) {
      lane = { members: new Set(), role, exported: true, firstMs: span.startMs };
      this.#byInstance.set(span.instance, lane);
    }
    lane.firstMs = Math.min(lane.firstMs, span.startMs);
    if (member !== undefined) {
      lane.members.add(member);
      this.#byMember.set(member, span.instance);
    }
    return span.instance;
  }

  /** The lane of member `peer`: its instance if it exported anything, else an inferred lane. */
  ofPeer(peer: string, role: string, timeMs: number): string {
    const instance = this.#byMember.get(peer);
    if (instance !== undefined) return instance;
    const id = `peer:${peer}`;
    if (!this.#byInstance.has(id)) {
      this.#byInstance.set(id, { members: new Set([peer]), role, exported: false, firstMs: timeMs });
      this.#byMember.set(peer, id);
    }
    return id;
  }

  /** The round's own lane first, then the others by first appearance. */
  list(first: string | undefined): Lane[] {
    return [...this.#byInstance.entries()]
      .sort(([a, x], [b, y]) => (a === first ? -1 : b === first ? 1 : x.firstMs - y.firstMs || a.localeCompare(b)))
      .map(([id, l]) => ({ id, members: [...l.members].sort(), role: l.role, exported: l.exported }));
  }

  get size(): number {
    return this.#byInstance.size;
  }
}

function outcomeOf(kind: RoundKind, round: SpanRecord | undefined): string {
  if (round === undefined) return "unknown";
  const has = (name: string) => round.events.some((e) => e.name === name);
  switch (kind) {
    case "proposal":
      if (has("apply")) return "applied";
      if (round.status === StatusCode.error)
        return round.statusMessage?.includes("overwritten") ? "overwritten" : "stopped";
      return has("commit") ? "committed" : "open";
    case "election":
      return str(round.attributes["quorate.raft.outcome"]) ?? "open";
    case "phase1":
      return str(round.attributes["quorate.paxos.outcome"]) ?? "open";
    case "phase2":
      if (has("chosen")) return "chosen";
      return round.status === StatusCode.error ? "preempted" : "open";
    case "read":
      if (has("served")) return "served";
      if (round.status === StatusCode.error)
        return round.statusMessage?.includes("not the leader") ? "refused" : "stopped";
      return has("confirmed") ? "confirmed" : "open";
  }
}

function labelOf(kind: RoundKind, protocol: Protocol, span: SpanRecord | undefined): string {
  if (span === undefined) return "";
  const a = span.attributes;
  if (kind === "read") {
    const leader =
      protocol === "raft"
        ? `term ${str(a["quorate.raft.term"]) ?? "?"}`
        : `ballot ${str(a["quorate.paxos.round"]) ?? "?"}.${str(a["quorate.paxos.proposer"]) ?? "?"}`;
    const index = str(a[`quorate.${protocol}.read_index`]);
    return index === undefined ? `${leader} read` : `${leader} read index ${index}`;
  }
  if (kind === "proposal" || kind === "election") {
    const term = `term ${str(a["quorate.raft.term"]) ?? "?"}`;
    if (kind === "election") return term;
    const first = str(a["quorate.raft.first_index"]);
    const last = str(a["quorate.raft.last_index"]);
    return first === last ? `${term} index ${first}` : `${term} [${first}..${last}]`;
  }
  const ballot = `ballot ${str(a["quorate.paxos.round"]) ?? "?"}.${str(a["quorate.paxos.proposer"]) ?? "?"}`;
  if (kind === "phase1") return ballot;
  const first = str(a["quorate.paxos.first_slot"]);
  const last = str(a["quorate.paxos.last_slot"]);
  return first === last ? `${ballot} slot ${first}` : `${ballot} slots ${first}..${last}`;
}

/** The summary the rounds list shows; cheaper than the full model. */
export function summarizeRound(family: RoundFamily): RoundSummary | undefined {
  const what = kindOf(family);
  if (what === undefined) return undefined;
  const all = [family.round, ...family.producers, ...family.consumers].filter((s) => s !== undefined);
  const instances = new Set(all.map((s) => s.instance));
  const source = family.round ?? family.producers[0];
  const startMs = Math.min(...all.map((s) => s.startMs));
  const endMs = family.round?.endMs ?? Math.max(...all.map((s) => s.endMs));
  return {
    id: family.id,
    traceId: source?.traceId ?? "",
    kind: what.kind,
    protocol: what.protocol,
    cluster: str(source?.attributes["quorate.cluster"]) ?? source?.namespace ?? "",
    startMs,
    durationMs: Math.max(0, endMs - startMs),
    outcome: outcomeOf(what.kind, family.round),
    label: labelOf(what.kind, what.protocol, source),
    lanes: instances.size,
    partial:
      family.round === undefined ||
      (family.producers.length === 0 && !sentNothing(what.kind, family.round)) ||
      (family.producers.length > 0 && family.consumers.length === 0),
  };
}

/** A read served without a round of messages (a lease, or a single voter) has no sends to miss. */
function sentNothing(kind: RoundKind, round: SpanRecord): boolean {
  return kind === "read" && !round.events.some((e) => e.name === REPLY.read.event);
}

const REQUEST_ROLE: Readonly<Record<Exclude<RoundKind, "read">, [string, string]>> = {
  proposal: ["leader", "follower"],
  election: ["candidate", "voter"],
  phase1: ["proposer", "acceptor"],
  phase2: ["proposer", "acceptor"],
};

/** The roles of the round's owner and of the members it sends to. */
function rolesOf(kind: RoundKind, protocol: Protocol): [string, string] {
  if (kind !== "read") return REQUEST_ROLE[kind];
  return protocol === "raft" ? REQUEST_ROLE.proposal : REQUEST_ROLE.phase2;
}

/** Builds the diagram of one round. Returns undefined when the family names no round (no round span, no sends). */
export function buildRoundModel(family: RoundFamily): RoundModel | undefined {
  const summary = summarizeRound(family);
  if (summary === undefined) return undefined;
  const { kind } = summary;
  const round = family.round;
  const [ownerRole, peerRole] = rolesOf(kind, summary.protocol);
  const missing: string[] = [];
  const lanes = new Lanes();
  const arrows: Arrow[] = [];
  const marks: Mark[] = [];

  const ownerSpan = round ?? family.producers[0];
  const owner = ownerSpan === undefined ? undefined : lanes.seen(ownerSpan, ownerRole);
  if (round === undefined) missing.push(`the ${kind} span itself (its sends name it as their parent)`);
  for (const p of family.producers) lanes.seen(p, ownerRole);

  // Requests: each PRODUCER span to each CONSUMER span that handled it.
  const consumersOf = new Map<string, SpanRecord[]>();
  for (const c of family.consumers) {
    const list = consumersOf.get(c.parentSpanId ?? "") ?? [];
    list.push(c);
    consumersOf.set(c.parentSpanId ?? "", list);
  }
  const phaseOf = (span: SpanRecord | undefined): "pre-vote" | "vote" | undefined => {
    if (kind !== "election" || span === undefined) return undefined;
    return bool(span.attributes["quorate.raft.pre_vote"]) ? "pre-vote" : "vote";
  };
  const isLearner = (c: SpanRecord) =>
    kind === "phase2" && c.attributes["quorate.paxos.outcome"] === undefined && c.events.length > 0;
  /** Consumers that got a request arrow; an acceptor's or voter's reply is matched to a round event below. */
  const handled: {
    consumer: SpanRecord;
    lane: string;
    arrow: string;
    type: string;
    phase?: "pre-vote" | "vote";
  }[] = [];
  for (const p of [...family.producers].sort((a, b) => a.startMs - b.startMs)) {
    const from = lanes.seen(p, ownerRole);
    const first = num(p.attributes["quorate.raft.first_index"] ?? p.attributes["quorate.paxos.first_slot"]);
    const last = num(p.attributes["quorate.raft.last_index"] ?? p.attributes["quorate.paxos.last_slot"]);
    const entries = first !== undefined && last !== undefined ? last - first + 1 : undefined;
    const sentBytes = num(p.attributes[BODY_SIZE]);
    const type = str(p.attributes["quorate.message.type"]) ?? p.name.replace(/^publish /, "");
    const phase = phaseOf(p);
    const receivers = (consumersOf.get(p.spanId) ?? []).sort((a, b) => a.startMs - b.startMs);
    for (const c of receivers) {
      const to = lanes.seen(c, isLearner(c) ? "learner" : peerRole);
      const id = `req:${c.spanId}`;
      const bytes = sentBytes ?? num(c.attributes[BODY_SIZE]);
      arrows.push({
        id,
        from,
        to,
        type,
        direction: "request",
        sentMs: p.startMs,
        receivedMs: c.startMs,
        ...(bytes === undefined ? {} : { bytes }),
        ...(entries === undefined ? {} : { entries }),
        ...(phase === undefined ? {} : { phase }),
        quorum: false,
        critical: false,
        spanId: p.spanId,
      });
      if (!isLearner(c))
        handled.push({ consumer: c, lane: to, arrow: id, type, ...(phase === undefined ? {} : { phase }) });
      learnerMarks(c, to, marks);
    }
    const peer = str(p.attributes["quorate.peer"]);
    if (receivers.length === 0 && peer !== undefined && peer !== "*") {
      // A directed send whose receiver exported nothing: an arrow with no arrival.
      arrows.push({
        id: `req:${p.spanId}`,
        from,
        to: lanes.ofPeer(peer, peerRole, p.startMs),
        type,
        direction: "request",
        sentMs: p.startMs,
        ...(sentBytes === undefined ? {} : { bytes: sentBytes }),
        ...(entries === undefined ? {} : { entries }),
        ...(phase === undefined ? {} : { phase }),
        quorum: false,
        critical: false,
        spanId: p.spanId,
      });
      missing.push(`the receiver's span of ${type} to ${peer}`);
    }
  }
  // Replies: the round span records one event per reply (ack, vote, promise, accept); a
  // receiver's consumer span ends when its reply leaves (after its state is durable).
  const reply = REPLY[kind];
  const firstSend = family.producers[0];
  const requestType =
    firstSend === undefined
      ? undefined
      : (str(firstSend.attributes["quorate.message.type"]) ?? firstSend.name.replace(/^publish /, ""));
  const replyEvents = (round?.events ?? [])
    .filter((e) => e.name === reply.event || (kind === "election" && e.name === "pre-vote"))
    .sort(byTime);
  const eventsByPeer = new Map<string, typeof replyEvents>();
  for (const e of replyEvents) {
    const peer = str(e.attributes["quorate.peer"]) ?? "?";
    eventsByPeer.set(peer, [...(eventsByPeer.get(peer) ?? []), e]);
  }
  const memberOf = (c: SpanRecord) => str(c.attributes["quorate.member"]) ?? "?";
  const replies: {
    arrow: Arrow;
    consumer?: SpanRecord;
    eventMs?: number;
    peer: string;
    phase?: "pre-vote" | "vote";
  }[] = [];
  for (const h of handled.sort((a, b) => a.consumer.endMs - b.consumer.endMs)) {
    const c = h.consumer;
    const peer = memberOf(c);
    const candidates = eventsByPeer.get(peer) ?? [];
    // The first unmatched event of this peer (and phase) at or after the reply left.
    const index = candidates.findIndex(
      (e) => (h.phase === undefined || (e.name === "pre-vote") === (h.phase === "pre-vote")) && e.timeMs >= c.endMs - 1,
    );
    const event = index === -1 ? undefined : candidates.splice(index, 1)[0];
    const granted = grantedOf(kind, c, event?.attributes);
    marks.push({
      id: `fsync:${c.spanId}`,
      lane: h.lane,
      kind:
        kind === "election" ? (granted === false ? "vote-denied" : "vote-granted") : kind === "read" ? "ack" : "fsync",
      timeMs: c.endMs,
      label: replyLabel(kind, granted, h.phase),
      critical: false,
    });
    if (owner === undefined) continue;
    const arrow: Arrow = {
      id: `rep:${c.spanId}`,
      from: h.lane,
      to: owner,
      type: h.phase === "pre-vote" ? "raft.vote.resp (pre-vote)" : replyType(kind, event?.attributes, h.type),
      direction: "reply",
      sentMs: c.endMs,
      ...(event === undefined ? {} : { receivedMs: event.timeMs }),
      ...replyBytes(event?.attributes),
      ...(h.phase === undefined ? {} : { phase: h.phase }),
      ...(granted === undefined ? {} : { granted }),
      quorum: false,
      critical: false,
    };
    arrows.push(arrow);
    replies.push({
      arrow,
      consumer: c,
      peer,
      ...(event === undefined ? {} : { eventMs: event.timeMs }),
      ...(h.phase === undefined ? {} : { phase: h.phase }),
    });
  }
  // Replies the round saw from members that exported nothing for them: inferred arrows.
  if (owner !== undefined) {
    for (const [peer, events] of eventsByPeer) {
      for (const e of events) {
        if (replies.some((r) => r.peer === peer && r.eventMs !== undefined)) {
          // Later acks of a peer already drawn (acks for later rounds also cover this one) add nothing.
          if (kind === "proposal" || kind === "read") break;
        }
        const phase = kind === "election" ? (e.name === "pre-vote" ? "pre-vote" : "vote") : undefined;
        const granted = grantedOf(kind, undefined, e.attributes);
        const from = lanes.ofPeer(peer, peerRole, e.timeMs);
        const arrow: Arrow = {
          id: `rep:${peer}:${e.timeMs}`,
          from,
          to: owner,
          type: phase === "pre-vote" ? "raft.vote.resp (pre-vote)" : replyType(kind, e.attributes, requestType),
          direction: "reply",
          sentMs: e.timeMs,
          receivedMs: e.timeMs,
          ...replyBytes(e.attributes),
          ...(phase === undefined ? {} : { phase }),
          ...(granted === undefined ? {} : { granted }),
          quorum: false,
          critical: false,
        };
        arrows.push(arrow);
        replies.push({ arrow, peer, eventMs: e.timeMs, ...(phase === undefined ? {} : { phase }) });
        if (kind === "proposal" || kind === "read") break;
      }
    }
  }

  // The quorum: the reply that completed it, per phase.
  const quorumSize = num(
    round?.attributes["quorate.raft.quorum_size"] ?? round?.attributes["quorate.paxos.quorum_size"],
  );
  const quorumReplies = findQuorumReplies(kind, summary.protocol, round, replies, quorumSize);
  const phases = phasesOf(kind, round);

  // Decision marks on the round's own lane.
  if (round !== undefined && owner !== undefined) {
    // An election's phases start it: their marks say so.
    if (kind !== "election")
      marks.push({
        id: "start",
        lane: owner,
        kind: "start",
        timeMs: round.startMs,
        label: `${round.name} starts`,
        critical: true,
      });
    for (const e of round.events) {
      const mark = decisionMark(kind, e.name);
      if (mark !== undefined) {
        marks.push({
          id: `ev:${e.name}:${e.timeMs}`,
          lane: owner,
          kind: mark.kind,
          timeMs: e.timeMs,
          label: mark.label,
          critical: mark.critical,
        });
      }
    }
    if (kind === "election" || kind === "phase1" || round.status === StatusCode.error) {
      marks.push({
        id: "outcome",
        lane: owner,
        kind: "outcome",
        timeMs: round.endMs,
        label: summary.outcome,
        critical: true,
      });
    }
  }
  // The reply to the client: the end of the SERVER span the round (or its request) belongs to.
  const requests: RequestRef[] = [];
  const server = family.ancestors.find((s) => s.kind === SpanKindCode.server);
  if (server !== undefined) {
    // Paxos requests are served by learners; a Raft request may be served by a follower that forwarded it.
    const lane = lanes.seen(
      server,
      server.instance === owner ? ownerRole : summary.protocol === "paxos" ? "learner" : peerRole,
    );
    marks.push({
      id: `reply:${server.spanId}`,
      lane,
      kind: "reply",
      timeMs: server.endMs,
      label: `${server.name} replies`,
      critical: true,
    });
  }
  const parent = family.ancestors[0];
  if (parent !== undefined) requests.push(requestRef(parent));
  for (const link of round?.links ?? []) {
    const known = family.linked.find((s) => s.spanId === link.spanId);
    requests.push(known === undefined ? { traceId: link.traceId, spanId: link.spanId } : requestRef(known));
  }
  if (parent?.name === "publish paxos.request" && owner !== undefined && round !== undefined) {
    arrows.push({
      id: `req:${parent.spanId}`,
      from: lanes.seen(parent, "learner"),
      to: owner,
      type: "paxos.request",
      direction: "request",
      sentMs: parent.startMs,
      receivedMs: round.startMs,
      quorum: false,
      critical: true,
      spanId: parent.spanId,
    });
  }

  // The critical path: the request that reached the quorum-completing member, its durable
  // write, the reply that completed the quorum, and the decision after it.
  const critical = new Set<string>();
  for (const q of quorumReplies) {
    critical.add(q.arrow.id);
    if (q.consumer !== undefined) {
      critical.add(`req:${q.consumer.spanId}`);
      critical.add(`fsync:${q.consumer.spanId}`);
    }
  }
  const quorumIds = new Set(quorumReplies.map((q) => q.arrow.id));
  const laneList = lanes.list(owner);
  if (laneList.some((l) => !l.exported)) missing.push("spans of members shown with dashed lanes");
  return {
    ...summary,
    lanes: laneList.length,
    laneList,
    arrows: arrows.map((a) => ({ ...a, quorum: quorumIds.has(a.id), critical: a.critical || critical.has(a.id) })),
    marks: [
      ...marks.map((m) => ({ ...m, critical: m.critical || critical.has(m.id) })),
      ...quorumReplies
        .filter((q) => q.eventMs !== undefined)
        .map((q) => ({
          id: `quorum:${q.arrow.id}`,
          lane: owner ?? q.arrow.to,
          kind: "quorum" as const,
          timeMs: q.eventMs ?? 0,
          label: `quorum${q.phase === undefined ? "" : ` (${q.phase})`}: ${q.peer} completed it`,
          critical: true,
        })),
    ].sort((a, b) => a.timeMs - b.timeMs),
    phases,
    ...(quorumSize === undefined ? {} : { quorumSize }),
    requests,
    missing,
    partial: summary.partial || missing.length > 0,
  };
}

function learnerMarks(c: SpanRecord, lane: string, marks: Mark[]): void {
  for (const e of c.events) {
    if (e.name === "chosen" || e.name === "apply") {
      const slot = str(e.attributes["quorate.paxos.slot"]);
      marks.push({
        id: `learn:${c.spanId}:${e.name}:${slot}`,
        lane,
        kind: e.name,
        timeMs: e.timeMs,
        label: `${e.name} slot ${slot}`,
        critical: false,
      });
    }
  }
}

function grantedOf(
  kind: RoundKind,
  consumer: SpanRecord | undefined,
  event: Readonly<Record<string, AttributeValue>> | undefined,
): boolean | undefined {
  // Any answer in the leader's term confirms it for a read, whatever it says of the log.
  if (kind === "read") return event === undefined ? undefined : true;
  if (kind === "election") return bool(event?.["quorate.raft.granted"] ?? consumer?.attributes["quorate.raft.granted"]);
  if (kind === "proposal") {
    const success = bool(consumer?.attributes["quorate.raft.success"]);
    return success ?? (event === undefined ? undefined : true);
  }
  const outcome = str(consumer?.attributes["quorate.paxos.outcome"]);
  if (outcome === undefined) return event === undefined ? undefined : true;
  return outcome === "promised" || outcome === "accepted";
}

function replyLabel(kind: RoundKind, granted: boolean | undefined, phase: "pre-vote" | "vote" | undefined): string {
  if (kind === "election") return `${phase ?? "vote"} ${granted === false ? "denied" : "granted"} (durable)`;
  if (kind === "read") return "acknowledges the leader";
  if (granted === false) return "durable, rejects";
  return kind === "phase1" ? "promise durable" : kind === "phase2" ? "vote durable" : "entries durable";
}

function decisionMark(
  kind: RoundKind,
  event: string,
): { kind: MarkKind; label: string; critical: boolean } | undefined {
  if (event === "commit") return { kind: "commit", label: "commit", critical: true };
  if (event === "apply") return { kind: "apply", label: "apply", critical: true };
  if (event === "chosen") return { kind: "chosen", label: "chosen", critical: true };
  if (kind === "read" && event === "confirmed")
    return { kind: "confirmed", label: "leadership confirmed", critical: true };
  if (kind === "read" && event === "served") return { kind: "served", label: "served", critical: true };
  if (event === "pre-vote.won") return { kind: "outcome", label: "pre-vote won", critical: true };
  if (kind === "election" && event === "pre-vote.start")
    return { kind: "start", label: "pre-vote starts", critical: false };
  if (kind === "election" && event === "vote.start") return { kind: "start", label: "vote starts", critical: true };
  return undefined;
}

type Reply = { arrow: Arrow; consumer?: SpanRecord; eventMs?: number; peer: string; phase?: "pre-vote" | "vote" };

/**
 * The reply that completed each quorum. Raft rounds count the leader itself (quorum_size), so
 * the (q-1)-th follower acknowledgement decides; Paxos phases need q acceptors. An election
 * records no quorum size: its quorum is completed by the last granted vote the candidate saw
 * before it won the phase. A read says when its quorum was complete (`confirmed`): the last
 * acknowledgement before that completed it, whoever counts in the protocol's quorum.
 */
function findQuorumReplies(
  kind: RoundKind,
  protocol: Protocol,
  round: SpanRecord | undefined,
  replies: readonly Reply[],
  quorumSize: number | undefined,
): Reply[] {
  const arrived = replies
    .filter((r) => r.eventMs !== undefined && r.arrow.granted !== false)
    .sort((a, b) => (a.eventMs ?? 0) - (b.eventMs ?? 0));
  if (kind === "election") {
    if (round === undefined) return [];
    const result: Reply[] = [];
    const preVoteWon = round.events.find((e) => e.name === "pre-vote.won")?.timeMs;
    if (preVoteWon !== undefined) {
      const last = arrived.filter((r) => r.phase === "pre-vote" && (r.eventMs ?? 0) <= preVoteWon).at(-1);
      if (last !== undefined) result.push(last);
    }
    if (round.attributes["quorate.raft.outcome"] === "won") {
      const last = arrived.filter((r) => r.phase === "vote").at(-1);
      if (last !== undefined) result.push(last);
    }
    return result;
  }
  const confirmed = kind === "read" ? round?.events.find((e) => e.name === "confirmed")?.timeMs : undefined;
  if (confirmed !== undefined) {
    const last = arrived.filter((r) => (r.eventMs ?? 0) <= confirmed).at(-1);
    return last === undefined ? [] : [last];
  }
  if (quorumSize === undefined) return [];
  const needed = kind === "proposal" || (kind === "read" && protocol === "raft") ? quorumSize - 1 : quorumSize;
  if (needed <= 0) return [];
  const peers = new Set<string>();
  for (const r of arrived) {
    peers.add(r.peer);
    if (peers.size === needed) return [r];
  }
  return [];
}

function phasesOf(kind: RoundKind, round: SpanRecord | undefined): Phase[] {
  if (round === undefined) return [];
  if (kind !== "election") return [{ name: kind, startMs: round.startMs, endMs: round.endMs }];
  const preVote = round.events.find((e) => e.name === "pre-vote.start");
  const vote = round.events.find((e) => e.name === "vote.start");
  const phases: Phase[] = [];
  if (preVote !== undefined)
    phases.push({ name: "pre-vote", startMs: preVote.timeMs, endMs: vote?.timeMs ?? round.endMs });
  if (vote !== undefined) phases.push({ name: "vote", startMs: vote.timeMs, endMs: round.endMs });
  return phases;
}

const BODY_SIZE = "messaging.message.body.size";

/** A reply's type: an election's and a phase's are known; a read's event names it, else it answers its request. */
function replyType(
  kind: RoundKind,
  event: Readonly<Record<string, AttributeValue>> | undefined,
  requestType: string | undefined,
): string {
  if (kind !== "read") return REPLY[kind].type;
  return str(event?.["quorate.message.type"]) ?? (requestType === undefined ? "reply" : `${requestType}.resp`);
}

/** The size of a reply as the round's owner received it, when its event records it. */
function replyBytes(event: Readonly<Record<string, AttributeValue>> | undefined): { bytes?: number } {
  const bytes = num(event?.[BODY_SIZE]);
  return bytes === undefined ? {} : { bytes };
}

function requestRef(span: SpanRecord): RequestRef {
  const key = str(span.attributes["quorate.kv.key"]);
  return { traceId: span.traceId, spanId: span.spanId, name: span.name, ...(key === undefined ? {} : { key }) };
}
