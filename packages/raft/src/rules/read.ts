/**
 * Linearizable reads without writing the log: ReadIndex (thesis §6.4) and leases (§6.4.1).
 */
import { broadcastHeartbeat } from "./append.js";
import type { PendingRead, RaftContext } from "./context.js";
import { quorum, quorumAcked, selfVote } from "./quorum.js";

export function failPendingReads(d: RaftContext): void {
  for (const read of d.pendingReads) d.out.reads.push({ id: read.id, ok: false, leader: d.leader });
  d.pendingReads = [];
}

export function rejectRead(d: RaftContext, id: number): void {
  d.out.reads.push({ id, ok: false, leader: d.leader });
}

/** ReadIndex (thesis §6.4): remember the commit index, confirm leadership with a heartbeat quorum. */
export function startRead(d: RaftContext, id: number): void {
  const committedInTerm = d.log.term(d.commitIndex) === d.term;
  const leased =
    d.options.leaseReads && d.transferee === null && !d.timeoutNowSent && d.leaderTicks < d.leaseExpiresAtTick;
  if (committedInTerm && (leased || (quorum(d) === 1 && selfVote(d) === 1))) {
    d.out.reads.push({ id, ok: true, index: d.commitIndex });
    return;
  }
  if (!committedInTerm) {
    d.pendingReads = [...d.pendingReads, { id, index: null, heartbeatRound: 0 }];
    return;
  }
  d.pendingReads = [...d.pendingReads, { id, index: d.commitIndex, heartbeatRound: d.heartbeatRound + 1 }];
  broadcastHeartbeat(d);
}

export function startWaitingReads(d: RaftContext): void {
  if (!d.pendingReads.some((r) => r.index === null)) return;
  if (quorum(d) === 1 && selfVote(d) === 1) {
    for (const r of d.pendingReads) d.out.reads.push({ id: r.id, ok: true, index: r.index ?? d.commitIndex });
    d.pendingReads = [];
    return;
  }
  const heartbeatRound = d.heartbeatRound + 1;
  d.pendingReads = d.pendingReads.map((r) =>
    r.index === null ? { id: r.id, index: d.commitIndex, heartbeatRound } : r,
  );
  broadcastHeartbeat(d);
}

export function confirmReads(d: RaftContext): void {
  if (d.pendingReads.length === 0) return;
  const remaining: PendingRead[] = [];
  for (const read of d.pendingReads) {
    if (read.index === null) {
      remaining.push(read);
      continue;
    }
    if (quorumAcked(d, read.heartbeatRound)) d.out.reads.push({ id: read.id, ok: true, index: read.index });
    else remaining.push(read);
  }
  d.pendingReads = remaining;
}

/**
 * A quorum acknowledged a heartbeat sent at `tick`: none of them grants a vote until an election
 * timeout after receiving it (CheckQuorum), so no other leader exists before `tick` plus that
 * timeout, shortened for clock drift and for the up to one tick each side may be off.
 */
export function extendLease(d: RaftContext): void {
  const round = d.leaseRound;
  if (round === null || d.timeoutNowSent || !quorumAcked(d, round.heartbeatRound)) return;
  const { electionTicks, maxClockDriftPercent } = d.options;
  const leaseTicks = Math.floor(((electionTicks - 1) * 100) / (100 + maxClockDriftPercent)) - 1;
  d.leaseExpiresAtTick = Math.max(d.leaseExpiresAtTick, round.tick + leaseTicks);
  d.leaseRound = null;
}
