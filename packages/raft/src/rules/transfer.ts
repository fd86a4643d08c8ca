/**
 * Leadership transfer (thesis §3.10), and a removed leader handing over (§4.2.2).
 */
import type { NodeId } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import { sendAppend, sendTimeoutNow } from "./append.js";
import type { RaftContext, RoleChange } from "./context.js";
import { becomeFollower } from "./follower.js";
import { isVoter, mostCaughtUp, peerVoters } from "./quorum.js";

/** Starts moving leadership to `to`, or to the most up-to-date follower when `to` is null. */
export function startTransfer(d: RaftContext, to: NodeId | null): void {
  invariant(d.leader === d.id, "only the leader hands leadership over");
  const target = to ?? mostCaughtUp(d, peerVoters(d));
  // No other voter, this member itself, or a learner or stranger: no one to hand over to.
  const eligible = target !== null && target !== d.id && isVoter(d, target);
  if (!eligible) {
    d.out.observe({ kind: "transfer", to: target, status: "rejected" });
    return;
  }
  d.transferee = target;
  d.transferElapsedTicks = 0;
  d.out.observe({ kind: "transfer", to: target, status: "started" });
  const pr = d.progress[target];
  invariant(pr !== undefined, "the leader tracks every voter's progress");
  // Bring the target up to date first; TimeoutNow goes out once its log matches ours.
  if (pr.match === d.log.lastIndex) sendTimeoutNow(d, target);
  else sendAppend(d, target);
}

export function rejectTransfer(d: RaftContext): void {
  invariant(d.leader !== d.id, "a leader takes transfer requests");
  d.out.observe({ kind: "transfer", to: null, status: "rejected" });
}

/**
 * A leader that committed its own removal stops leading (thesis §4.2.2) and, so the cluster
 * does not wait out an election timeout, asks the most up-to-date voter to campaign at once.
 */
export function stepDownIfRemoved(d: RaftContext): RoleChange | null {
  invariant(d.leader === d.id, "only a leader steps down for its removal");
  const config = d.log.config;
  // Until the configuration without it commits, the removed leader still replicates it (§4.2.2).
  if (config.index > d.commitIndex) return null;
  if (config.voters.includes(d.id)) return null;
  const successor = mostCaughtUp(d, config.voters);
  if (successor !== null && d.progress[successor]?.match === d.log.lastIndex) {
    sendTimeoutNow(d, successor);
  }
  d.out.observe({ kind: "step-down", term: d.term, reason: "removed" });
  becomeFollower(d, d.term, null);
  return { type: "become.follower" };
}
