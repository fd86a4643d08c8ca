import { compareBallots, type NodeId, type PaxosAcceptance, type PaxosBallot, type PaxosValue } from "@quorate/core";
import { checkRule, invariant } from "@quorate/core/internal";
import type { PaxosAccept, PaxosHeartbeat, PaxosLearned, PaxosPrepare, PaxosRepeat } from "./messages.js";
import type { PaxosOptions, PaxosTopology } from "./options.js";
import type { AcceptorOutbox, PaxosMessage } from "./outbox.js";

/**
 * The acceptor rules (Lamport's Paxos.tla Phase1b and Phase2b, with PMMC's state reduction:
 * only the highest-ballot acceptance per slot is kept) as functions over a draft of the
 * machine's context. No IO: durable changes and replies are queued in the outbox, and the host
 * sends every reply only after the changes queued before it are fsynced.
 */

/** Per-value overhead counted against message size caps, beside the command bytes. */
export const VALUE_OVERHEAD_BYTES = 48;

export function valueBytes(value: { data: Uint8Array }): number {
  return value.data.length + VALUE_OVERHEAD_BYTES;
}

export function sameValue(a: PaxosValue, b: PaxosValue): boolean {
  return a.kind === b.kind && a.origin === b.origin && a.seq === b.seq && Buffer.compare(a.data, b.data) === 0;
}

function showBallot(ballot: PaxosBallot): string {
  return `[${ballot[0]},${ballot[1]}]`;
}

/**
 * The acceptances an acceptor holds, owned by its host and referenced (never copied) by the
 * machine, as RaftLog is. Slots above `truncated` only.
 */
export class AcceptorLog {
  readonly #accepted = new Map<number, PaxosAcceptance>();
  #truncated: number;
  #highestSlot: number;

  constructor(init: { truncated: number; accepted: readonly PaxosAcceptance[] }) {
    this.#truncated = init.truncated;
    this.#highestSlot = init.truncated;
    for (const a of init.accepted) this.set(a);
  }

  get truncated(): number {
    return this.#truncated;
  }

  get highestSlot(): number {
    return this.#highestSlot;
  }

  get size(): number {
    return this.#accepted.size;
  }

  get(slot: number): PaxosAcceptance | undefined {
    return this.#accepted.get(slot);
  }

