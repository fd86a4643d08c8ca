/**
 * The leader: its no-op, heartbeats, CheckQuorum, acknowledgements, commit (Figure 8) and proposals.
 */
import { EntryKind, type NodeId } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { AppendResponse } from "../messages.js";
import { appendAndBroadcast, broadcastHeartbeat, sendAppend, sendTimeoutNow } from "./append.js";
import { check, heartbeatsPerElection, type RaftContext, type RoleChange, setCommitIndex } from "./context.js";
import { becomeFollower, recordPersisted } from "./follower.js";
import {
  acknowledged,
  canSend,
  heartbeatPassed,
  type Progress,
  probing,
  refusalIsCurrent,
  setProgress,
  trackReplicas,
} from "./progress.js";
import { peerVoters, quorum, quorumMatch, replicas, selfVote } from "./quorum.js";
import { confirmReads, extendLease, startWaitingReads } from "./read.js";
import { stepDownIfRemoved } from "./transfer.js";

/** Election timeouts a silent snapshot transfer may last before the leader starts it again. */
export const SNAPSHOT_STALL_ELECTIONS = 10;

export function becomeLeader(d: RaftContext): void {
  // Won an election of this term (§5.2): its own vote went to itself, and no one led the term yet.
  invariant(d.votes[d.id] === true, "a leader voted for itself in its term");
  invariant(d.leader === null, "no leader was known in the term this member won");
  d.leader = d.id;
  d.votes = {};
  d.transferee = null;
  d.transferElapsedTicks = 0;
  d.heartbeatElapsedTicks = 0;
  d.electionElapsedTicks = 0;
  d.recentActive = {};
  d.ackedHeartbeatRound = {};
  d.pendingReads = [];
  d.leaderTicks = 0;
  d.leaseRound = null;
  d.leaseExpiresAtTick = 0;
  d.timeoutNowSent = false;
  d.progress = {};
  trackReplicas(d);
  // §5.4.2 / §8: a no-op of the new term lets earlier entries commit, and lets ReadIndex start.
  appendAndBroadcast(d, [{ term: d.term, kind: EntryKind.Noop, data: new Uint8Array(0) }]);
}

export function tickLeader(d: RaftContext): RoleChange | null {
  invariant(d.leader === d.id, "only the leader ticks as leader");
  invariant(d.transferee !== d.id, "a leader does not transfer leadership to itself");
  d.electionElapsedTicks++;
  d.heartbeatElapsedTicks++;
  d.leaderTicks++;
  if (d.transferee !== null && ++d.transferElapsedTicks >= d.options.electionTicks) {
    // The target did not take over within an election timeout: resume as leader (etcd does the same).
    d.out.observe({ kind: "transfer", to: d.transferee, status: "aborted" });
    d.transferee = null;
  }
  if (d.electionElapsedTicks >= d.options.electionTicks) {
    d.electionElapsedTicks = 0;
    if (d.options.checkQuorum) {
      const active = selfVote(d) + peerVoters(d).filter((p) => d.recentActive[p] === true).length;
      d.recentActive = {};
      if (active < quorum(d)) {
        d.out.observe({ kind: "step-down", term: d.term, reason: "check-quorum" });
        becomeFollower(d, d.term, null);
        return { type: "become.follower" };
      }
    }
  }
  if (d.heartbeatElapsedTicks >= d.options.heartbeatTicks) {
    d.heartbeatElapsedTicks = 0;
    broadcastHeartbeat(d);
    if (d.options.leaseReads && d.leaseRound === null && !d.timeoutNowSent) {
      d.leaseRound = { heartbeatRound: d.heartbeatRound, tick: d.leaderTicks };
    }
    const stallLimit = heartbeatsPerElection(d);
    for (const peer of replicas(d)) {
      const pr = heartbeatPassed(d.progress[peer] as Progress, stallLimit, SNAPSHOT_STALL_ELECTIONS * stallLimit);
      setProgress(d, peer, pr);
      if (pr.state === "probe") sendAppend(d, peer);
    }
  }
  return null;
}

