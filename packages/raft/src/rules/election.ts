/**
 * Elections (§5.2, §5.4.1) with PreVote (thesis §9.6).
 */
import type { NodeId } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { RequestVote, VoteResponse } from "../messages.js";
import type { Role } from "../outbox.js";
import { check, type RaftContext, type RoleChange, resetElectionTimer, send, setTerm } from "./context.js";
import { becomeFollower } from "./follower.js";
import { isVoter, quorum } from "./quorum.js";

export function campaignPreVote(d: RaftContext): RoleChange | null {
  // Only a voter's election timer fires (tickElection); learners never campaign.
  invariant(isVoter(d, d.id), "only a voter campaigns");
  invariant(!d.campaignTransfer, "a campaign asked for by TimeoutNow skips the pre-vote");
  d.leader = null;
  d.votes = { [d.id]: true };
  resetElectionTimer(d);
  d.out.observe({ kind: "campaign", term: d.term + 1, preVote: true });
  if (quorum(d) === 1) return { type: "become.candidate" };
  send(d, null, "raft.vote", voteRequest(d, d.term + 1, true), true);
  return null;
}

export function campaign(d: RaftContext): RoleChange | null {
  invariant(isVoter(d, d.id), "only a voter campaigns");
  const previousTerm = d.term;
  setTerm(d, d.term + 1);
  invariant(d.term === previousTerm + 1, "a campaign starts the next term");
  invariant(d.vote === null, "a new term starts with no vote cast");
  d.vote = d.id;
  d.out.hardStateChanged = true;
  d.leader = null;
  d.votes = { [d.id]: true };
  resetElectionTimer(d);
  d.out.observe({ kind: "campaign", term: d.term, preVote: false });
  const transfer = d.campaignTransfer;
  d.campaignTransfer = false;
  if (quorum(d) === 1) return { type: "become.leader" };
  send(d, null, "raft.vote", { ...voteRequest(d, d.term, false), ...(transfer ? { transfer } : {}) }, true);
  return null;
}

export function voteRequest(d: RaftContext, term: number, preVote: boolean): RequestVote {
  return { term, lastLogIndex: d.log.lastIndex, lastLogTerm: d.log.lastTerm, preVote };
}

export function handleVoteRequest(d: RaftContext, from: NodeId, m: RequestVote): void {
  // stepTerm dropped older terms and adopted later ones, but a pre-vote's, which it leaves as is.
  invariant(m.term >= d.term, "a vote request of an older term was dropped");
  invariant(m.preVote || m.term === d.term, "a real vote request is judged in its own term");
  // Raft §5.2/§5.4.1 plus pre-vote: a real vote goes to at most one candidate per term,
  // and only to one whose log is at least as up to date as ours.
  const grant =
    check("canGrantVote", { d, from, request: m }) &&
    check("logUpToDate", { d, lastLogTerm: m.lastLogTerm, lastLogIndex: m.lastLogIndex });
  if (grant) {
    if (!m.preVote) {
      d.vote = from;
      d.out.hardStateChanged = true;
      resetElectionTimer(d);
    }
    send(d, from, "raft.vote.resp", { term: m.term, granted: true, preVote: m.preVote }, true);
  } else {
    send(d, from, "raft.vote.resp", { term: d.term, granted: false, preVote: m.preVote }, true);
  }
}

export function handleVoteResponse(d: RaftContext, role: Role, from: NodeId, m: VoteResponse): RoleChange | null {
  invariant(d.leader === null, "a campaigning member knows no leader");
  invariant(d.votes[d.id] === true, "a campaigning member votes for itself");
  const expectedTerm = role === "pre-candidate" ? d.term + 1 : d.term;
  const expectedPreVote = role === "pre-candidate";
  if (m.preVote !== expectedPreVote || (m.granted && m.term !== expectedTerm)) return null;
  if (!isVoter(d, from) || d.votes[from] !== undefined) return null;
  d.votes = { ...d.votes, [from]: m.granted };
  d.out.observe({ kind: "vote", from, granted: m.granted, preVote: m.preVote, term: expectedTerm });
  const granted = Object.values(d.votes).filter((v) => v).length;
  const rejected = Object.values(d.votes).length - granted;
  invariant(granted + rejected <= d.log.config.voters.length, "votes are counted once per voter");
  if (granted >= quorum(d)) {
    d.out.observe({ kind: "campaign-end", term: expectedTerm, preVote: expectedPreVote, outcome: "won" });
    return { type: role === "pre-candidate" ? "become.candidate" : "become.leader" };
  }
  if (rejected >= quorum(d)) {
    d.out.observe({ kind: "campaign-end", term: expectedTerm, preVote: expectedPreVote, outcome: "lost" });
    becomeFollower(d, d.term, null);
    return { type: "become.follower" };
  }
  return null;
}
