/**
 * Linearizable reads without writing the log: ReadIndex (thesis §6.4) and leases (§6.4.1).
 */
import { invariant } from "@quorate/core/internal";
import { broadcastHeartbeat } from "./append.js";
import { check, type PendingRead, type RaftContext } from "./context.js";
import { quorumAcked } from "./quorum.js";

export function failPendingReads(d: RaftContext): void {
  // Called as leadership ends: the answers name the member to retry with, never this one.
  invariant(d.leader !== d.id, "pending reads fail once this member no longer leads");
  for (const read of d.pendingReads) d.out.reads.push({ id: read.id, ok: false, leader: d.leader });
  d.pendingReads = [];
}

export function rejectRead(d: RaftContext, id: number): void {
  invariant(d.leader !== d.id, "a leader serves its reads");
  d.out.reads.push({ id, ok: false, leader: d.leader });
}

/** ReadIndex (thesis §6.4): remember the commit index, confirm leadership with a heartbeat quorum. */
export function startRead(d: RaftContext, id: number): void {
  invariant(d.leader === d.id, "only the leader serves reads");
  invariant(d.commitIndex <= d.log.lastIndex, "the read index is in the leader's log");
  const committedInTerm = check("termCommitted", { d });
  // A round not yet sent is acknowledged by this leader alone: enough only when it is the quorum.
  const confirmed = check("leaseValid", { d }) || check("readConfirmed", { d, heartbeatRound: d.heartbeatRound + 1 });
  if (committedInTerm && confirmed) {
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
  invariant(d.leader === d.id, "only the leader serves reads");
  if (!d.pendingReads.some((r) => r.index === null)) return;
  if (check("readConfirmed", { d, heartbeatRound: d.heartbeatRound + 1 })) {
    for (const r of d.pendingReads) d.out.reads.push({ id: r.id, ok: true, index: r.index ?? d.commitIndex });
    d.pendingReads = [];
    return;
  }
  const heartbeatRound = d.heartbeatRound + 1;
  invariant(d.commitIndex > 0, "a leader that committed an entry of its term has a commit index");
  d.pendingReads = d.pendingReads.map((r) =>
    r.index === null ? { id: r.id, index: d.commitIndex, heartbeatRound } : r,
  );
  broadcastHeartbeat(d);
}

export function confirmReads(d: RaftContext): void {
  if (d.pendingReads.length === 0) return;
  invariant(d.leader === d.id, "only the leader confirms reads");
  const remaining: PendingRead[] = [];
  for (const read of d.pendingReads) {
    if (read.index === null) {
      remaining.push(read);
      continue;
    }
    // Its round went out when the read got its index: a later acknowledgement may confirm it.
    invariant(read.heartbeatRound <= d.heartbeatRound, "a read waits for a heartbeat round already sent");
    if (check("readConfirmed", { d, heartbeatRound: read.heartbeatRound }))
      d.out.reads.push({ id: read.id, ok: true, index: read.index });
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
  if (round === null) return;
  invariant(d.options.leaseReads, "a lease round runs only with lease reads");
  invariant(round.heartbeatRound <= d.heartbeatRound, "a lease round was sent");
  if (d.timeoutNowSent) return;
  if (!quorumAcked(d, round.heartbeatRound)) return;
  const { electionTicks, maxClockDriftPercent } = d.options;
  const leaseTicks = Math.floor(((electionTicks - 1) * 100) / (100 + maxClockDriftPercent)) - 1;
  d.leaseExpiresAtTick = Math.max(d.leaseExpiresAtTick, round.tick + leaseTicks);
  d.leaseRound = null;
}
