/**
 * Message dispatch (etcd's Step): the term rules in one place (`stepTerm`), then one step
 * function per role, each bound to its state's `message` action. A role changes only by the
 * event a step function returns, which moves the machine to that state.
 */
import type { NodeId } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import { check, type RaftContext, type RaftMessage, type RoleChange, send } from "./context.js";
import { handleVoteRequest, handleVoteResponse } from "./election.js";
import { becomeFollower, handleAppend, rejection } from "./follower.js";
import { handleAppendResponse } from "./leader.js";
import { isVoter } from "./quorum.js";

/**
 * What the term rules (Figure 2, all servers; thesis §9.6 and §4.2.3) made of a message: `stale`
 * was answered or dropped and goes no further; `later` carries a term this member must adopt as
 * a follower first; `current` goes to the role's own rules.
 */
export type TermVerdict = "stale" | "later" | "current";

export function stepTerm(d: RaftContext, from: NodeId, msg: RaftMessage): TermVerdict {
  const term = msg.body.term;
  if (term > d.term) {
    // A live leader exists: a higher-term campaign is a disruptive server, not news (§9.6 / §4.2.3).
    if (msg.type === "raft.vote" && check("inLeaderLease", { d, request: msg.body })) return "stale";
    // A pre-vote request, and a granted pre-vote, promise nothing: they leave the term as it is.
    if (msg.type === "raft.vote" && msg.body.preVote) return "current";
    if (msg.type === "raft.vote.resp" && msg.body.preVote && msg.body.granted) return "current";
    return "later";
  }
  if (term < d.term) {
    if (msg.type === "raft.append") {
      // Tell the stale leader our term so it steps down (needed with CheckQuorum and PreVote).
      // The reply answers no heartbeat round of our term: it must not echo the old message's
      // round, which a leader of our term (restarted, its counter reset) could take for its own.
      const echoed = check("roundEchoedInTerm", { d, term });
      send(d, from, "raft.append.resp", { ...rejection(d, msg.body, 0, 0), seq: echoed ? msg.body.seq : 0 }, true);
    } else if (msg.type === "raft.vote" && msg.body.preVote) {
      send(d, from, "raft.vote.resp", { term: d.term, granted: false, preVote: true }, true);
    }
    return "stale";
  }
  return "current";
}

/** Adopts the later term of `msg` as a follower; only an AppendEntries names the leader. */
function adoptTerm(d: RaftContext, from: NodeId, msg: RaftMessage): void {
  invariant(msg.body.term > d.term, "only a later term is adopted");
  becomeFollower(d, msg.body.term, msg.type === "raft.append" ? from : null);
}

/** The follower's rules for a message of its term (after `stepTerm`). */
function followerRules(d: RaftContext, from: NodeId, msg: RaftMessage): RoleChange | null {
  invariant(d.leader !== d.id, "a follower does not lead");
  switch (msg.type) {
    case "raft.vote":
      handleVoteRequest(d, from, msg.body);
      return null;
    case "raft.append":
      handleAppend(d, from, msg.body);
      return null;
    case "raft.timeout-now":
      // The leader asks us to campaign at once (leadership transfer); only a voter that knows it as leader obeys.
      if (d.leader === from && isVoter(d, d.id)) {
        d.campaignTransfer = true;
        return { type: "become.candidate" };
      }
      return null;
    case "raft.vote.resp":
    case "raft.append.resp":
      return null;
  }
}

export function stepFollower(d: RaftContext, from: NodeId, msg: RaftMessage): RoleChange | null {
  const verdict = stepTerm(d, from, msg);
  if (verdict === "stale") return null;
  if (verdict === "later") adoptTerm(d, from, msg);
  return followerRules(d, from, msg);
}

/** A member that is not a follower took a later term: it continues as a follower. */
function steppedDown(d: RaftContext, from: NodeId, msg: RaftMessage): RoleChange {
  adoptTerm(d, from, msg);
  return followerRules(d, from, msg) ?? { type: "become.follower" };
}

function stepCampaigning(
  d: RaftContext,
  role: "pre-candidate" | "candidate",
  from: NodeId,
  msg: RaftMessage,
): RoleChange | null {
  const preVote = role === "pre-candidate";
  const verdict = stepTerm(d, from, msg);
  if (verdict === "stale") return null;
  if (verdict === "later") {
    d.out.observe({ kind: "campaign-end", term: d.term, preVote, outcome: "superseded" });
    return steppedDown(d, from, msg);
  }
  switch (msg.type) {
    case "raft.vote":
      handleVoteRequest(d, from, msg.body);
      return null;
    case "raft.vote.resp":
      return handleVoteResponse(d, role, from, msg.body);
    case "raft.append":
      // A leader of this term exists: the campaign is lost.
      d.out.observe({ kind: "campaign-end", term: d.term, preVote, outcome: "lost" });
      becomeFollower(d, d.term, from);
      handleAppend(d, from, msg.body);
      return { type: "become.follower" };
    case "raft.append.resp":
    case "raft.timeout-now":
      return null;
  }
}

export function stepPreCandidate(d: RaftContext, from: NodeId, msg: RaftMessage): RoleChange | null {
  invariant(d.leader === null, "a pre-candidate knows no leader");
  return stepCampaigning(d, "pre-candidate", from, msg);
}

export function stepCandidate(d: RaftContext, from: NodeId, msg: RaftMessage): RoleChange | null {
  invariant(d.leader === null, "a candidate knows no leader");
  return stepCampaigning(d, "candidate", from, msg);
}

export function stepLeader(d: RaftContext, from: NodeId, msg: RaftMessage): RoleChange | null {
  invariant(d.leader === d.id, "a leader knows itself as the leader");
  const verdict = stepTerm(d, from, msg);
  if (verdict === "stale") return null;
  if (verdict === "later") {
    d.out.observe({ kind: "step-down", term: d.term, reason: "higher-term" });
    return steppedDown(d, from, msg);
  }
  switch (msg.type) {
    case "raft.vote":
      handleVoteRequest(d, from, msg.body);
      return null;
    case "raft.append":
      // No correct member leads in our term: refused and reported (the simulator counts any
      // refusal as a violation), not believed, so a forged frame cannot stop this leader.
      d.out.observe({ kind: "refused", from, reason: `an AppendEntries of term ${d.term}, which this member leads` });
      return null;
    case "raft.append.resp":
      return handleAppendResponse(d, from, msg.body);
    case "raft.vote.resp":
    case "raft.timeout-now":
      return null;
  }
}
