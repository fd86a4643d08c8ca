/**
 * Message dispatch (etcd's Step): the term rules first, then the rule of the member's role.
 */
import type { NodeId } from "@quorate/core";
import type { Role } from "../outbox.js";
import { type RaftDraft, type RaftMessage, type RoleChange, send } from "./context.js";
import { handleVoteRequest, handleVoteResponse } from "./election.js";
import { becomeFollower, handleAppend, rejection } from "./follower.js";
import { handleAppendResponse } from "./leader.js";
import { isVoter } from "./quorum.js";

export function step(d: RaftDraft, role: Role, from: NodeId, msg: RaftMessage): RoleChange | null {
  let change: RoleChange | null = null;
  const term = msg.body.term;
  if (term > d.term) {
    // A live leader exists: a higher-term campaign is a disruptive server, not news (§9.6 / §4.2.3).
    if (msg.type === "raft.vote" && d.check("inLeaderLease", { d, request: msg.body })) return null;
    const isPreVote = (msg.type === "raft.vote" || msg.type === "raft.vote.resp") && msg.body.preVote;
    const preVoteGranted = msg.type === "raft.vote.resp" && msg.body.preVote && msg.body.granted;
    if (!(isPreVote && (msg.type === "raft.vote" || preVoteGranted))) {
      if (role !== "follower") {
        d.out.observe(
          role === "leader"
            ? { kind: "step-down", term: d.term, reason: "higher-term" }
            : { kind: "campaign-end", term: d.term, preVote: role === "pre-candidate", outcome: "superseded" },
        );
      }
      becomeFollower(d, term, msg.type === "raft.append" ? from : null);
      if (role !== "follower") change = { type: "become.follower" };
      role = "follower";
    }
  } else if (term < d.term) {
    if (msg.type === "raft.append") {
      // Tell the stale leader our term so it steps down (needed with CheckQuorum and PreVote).
      // The reply answers no heartbeat round of our term: it must not echo the old message's
      // round, which a leader of our term (restarted, its counter reset) could take for its own.
      const echoed = d.check("roundEchoedInTerm", { d, term: msg.body.term });
      send(d, from, "raft.append.resp", { ...rejection(d, msg.body, 0, 0), seq: echoed ? msg.body.seq : 0 }, true);
    } else if (msg.type === "raft.vote" && msg.body.preVote) {
      send(d, from, "raft.vote.resp", { term: d.term, granted: false, preVote: true }, true);
    }
    return null;
  }

  switch (msg.type) {
    case "raft.vote":
      handleVoteRequest(d, from, msg.body);
      return change;
    case "raft.vote.resp":
      if (role === "pre-candidate" || role === "candidate")
        return handleVoteResponse(d, role, from, msg.body) ?? change;
      return change;
    case "raft.append":
      if (role === "leader") {
        // No correct member leads in our term: refused and reported (the simulator counts any
        // refusal as a violation), not believed, so a forged frame cannot stop this leader.
        d.out.observe({ kind: "refused", from, reason: `an AppendEntries of term ${d.term}, which this member leads` });
        return change;
      }
      if (role !== "follower") {
        d.out.observe({ kind: "campaign-end", term: d.term, preVote: role === "pre-candidate", outcome: "lost" });
        becomeFollower(d, d.term, from);
        change = { type: "become.follower" };
      }
      handleAppend(d, from, msg.body);
      return change;
    case "raft.append.resp":
      if (role === "leader") return handleAppendResponse(d, from, msg.body) ?? change;
      return change;
    case "raft.timeout-now":
      // The leader asks us to campaign at once (leadership transfer); only a voter that knows it as leader obeys.
      if (role === "follower" && d.leader === from && isVoter(d, d.id)) {
        d.campaignTransfer = true;
        return { type: "become.candidate" };
      }
      return change;
  }
}
