import { compareBallots, type NodeId } from "@quorate/core";
import { checkRule, invariant } from "@quorate/core/internal";
import type { PaxosAlive, PaxosRead } from "./messages.js";
import type { ProposerContext } from "./proposer-protocol.js";

/**
 * How the active proposer knows it still leads: heartbeats that acceptors answer. The answers
 * feed its quorum check (it steps down when no phase-2 quorum answers for an election timeout)
 * and confirm its reads (Raft's ReadIndex, for Multi-Paxos): a read gets as its index the highest
 * slot proposed as it arrived, and is answered once a phase-2 quorum of acceptors answered a
 * heartbeat round sent after that, still at our ballot. Nothing is written for a read; the
 * proof is in the package README ("Reads").
 */

/** A learner's reads waiting for their confirmation. */
export interface PendingRead {
  readonly learner: NodeId;
  /** The learner's ids for the reads. */
  readonly reads: readonly number[];
  /** The read index: the highest slot proposed as the reads arrived. */
  readonly slot: number;
  /** The first heartbeat round sent after they arrived; answers to it or a later round confirm them. */
  readonly round: number;
}

/**
 * Reads waiting for a heartbeat round, in arrival order (so by non-decreasing round), owned by
 * the host and referenced by the machine. At most `maxPendingSlots` batches: more are dropped,
 * and their learner sends them again.
 */
export class ProposerReads {
  #pending: PendingRead[] = [];

  get size(): number {
    return this.#pending.length;
  }

  /** The round the latest read waits for, or 0 when none waits. */
  get highestRound(): number {
    return this.#pending.at(-1)?.round ?? 0;
  }

  add(read: PendingRead): void {
    invariant(read.round >= this.highestRound, `read round ${read.round} below ${this.highestRound}, queued before it`);
    this.#pending.push(read);
  }

