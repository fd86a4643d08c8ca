/**
 * The paper's rules as named predicates. The machine registers each as an XState guard
 * (`setup({ guards })`) and the rules ask for them by name through `check` (rules/context.ts), so replacing one
 * with `raftMachine.provide({ guards })` changes that rule and nothing else: the simulator's
 * broken variants are built that way.
 *
 * XState evaluates a guard against the context as it was before the running action; the rules
 * change a draft of it, so every guard takes the draft (`d`) among its params.
 */
import type { NodeId } from "@quorate/core";
import type { RequestVote } from "../messages.js";
import type { RaftContext } from "./context.js";
import { quorumAcked } from "./quorum.js";

export interface RaftGuardParams {
  logUpToDate: { readonly d: RaftContext; readonly lastLogTerm: number; readonly lastLogIndex: number };
  canGrantVote: { readonly d: RaftContext; readonly from: NodeId; readonly request: RequestVote };
  inLeaderLease: { readonly d: RaftContext; readonly request: RequestVote };
  commitsOnlyCurrentTerm: { readonly d: RaftContext; readonly index: number };
  termCommitted: { readonly d: RaftContext };
  readConfirmed: { readonly d: RaftContext; readonly heartbeatRound: number };
  leaseValid: { readonly d: RaftContext };
  heartbeatRoundCurrent: { readonly d: RaftContext; readonly heartbeatRound: number };
  roundEchoedInTerm: { readonly d: RaftContext; readonly term: number };
  termDurable: { readonly d: RaftContext };
  oneChangeAtATime: { readonly d: RaftContext };
}

export type RaftGuard = keyof RaftGuardParams;

/** §5.4.1: the candidate's log ends in a later term than ours, or in the same term and no shorter. */
export function logUpToDate({ d, lastLogTerm, lastLogIndex }: RaftGuardParams["logUpToDate"]): boolean {
  return d.log.isUpToDate(lastLogTerm, lastLogIndex);
}

/**
 * §5.2: at most one vote per term, and none while a leader of this term is known; a pre-vote
 * (thesis §9.6) promises nothing, so it may be granted for any later term.
 */
export function canGrantVote({ d, from, request }: RaftGuardParams["canGrantVote"]): boolean {
  if (d.vote === from) return true;
  if (d.vote === null && d.leader === null) return true;
  return request.preVote && request.term > d.term;
}

/**
 * Thesis §4.2.3 (disruptive servers): while this member heard from a live leader within the
 * minimum election timeout, a campaign of a later term is ignored, unless the leader itself
 * asked for it (a leadership transfer). With lease reads, a restarted member behaves the same
 * for its first election timeout: it may have acknowledged a lease it no longer remembers.
 */
export function inLeaderLease({ d, request }: RaftGuardParams["inLeaderLease"]): boolean {
  if (!d.options.checkQuorum) return false;
  if (request.transfer === true) return false;
  if (d.leader === null && !d.restartQuiet) return false;
  return d.electionElapsedTicks < d.options.electionTicks;
}

/** §5.4.2 (Figure 8): a leader commits by counting replicas only entries of its own term. */
export function commitsOnlyCurrentTerm({ d, index }: RaftGuardParams["commitsOnlyCurrentTerm"]): boolean {
  return d.log.term(index) === d.term;
}

/**
 * Thesis §6.4, step 1: a leader's commit index covers every earlier leader's only once it has
 * committed an entry of its own term; reads wait until then.
 */
export function termCommitted({ d }: RaftGuardParams["termCommitted"]): boolean {
  return d.log.term(d.commitIndex) === d.term;
}

/**
 * Thesis §6.4, step 3: a quorum of voters (this leader included) acknowledged heartbeat round
 * `heartbeatRound` or a later one, all sent after the read arrived: no other leader had been
 * elected when the read did.
 */
export function readConfirmed({ d, heartbeatRound }: RaftGuardParams["readConfirmed"]): boolean {
  return quorumAcked(d, heartbeatRound);
}

/**
 * Thesis §6.4.1: the read lease a quorum's acknowledgement granted still runs, and no
 * leadership transfer may have started another leader's election.
 */
export function leaseValid({ d }: RaftGuardParams["leaseValid"]): boolean {
  if (!d.options.leaseReads) return false;
  if (d.transferee !== null) return false;
  if (d.timeoutNowSent) return false;
  return d.leaderTicks < d.leaseExpiresAtTick;
}

/**
 * A response of this leader's term echoes a heartbeat round this leader sent: a higher round
 * was never sent, and believing it could confirm reads no quorum confirmed.
 */
export function heartbeatRoundCurrent({ d, heartbeatRound }: RaftGuardParams["heartbeatRoundCurrent"]): boolean {
  return heartbeatRound <= d.heartbeatRound;
}

/**
 * A reply echoes the heartbeat round of an AppendEntries only when it answers one of its own
 * term: a round of an older term means nothing to a leader of ours (restarted, its counter reset).
 */
export function roundEchoedInTerm({ d, term }: RaftGuardParams["roundEchoedInTerm"]): boolean {
  return term === d.term;
}

/**
 * Whether this member's current term (and the vote cast in it) is on disk. Every Raft message
 * carries the sender's term, so none may leave before: a member that crashed first would come
 * back in the old term, could use the same term again, and write a second entry at an (index,
 * term) a follower already holds from the first (the one-voter divergence). Whatever the quorum size.
 */
export function termDurable({ d }: RaftGuardParams["termDurable"]): boolean {
  return d.durableTerm === d.term;
}

/**
 * Thesis §4.1: one membership change at a time. The previous one has committed, and so has an
 * entry of this leader's term: otherwise a change it appends could overlap one of an earlier
 * leader that it never saw committed, and two disjoint majorities could elect two leaders
 * (Ongaro, raft-dev 2015).
 */
export function oneChangeAtATime({ d }: RaftGuardParams["oneChangeAtATime"]): boolean {
  if (d.log.term(d.commitIndex) !== d.term) return false;
  return d.log.config.index <= d.commitIndex;
}