export function handleAppendResponse(d: RaftContext, from: NodeId, m: AppendResponse): RoleChange | null {
  // stepTerm dropped older terms and stepped down for later ones.
  invariant(m.term === d.term, "an acknowledgement is handled in its own term");
  invariant(from !== d.id, "a leader gets no acknowledgement from itself");
  const pr = d.progress[from];
  if (pr === undefined) return null;
  // The response has our term (step drops older ones), so it answers a message of this leader in
  // this term: it cannot acknowledge a round not yet sent, nor an index not yet appended. A peer
  // claiming either breaks the protocol; it is refused and reported, never believed.
  const neverSent = !check("heartbeatRoundCurrent", { d, heartbeatRound: m.seq });
  const neverAppended = m.success && m.index > d.log.lastIndex;
  if (neverSent || neverAppended) {
    d.out.observe({ kind: "refused", from, reason: `answers round ${m.seq}/index ${m.index} never sent` });
    return null;
  }
  d.recentActive = d.recentActive[from] ? d.recentActive : { ...d.recentActive, [from]: true };
  if ((d.ackedHeartbeatRound[from] ?? 0) < m.seq) {
    d.ackedHeartbeatRound = { ...d.ackedHeartbeatRound, [from]: m.seq };
    confirmReads(d);
    extendLease(d);
  }
  let change: RoleChange | null = null;
  if (m.success) {
    const advanced = m.index > pr.match;
    setProgress(d, from, acknowledged(pr, m.index));
    const match = (d.progress[from] as Progress).match;
    if (advanced) {
      d.out.observe({ kind: "ack", from, index: match });
      change = maybeCommit(d);
      if (change !== null) return change;
    }
    if (d.transferee === from && match === d.log.lastIndex) {
      sendTimeoutNow(d, from);
    }
    while (canSend(d, d.progress[from] as Progress) && (d.progress[from] as Progress).next <= d.log.lastIndex) {
      sendAppend(d, from);
    }
    return null;
  }
  // A rejection matters only if it refers to what we sent this follower; others are stale.
  if (!refusalIsCurrent(pr, m.index)) return null;
  let hint = m.conflictIndex;
  if (m.conflictTerm > 0) hint = d.log.findConflictByTerm(m.conflictIndex, m.conflictTerm);
  const next = Math.max(pr.match + 1, Math.min(hint + 1, m.lastIndex + 1, m.index));
  setProgress(d, from, probing(pr, next));
  sendAppend(d, from);
  return null;
}

export function maybeCommit(d: RaftContext): RoleChange | null {
  invariant(d.leader === d.id, "only the leader commits by counting replicas");
  const n = quorumMatch(d);
  invariant(n <= d.log.lastIndex, "a quorum holds no entry the leader lacks");
  // Figure 8: only entries of the current term commit by counting replicas.
  if (n > d.commitIndex && check("commitsOnlyCurrentTerm", { d, index: n })) {
    setCommitIndex(d, n);
    d.out.observe({ kind: "commit", index: n, term: d.term });
    startWaitingReads(d);
    return stepDownIfRemoved(d);
  }
  return null;
}

/** The leader's own write counts towards the quorum once durable (§5.3, etcd counts it the same way). */
export function leaderPersisted(d: RaftContext, index: number, term: number, durableTerm: number): RoleChange | null {
  invariant(d.leader === d.id, "only the leader counts its own write towards a quorum");
  return recordPersisted(d, index, term, durableTerm) ? maybeCommit(d) : null;
}

export function propose(d: RaftContext, id: number, commands: readonly Uint8Array[]): void {
  invariant(d.leader === d.id, "only the leader takes proposals");
  invariant(commands.length > 0, "a proposal carries commands");
  if (d.transferee !== null) {
    // Proposals pause while leadership moves; the caller retries with the new leader.
    d.out.proposals.push({ id, ok: false, reason: "transferring", leader: d.transferee });
    return;
  }
  const uncommitted = d.log.lastIndex - d.commitIndex;
  if (uncommitted + commands.length > d.options.maxUncommittedEntries) {
    d.out.proposals.push({ id, ok: false, reason: "busy", leader: d.id });
    return;
  }
  const firstIndex = d.log.lastIndex + 1;
  appendAndBroadcast(
    d,
    commands.map((data) => ({ term: d.term, kind: EntryKind.Command, data })),
  );
  d.out.proposals.push({ id, ok: true, firstIndex, term: d.term });
}

export function rejectProposal(d: RaftContext, id: number): void {
  d.out.proposals.push({ id, ok: false, reason: "not-leader", leader: d.leader });
}