  /** Takes the reads, oldest first, whose round `confirms` (a round no later than one confirmed). */
  takeConfirmed(confirms: (round: number) => boolean): PendingRead[] {
    let confirmed = 0;
    while (confirmed < this.#pending.length && confirms((this.#pending[confirmed] as PendingRead).round)) confirmed++;
    if (confirmed === 0) return [];
    const taken = this.#pending.slice(0, confirmed);
    this.#pending = this.#pending.slice(confirmed);
    return taken;
  }

  clear(): void {
    this.#pending = [];
  }
}

/** The periodic heartbeat: to everyone, since passive proposers and learners follow it too. */
export function heartbeat(d: ProposerContext): void {
  d.heartbeatElapsed = 0;
  d.heartbeatRound++;
  d.out.send(null, "paxos.heartbeat", { ballot: d.ballot, nextSlot: d.nextSlot, round: d.heartbeatRound }, false);
}

/**
 * A round that only reads wait for: to the acceptors alone, the only ones that answer it (a
 * broadcast would be decoded by every learner and proposer as well). It leaves the periodic
 * heartbeat's timer alone, so steady reads never keep the others from hearing the leader.
 */
function readRound(d: ProposerContext): void {
  d.heartbeatRound++;
  const body = { ballot: d.ballot, nextSlot: d.nextSlot, round: d.heartbeatRound };
  for (const acceptor of d.topology.acceptors) d.out.send(acceptor, "paxos.heartbeat", body, false);
}

/**
 * An acceptor answered at our ballot (a p2b, or a `paxos.alive` for a heartbeat): it would still
 * accept our proposals. Once a phase-2 quorum has answered, the quorum check starts over.
 */
export function hearAcceptor(d: ProposerContext, from: NodeId): void {
  invariant(d.topology.acceptors.includes(from), `proposer ${d.id} counted '${from}', not an acceptor, for its quorum`);
  if (d.acceptorsHeard[from]) return;
  const heard = { ...d.acceptorsHeard, [from]: true as const };
  if (Object.keys(heard).length < d.topology.q2) {
    d.acceptorsHeard = heard;
    return;
  }
  d.acceptorsHeard = {};
  d.ticksSinceQuorumHeard = 0;
}

/** The active proposer's rules as named guards: the machine registers them, and a broken variant replaces one with `provide()`. */
export interface ProposerGuardParams {
  readConfirmed: { readonly round: number; readonly confirmedRound: number };
}

/**
 * A read waiting for heartbeat round `round` is confirmed once a phase-2 quorum answered that
 * round or a later one (`confirmedRound`): no higher ballot had completed phase 1 when the read
 * arrived, so no write acknowledged before it is missing from its index.
 */
export function readConfirmed({ round, confirmedRound }: ProposerGuardParams["readConfirmed"]): boolean {
  return round <= confirmedRound;
}

/** Evaluates one of the proposer's rules as the machine implements it, `provide()` included. */
function check<G extends keyof ProposerGuardParams>(guard: G, params: ProposerGuardParams[G]): boolean {
  return checkRule(guard, params);
}

/**
 * The active proposer's quorum check (Raft's CheckQuorum): no phase-2 quorum heard at our
 * ballot for an election timeout. Cut off from the acceptors (a one-way partition lets our
 * heartbeats out but nothing in), we would keep the other proposers passive while nothing
 * can be chosen; stepping down stops our heartbeats, so one of them campaigns.
 */
export function phase2QuorumSilent(d: ProposerContext): boolean {
  return d.ticksSinceQuorumHeard >= d.options.leaderTimeoutTicks;
}

/**
 * The highest heartbeat round a phase-2 quorum of acceptors answered at our ballot: the q2-th
 * highest round heard per acceptor. Any phase-1 quorum shares an acceptor with that quorum, so
 * no higher ballot had completed phase 1 when that round was sent.
 */
export function confirmedRound(d: ProposerContext): number {
  const { acceptors, q2 } = d.topology;
  invariant(q2 >= 1 && q2 <= acceptors.length, `phase-2 quorum ${q2} of ${acceptors.length} acceptors`);
  const rounds = acceptors.map((a) => d.acceptorRounds[a] ?? 0).sort((x, y) => y - x);
  const round = rounds[q2 - 1] as number;
  invariant(round <= d.heartbeatRound, `round ${round} confirmed, above the ${d.heartbeatRound} sent`);
  return round;
}

/** A learner's reads: their index is the highest slot proposed now, confirmed by the next round. */
export function hearRead(d: ProposerContext, from: NodeId, m: PaxosRead): void {
  invariant(d.topology.learners.includes(from), `proposer ${d.id} took reads from '${from}', not a learner`);
  if (d.reads.size >= d.options.maxPendingSlots) return;
  const slot = d.nextSlot - 1;
  invariant(slot >= d.truncated, `read index ${slot} below the truncation point ${d.truncated}`);
  // A round already sent may have been answered before these reads arrived: only a later one counts.
  d.reads.add({ learner: from, reads: m.reads, slot, round: d.heartbeatRound + 1 });
  confirmReads(d);
}

/** An acceptor answered heartbeat `m.round`; anything but our ballot is for an earlier one of ours. */
export function hearAlive(d: ProposerContext, from: NodeId, m: PaxosAlive): void {
  if (compareBallots(m.ballot, d.ballot) !== 0 || m.round > d.heartbeatRound) return;
  hearAcceptor(d, from);
  if (m.round <= (d.acceptorRounds[from] ?? 0)) return;
  d.acceptorRounds = { ...d.acceptorRounds, [from]: m.round };
  confirmReads(d);
}

/**
 * Answers the reads a quorum confirmed, and starts a round for the others unless one is in
 * flight: reads arriving meanwhile share the next round (the periodic heartbeat replaces a
 * round whose answers were lost).
 */
export function confirmReads(d: ProposerContext): void {
  const confirmed = confirmedRound(d);
  for (const read of d.reads.takeConfirmed((round) => check("readConfirmed", { round, confirmedRound: confirmed }))) {
    invariant(read.slot < d.nextSlot, `read index ${read.slot} at or above the next slot ${d.nextSlot}`);
    d.out.send(read.learner, "paxos.read.index", { reads: [...read.reads], slot: read.slot }, false);
  }
  if (d.reads.highestRound > d.heartbeatRound && confirmed >= d.heartbeatRound) readRound(d);
}
