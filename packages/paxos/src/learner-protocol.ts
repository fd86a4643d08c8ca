import { compareBallots, type NodeId, type PaxosBallot, type PaxosValue } from "@quorate/core";
import { checkRule } from "@quorate/core/internal";
import { valueBytes } from "./acceptor-protocol.js";
import type { LearnerLog } from "./learner-log.js";
import type {
  PaxosAccept,
  PaxosAccepted,
  PaxosHeartbeat,
  PaxosLearned,
  PaxosReadIndex,
  PaxosRepeated,
  PaxosRequest,
  PaxosSnapshotChunk,
  PaxosSnapshotRequest,
} from "./messages.js";
import type { PaxosOptions, PaxosTopology } from "./options.js";
import type { LearnerOutbox, LearnerRequest, PaxosMessage } from "./outbox.js";

/**
 * The learner (PMMC's Replica, minus proposing: it hands client requests to the active
 * proposer) as functions over a draft of its context. A value is chosen in a slot once a
 * phase-2 quorum of acceptors voted for it at one ballot: the learner counts the acceptors'
 * broadcast p2b itself, with the value from the proposer's broadcast p2a. Gaps are closed by
 * asking acceptors to repeat their votes, then the proposer to drive the slot again; a learner
 * behind the acceptors' truncation point restores another learner's checkpoint.
 */

export interface LearnerContext {
  readonly id: NodeId;
  readonly topology: PaxosTopology;
  readonly options: PaxosOptions;
  readonly log: LearnerLog;
  readonly out: LearnerOutbox;
  leader: NodeId | null;
  leaderBallot: PaxosBallot;
  /** Ticks since the leader was last heard; past twice the leader timeout it is presumed gone. */
  leaderSilentTicks: number;
  heartbeatElapsed: number;
  retransmitElapsed: number;
  /** Ticks without applying anything while behind, and catch-up rounds since the last progress. */
  stallTicks: number;
  catchupRounds: number;
  lastApplied: number;
  /** Latest checkpoint each other learner reported: snapshot sources. */
  peerCheckpoints: Readonly<Record<NodeId, number>>;
  /** An acceptor truncated past what we applied: only a checkpoint gets us there. */
  needSnapshotThrough: number;
}

/** The learner's rules as named guards: the machine registers them, and a broken variant replaces one with `provide()`. */
export interface LearnerGuardParams {
  chosenByQuorum: { readonly d: LearnerContext; readonly voters: number };
}

/** A value is chosen in a slot once a phase-2 quorum of acceptors voted for it at one ballot. */
export function chosenByQuorum({ d, voters }: LearnerGuardParams["chosenByQuorum"]): boolean {
  return voters >= d.topology.q2;
}

/** Evaluates one of the learner's rules as the machine implements it, `provide()` included. */
function check<G extends keyof LearnerGuardParams>(guard: G, params: LearnerGuardParams[G]): boolean {
  return checkRule(guard, params);
}

/** Counts a vote (`voter`) or the proposer's value for (slot, ballot), and learns the value once it is chosen. */
function countVote(
  d: LearnerContext,
  slot: number,
  ballot: PaxosBallot,
  voter: NodeId | null,
  value: PaxosValue | null,
): void {
  const votes = d.log.record(slot, ballot, voter, value);
  if (check("chosenByQuorum", { d, voters: votes.voters })) learn(d, slot, votes.value);
}

function learn(d: LearnerContext, slot: number, value: PaxosValue | null): void {
  if (value === null) return;
  d.log.choose(slot, value);
  if (value.origin === d.id) d.log.pending.delete(value.seq);
  d.out.observe({ kind: "chosen", learner: d.id, slot, value });
}

function noteLeader(d: LearnerContext, from: NodeId, ballot: PaxosBallot): void {
  if (compareBallots(ballot, d.leaderBallot) < 0) return;
  d.leaderBallot = ballot;
  d.leaderSilentTicks = 0;
  if (d.leader === from) return;
  d.leader = from;
  // A new leader: what we asked the old one for may be lost with it.
  sendPending(d);
}

function sendPending(d: LearnerContext): void {
  d.retransmitElapsed = 0;
  if (d.leader !== null && d.log.reads.size > 0) {
    d.out.send(d.leader, "paxos.read", { reads: [...d.log.reads.keys()] }, false);
  }
  if (d.leader === null || d.log.pending.size === 0) return;
  let requests: PaxosRequest["requests"] = [];
  let bytes = 0;
  for (const [seq, request] of d.log.pending) {
    const size = valueBytes(request);
    if (requests.length > 0 && bytes + size > d.options.maxMessageBytes) {
      d.out.send(d.leader, "paxos.request", { requests }, false);
      requests = [];
      bytes = 0;
    }
    requests.push({ seq, kind: request.kind, data: request.data });
    bytes += size;
  }
  d.out.send(d.leader, "paxos.request", { requests }, false);
}