  set(acceptance: PaxosAcceptance): void {
    this.#accepted.set(acceptance.slot, acceptance);
    if (acceptance.slot > this.#highestSlot) this.#highestSlot = acceptance.slot;
  }

  /** Acceptances from `from` up to `to`, at most about `maxBytes`; `through` is the last slot covered. */
  page(from: number, to: number, maxBytes: number): { accepted: PaxosAcceptance[]; through: number } {
    const end = Math.min(to, this.#highestSlot);
    const accepted: PaxosAcceptance[] = [];
    let bytes = 0;
    for (let slot = from; slot <= end; slot++) {
      const a = this.#accepted.get(slot);
      if (a === undefined) continue;
      bytes += valueBytes(a.value);
      if (accepted.length > 0 && bytes > maxBytes) return { accepted, through: slot - 1 };
      accepted.push(a);
    }
    return { accepted, through: Math.max(to, from - 1) };
  }

  truncate(through: number): void {
    if (through <= this.#truncated) return;
    for (const slot of this.#accepted.keys()) if (slot <= through) this.#accepted.delete(slot);
    this.#truncated = through;
    if (this.#highestSlot < through) this.#highestSlot = through;
  }
}

export interface AcceptorContext {
  readonly id: NodeId;
  readonly topology: PaxosTopology;
  readonly options: PaxosOptions;
  /** Shared by reference with the host. */
  readonly log: AcceptorLog;
  readonly out: AcceptorOutbox;
  promised: PaxosBallot;
  /** The latest durable checkpoint each learner reported. */
  checkpoints: Readonly<Record<NodeId, number>>;
}

/** The acceptor's rules as named guards: the machine registers them, and a broken variant replaces one with `provide()`. */
export interface AcceptorGuardParams {
  acceptsBallot: { readonly promised: PaxosBallot; readonly ballot: PaxosBallot };
  reportsVotes: { readonly d: AcceptorContext };
}

/** Phase 2b: vote only at a ballot no lower than the promise (Paxos.tla's `maxBal[a] \leq b`). */
export function acceptsBallot({ promised, ballot }: AcceptorGuardParams["acceptsBallot"]): boolean {
  return compareBallots(ballot, promised) >= 0;
}

/**
 * Phase 1b: a promise carries the acceptor's votes above its truncation point, so that a new
 * leader proposes again any value that may have been chosen. The real acceptor always does;
 * the rule is named so that a broken variant can drop it.
 */
export function reportsVotes(_: AcceptorGuardParams["reportsVotes"]): boolean {
  return true;
}

/** Evaluates one of the acceptor's rules as the machine implements it, `provide()` included. */
function check<G extends keyof AcceptorGuardParams>(guard: G, params: AcceptorGuardParams[G]): boolean {
  return checkRule(guard, params);
}

function raisePromise(d: AcceptorContext, ballot: PaxosBallot): void {
  if (compareBallots(ballot, d.promised) <= 0) return;
  d.promised = ballot;
  d.out.promised = ballot;
  d.out.observe({ kind: "promise", acceptor: d.id, ballot });
}

function nack(d: AcceptorContext, to: NodeId, ballot: PaxosBallot): void {
  d.out.send(to, "paxos.nack", { ballot, promised: d.promised, truncated: d.log.truncated }, true);
}

/** Phase 1b: promise never to accept below `ballot`, and report what was accepted. */
export function handlePrepare(d: AcceptorContext, from: NodeId, m: PaxosPrepare): void {
  if (compareBallots(m.ballot, d.promised) < 0) {
    nack(d, from, m.ballot);
    return;
  }
  raisePromise(d, m.ballot);
  if (!check("reportsVotes", { d })) {
    d.out.send(from, "paxos.p1b", { ballot: m.ballot, truncated: d.log.truncated, accepted: [], more: false }, true);
    return;
  }
  const from_ = Math.max(m.fromSlot, d.log.truncated + 1);
  const page = d.log.page(from_, Number.MAX_SAFE_INTEGER, d.options.maxMessageBytes);
  const more = page.through < d.log.highestSlot;
  d.out.send(from, "paxos.p1b", { ballot: m.ballot, truncated: d.log.truncated, accepted: page.accepted, more }, true);
}

/**
 * Phase 2b: accept if the ballot is at least the promise, raising the promise to it
 * (Paxos.tla, not PMMC's equality test: an acceptor that missed the p1a still votes).
 * A retransmitted p2a changes nothing and is answered again.
 */
export function handleAccept(d: AcceptorContext, from: NodeId, m: PaxosAccept): void {
  if (!check("acceptsBallot", { promised: d.promised, ballot: m.ballot })) {
    nack(d, from, m.ballot);
    return;
  }
  raisePromise(d, m.ballot);
  const slots: number[] = [];
  for (const { slot, value } of m.proposals) {
    // Truncated slots are decided and checkpointed: nothing to vote on any more.
    if (slot <= d.log.truncated || slot < 1) continue;
    const existing = d.log.get(slot);
    if (existing !== undefined && compareBallots(existing.ballot, m.ballot) === 0) {
      // A ballot's proposer sends one value per slot (its rounds are durable, never reused): a
      // second value would mean two values could be chosen at one ballot.
      invariant(
        sameValue(existing.value, value),
        `acceptor ${d.id} holds a vote for slot ${slot} at ${showBallot(m.ballot)} and was asked to record another value at that ballot`,
      );
    } else {
      const acceptance: PaxosAcceptance = { slot, ballot: m.ballot, value };
      d.log.set(acceptance);
      d.out.accepted.push(acceptance);
      d.out.observe({ kind: "accept", acceptor: d.id, slot, ballot: m.ballot, value });
    }
    slots.push(slot);
  }
  // To the ballot's proposer, which counts it for its commander, and straight to every learner,
  // which decides on a phase-2 quorum of them without waiting for the proposer. Nobody else
  // acts on a vote: a broadcast would be decoded by every acceptor and passive proposer too.
  // Each copy waits, like every reply, until this vote is durable.
  const vote = { ballot: m.ballot, slots, truncated: d.log.truncated };
  d.out.send(from, "paxos.p2b", vote, true);
  for (const learner of d.topology.learners) d.out.send(learner, "paxos.p2b", vote, true);
}

/**
 * The active proposer's heartbeat, answered so that it can check it still has a phase-2
 * quorum (its quorum check, Raft's CheckQuorum) and confirm its reads: `paxos.alive` with the
 * heartbeat's round while we have promised nothing above its ballot, a nack once we promised a
 * higher one. Nothing changes here and nothing is written; the answer goes to the proposer
 * alone, after what was queued before it is durable, as every reply does.
 */
export function answerHeartbeat(d: AcceptorContext, from: NodeId, m: PaxosHeartbeat): void {
  if (compareBallots(m.ballot, d.promised) < 0) {
    nack(d, from, m.ballot);
    return;
  }
  d.out.send(from, "paxos.alive", { ballot: m.ballot, round: m.round, truncated: d.log.truncated }, true);
}

/** A learner's catch-up: repeat the votes in a range. Replies wait for durability like votes. */
export function handleRepeat(d: AcceptorContext, from: NodeId, m: PaxosRepeat): void {
  const start = Math.max(m.from, d.log.truncated + 1);
  const page = d.log.page(start, m.to, d.options.maxMessageBytes);
  d.out.send(
    from,
    "paxos.repeated",
    { truncated: d.log.truncated, accepted: page.accepted, through: Math.max(page.through, d.log.truncated) },
    true,
  );
}

/**
 * Truncation: a slot may be dropped once `truncationQuorum` learners hold a durable checkpoint
 * at or above it. It is then decided, never proposed again, and a learner that needs it
 * restores a checkpoint from another learner instead.
 */
export function handleLearned(d: AcceptorContext, from: NodeId, m: PaxosLearned): void {
  if (!d.topology.learners.includes(from) || (d.checkpoints[from] ?? 0) >= m.checkpoint) return;
  d.checkpoints = { ...d.checkpoints, [from]: m.checkpoint };
  const reported = d.topology.learners.map((l) => d.checkpoints[l] ?? 0).sort((a, b) => b - a);
  const through = reported[d.topology.truncationQuorum - 1] ?? 0;
  if (through <= d.log.truncated) return;
  d.log.truncate(through);
  d.out.truncateThrough = through;
  d.out.observe({ kind: "truncate", acceptor: d.id, through });
}

export function stepAcceptor(d: AcceptorContext, from: NodeId, message: PaxosMessage): void {
  switch (message.type) {
    case "paxos.p1a":
      if (d.topology.proposers.includes(from)) handlePrepare(d, from, message.body);
      return;
    case "paxos.p2a":
      if (d.topology.proposers.includes(from)) handleAccept(d, from, message.body);
      return;
    case "paxos.heartbeat":
      if (d.topology.proposers.includes(from)) answerHeartbeat(d, from, message.body);
      return;
    case "paxos.repeat":
      if (d.topology.learners.includes(from)) handleRepeat(d, from, message.body);
      return;
    case "paxos.learned":
      handleLearned(d, from, message.body);
      return;
    default:
      // Messages for other roles reach every role of the group; not ours.
      return;
  }
}
