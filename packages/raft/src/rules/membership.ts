/**
 * Membership changes one server at a time (thesis §4.1).
 */
import { EntryKind } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import { applyChange, type ClusterConfig, encodeConfig, type MembershipChange } from "../config.js";
import type { LogEntry } from "../log.js";
import { appendAndBroadcast } from "./append.js";
import { check, type RaftContext } from "./context.js";

/**
 * Appends a configuration entry for `change`. It takes effect as soon as it is in the log; the
 * next change waits until it commits. A leader also waits until it has committed an entry of its
 * own term: otherwise a change it appends could overlap a change of an earlier leader that it
 * never saw committed, and two disjoint majorities could elect two leaders (Ongaro, raft-dev 2015).
 */
export function reconfigure(d: RaftContext, id: number, change: MembershipChange): void {
  invariant(d.leader === d.id, "only the leader changes the membership");
  const reject = (reason: "in-progress" | "invalid" | "not-caught-up", message: string) =>
    d.out.changes.push({ id, ok: false, reason, message, leader: d.id });
  if (d.transferee !== null) {
    reject("in-progress", `leadership is moving to ${d.transferee}; retry with the new leader`);
    return;
  }
  const current = d.log.config;
  if (!check("oneChangeAtATime", { d })) {
    reject(
      "in-progress",
      d.log.term(d.commitIndex) !== d.term
        ? "the leader has not yet committed an entry of its term; retry shortly"
        : `the membership change at index ${current.index} is not committed yet; one change at a time`,
    );
    return;
  }
  const next = applyChange(current, change);
  if (typeof next === "string") {
    reject("invalid", next);
    return;
  }
  const removesOneOfTwoVoters =
    change.type === "remove" && current.voters.length === 2 && current.voters.includes(change.member);
  if (removesOneOfTwoVoters) {
    // The change takes effect as it is appended. Removing the leader: cut off before it commits,
    // the leader holds the longest log yet is no voter in it, and the other voter needs its vote.
    // Removing the other: the leader writes its log in parallel with replication, so a crash can
    // take the change back from the leader alone, while the removed voter keeps it, holds the
    // longest log, and no longer campaigns. Either way no leader could ever be elected again.
    reject(
      "invalid",
      `removing '${change.member}' from two voters could leave the cluster unable ever to elect a leader; ` +
        "add a third voter first, then remove it",
    );
    return;
  }
  if (change.type === "promote") {
    // A voter that is far behind would stall commits until it caught up (thesis §4.2.1).
    const pr = d.progress[change.member];
    const lag = d.log.lastIndex - (pr?.match ?? 0);
    const caughtUp = pr !== undefined && pr.state === "replicate" && lag <= d.options.maxPromotionLag;
    if (!caughtUp) {
      reject("not-caught-up", `learner '${change.member}' trails the log by ${lag} entries; retry once it caught up`);
      return;
    }
  }
  const index = d.log.lastIndex + 1;
  appendAndBroadcast(d, [configEntry(d.term, next)]);
  // A configuration takes effect as soon as it is in the log (thesis §4.1).
  invariant(d.log.config.index === index, "the appended configuration is in effect");
  d.out.changes.push({ id, ok: true, index, term: d.term, config: next });
}

export function configEntry(term: number, config: ClusterConfig): LogEntry {
  return { term, kind: EntryKind.Config, data: encodeConfig(config) };
}

export function rejectChange(d: RaftContext, id: number): void {
  invariant(d.leader !== d.id, "a leader takes membership changes");
  d.out.changes.push({
    id,
    ok: false,
    reason: "not-leader",
    message: "only the leader changes the membership",
    leader: d.leader,
  });
}