export function hearAccept(d: LearnerContext, from: NodeId, m: PaxosAccept): void {
  noteLeader(d, from, m.ballot);
  for (const { slot, value } of m.proposals) {
    if (d.log.isOpen(slot)) countVote(d, slot, m.ballot, null, value);
  }
}

export function hearAccepted(d: LearnerContext, from: NodeId, m: PaxosAccepted): void {
  for (const slot of m.slots) {
    if (d.log.isOpen(slot)) countVote(d, slot, m.ballot, from, null);
  }
}

export function hearRepeated(d: LearnerContext, from: NodeId, m: PaxosRepeated): void {
  if (m.truncated > d.log.applied) d.needSnapshotThrough = Math.max(d.needSnapshotThrough, m.truncated);
  for (const a of m.accepted) {
    if (d.log.isOpen(a.slot)) countVote(d, a.slot, a.ballot, from, a.value);
  }
}

export function hearHeartbeat(d: LearnerContext, from: NodeId, m: PaxosHeartbeat): void {
  noteLeader(d, from, m.ballot);
  if (m.nextSlot - 1 > d.log.highestSeen) d.log.highestSeen = m.nextSlot - 1;
}

export function hearLearned(d: LearnerContext, from: NodeId, m: PaxosLearned): void {
  if (from === d.id || (d.peerCheckpoints[from] ?? 0) >= m.checkpoint) return;
  d.peerCheckpoints = { ...d.peerCheckpoints, [from]: m.checkpoint };
}

/** Serves our checkpoint in pieces; a request for an older one gets the current one from the start. */
export function serveSnapshot(d: LearnerContext, from: NodeId, m: PaxosSnapshotRequest): void {
  const checkpoint = d.log.checkpoint;
  if (checkpoint === null) return;
  const offset = m.slot === checkpoint.slot ? Math.min(m.offset, checkpoint.data.length) : 0;
  const data = checkpoint.data.subarray(offset, offset + d.options.maxMessageBytes);
  d.out.send(
    from,
    "paxos.snapshot.chunk",
    { slot: checkpoint.slot, offset, total: checkpoint.data.length, data },
    false,
  );
}

export function receiveSnapshot(d: LearnerContext, from: NodeId, m: PaxosSnapshotChunk): void {
  if (m.slot <= d.log.applied) return;
  let incoming = d.log.incoming;
  if (incoming === null || incoming.slot !== m.slot || incoming.from !== from) {
    if (m.offset !== 0) return;
    incoming = { from, slot: m.slot, total: m.total, parts: [], received: 0 };
    d.log.incoming = incoming;
  }
  if (m.offset !== incoming.received) return; // a duplicate, or out of order: asked again below
  incoming.parts.push(m.data);
  incoming.received += m.data.length;
  if (incoming.received < incoming.total) {
    d.out.send(from, "paxos.snapshot.req", { slot: m.slot, offset: incoming.received }, false);
    return;
  }
  const data = new Uint8Array(incoming.total);
  let offset = 0;
  for (const part of incoming.parts) {
    data.set(part, offset);
    offset += part.length;
  }
  d.log.incoming = null;
  d.out.restore = { slot: m.slot, data };
}

/** Asks for the checkpoint of the learner that reported the highest one. */
function requestSnapshot(d: LearnerContext): void {
  let source: NodeId | null = null;
  let best = d.log.applied;
  for (const [learner, checkpoint] of Object.entries(d.peerCheckpoints)) {
    if (checkpoint > best) {
      best = checkpoint;
      source = learner;
    }
  }
  if (source === null) return;
  const incoming = d.log.incoming;
  const resume = incoming !== null && incoming.from === source;
  d.out.send(
    source,
    "paxos.snapshot.req",
    { slot: resume ? incoming.slot : best, offset: resume ? incoming.received : 0 },
    false,
  );
}

function catchUp(d: LearnerContext, target: number): void {
  if (d.needSnapshotThrough > d.log.applied) {
    requestSnapshot(d);
    return;
  }
  const from = d.log.applied + 1;
  const to = Math.min(d.log.applied + d.options.maxRepeatSlots, target);
  d.out.send(null, "paxos.repeat", { from, to }, false);
  if (d.catchupRounds >= 2 && d.leader !== null) {
    // Repeating did not help: nobody holds a quorum for these slots. The leader drives them
    // again, or finds them holes and fills them with no-ops.
    const slots: number[] = [];
    for (let slot = from; slot <= to && slots.length < 1024; slot++) if (d.log.isOpen(slot)) slots.push(slot);
    if (slots.length > 0) d.out.send(d.leader, "paxos.fill", { slots }, false);
  }
}

export function tick(d: LearnerContext): void {
  const log = d.log;
  d.heartbeatElapsed++;
  if (d.heartbeatElapsed >= d.options.learnerHeartbeatTicks) {
    d.heartbeatElapsed = 0;
    d.out.send(null, "paxos.learned", { applied: log.applied, checkpoint: log.checkpoint?.slot ?? 0 }, false);
  }
  d.leaderSilentTicks++;
  if (d.leader !== null && d.leaderSilentTicks > 2 * d.options.leaderTimeoutTicks) d.leader = null;
  d.retransmitElapsed++;
  if (d.retransmitElapsed >= d.options.retransmitTicks) sendPending(d);

  const target = Math.max(log.highestChosen, log.highestSeen, d.needSnapshotThrough);
  if (log.applied > d.lastApplied || log.applied >= target) {
    d.lastApplied = log.applied;
    d.stallTicks = 0;
    d.catchupRounds = 0;
    return;
  }
  d.stallTicks++;
  if (d.stallTicks >= d.options.catchupTicks) {
    d.stallTicks = 0;
    d.catchupRounds++;
    catchUp(d, target);
  }
}

/** Client requests: handed to the leader, or refused at once when none is known (nothing was sent). */
export function propose(d: LearnerContext, id: number, requests: readonly LearnerRequest[]): void {
  if (d.leader === null) {
    d.out.proposals.push({ id, ok: false, leader: null });
    return;
  }
  // Requests stay pending until chosen, even once their caller gave up waiting: bounded here.
  if (d.log.pending.size + requests.length > d.options.maxPendingRequests) {
    d.out.proposals.push({ id, ok: false, leader: d.leader, busy: true });
    return;
  }
  const firstSeq = d.log.nextSeq;
  const batch: PaxosRequest["requests"] = [];
  for (const request of requests) {
    const seq = d.log.nextSeq++;
    d.log.pending.set(seq, request);
    batch.push({ seq, kind: request.kind, data: request.data });
  }
  d.out.send(d.leader, "paxos.request", { requests: batch }, false);
  d.out.proposals.push({ id, ok: true, firstSeq });
}

/**
 * A read barrier (the host's batch `batch` of reads): the active proposer gives it a read index
 * once a quorum of acceptors confirmed its ballot; refused at once when no proposer is known.
 */
export function read(d: LearnerContext, batch: number): void {
  if (d.leader === null) {
    d.out.reads.push({ batch, ok: false, leader: null });
    return;
  }
  if (d.log.reads.size >= d.options.maxPendingRequests) {
    d.out.reads.push({ batch, ok: false, leader: d.leader, busy: true });
    return;
  }
  const id = d.log.nextSeq++;
  d.log.reads.set(id, batch);
  d.out.send(d.leader, "paxos.read", { reads: [id] }, false);
}

/** The host gave up on these read batches (timed out): stop asking for their index. */
export function forgetReads(d: LearnerContext, batches: readonly number[]): void {
  const forgotten = new Set(batches);
  for (const [id, batch] of d.log.reads) if (forgotten.has(batch)) d.log.reads.delete(id);
}

/**
 * A proposer's read index: once applied through `slot`, our reads are linearizable. Any
 * proposer's counts, a deposed one's too: it confirmed its ballot after the reads reached it.
 */
export function hearReadIndex(d: LearnerContext, m: PaxosReadIndex): void {
  for (const id of m.reads) {
    const batch = d.log.reads.get(id);
    if (batch === undefined) continue;
    d.log.reads.delete(id);
    d.out.reads.push({ batch, ok: true, slot: m.slot });
  }
  // The learner catches up to the index like to any slot it knows of.
  if (m.slot > d.log.highestSeen) d.log.highestSeen = m.slot;
}

/** Every message but a proposer's read index, which the machine routes to `hearReadIndex` itself. */
export function stepLearner(d: LearnerContext, from: NodeId, message: PaxosMessage): void {
  const { acceptors, proposers, learners } = d.topology;
  switch (message.type) {
    case "paxos.p2a":
      if (proposers.includes(from)) hearAccept(d, from, message.body);
      return;
    case "paxos.p2b":
      if (acceptors.includes(from)) hearAccepted(d, from, message.body);
      return;
    case "paxos.repeated":
      if (acceptors.includes(from)) hearRepeated(d, from, message.body);
      return;
    case "paxos.heartbeat":
      if (proposers.includes(from)) hearHeartbeat(d, from, message.body);
      return;
    case "paxos.learned":
      if (learners.includes(from)) hearLearned(d, from, message.body);
      return;
    case "paxos.snapshot.req":
      if (learners.includes(from)) serveSnapshot(d, from, message.body);
      return;
    case "paxos.snapshot.chunk":
      if (learners.includes(from)) receiveSnapshot(d, from, message.body);
      return;
    default:
      return;
  }
}
