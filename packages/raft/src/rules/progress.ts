/**
 * The leader's view of each follower (etcd's tracker/progress.go): probe, replicate or snapshot,
 * with in-flight limits.
 */
import type { NodeId } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { RaftContext } from "./context.js";
import { replicas } from "./quorum.js";

/** Leader-side view of one follower (etcd's Progress). */
export interface Progress {
  /** Highest index known to match the leader's log. */
  readonly match: number;
  /** Next index to send. */
  readonly next: number;
  /**
   * probe: one message per heartbeat until a match is found; replicate: pipelined;
   * snapshot: the follower is behind the compaction point and a snapshot is on its way.
   */
  readonly state: "probe" | "replicate" | "snapshot";
  /** The snapshot index being sent, in the snapshot state. */
  readonly pendingSnapshot: number;
  readonly probeSent: boolean;
  /** Last index and bytes of each pipelined message not yet acknowledged. */
  readonly inflight: readonly { readonly index: number; readonly bytes: number }[];
  /**
   * Heartbeat intervals with messages in flight and no acknowledgement: a lost pipeline falls
   * back to probe after an election timeout's worth of them.
   */
  readonly stalledHeartbeats: number;
}

/** Keeps one Progress per replica of the current configuration: new members start probing. */
export function trackReplicas(d: RaftContext): void {
  invariant(d.leader === d.id, "only the leader tracks followers");
  const members = replicas(d);
  const progress: Record<NodeId, Progress> = {};
  for (const peer of members) {
    progress[peer] = d.progress[peer] ?? {
      match: 0,
      next: d.log.lastIndex + 1,
      state: "probe",
      pendingSnapshot: 0,
      probeSent: false,
      inflight: [],
      stalledHeartbeats: 0,
    };
  }
  d.progress = progress;
}

/** Replaces a follower's progress; the one place it changes, so its invariants hold everywhere. */
export function setProgress(d: RaftContext, peer: NodeId, pr: Progress): void {
  invariant(pr.match < pr.next, `progress of ${peer}: match ${pr.match} must be below next ${pr.next}`);
  invariant(pr.next <= d.log.lastIndex + 1, `progress of ${peer}: next ${pr.next} beyond ${d.log.lastIndex + 1}`);
  invariant(pr.state !== "snapshot" || pr.inflight.length === 0, `progress of ${peer}: pipelined while snapshotting`);
  d.progress = { ...d.progress, [peer]: pr };
}

/** Looks for the point where the follower's log matches ours: one AppendEntries from `next` at a time. */
export function probing(pr: Progress, next: number): Progress {
  invariant(next > pr.match, "a probe starts after the matched prefix");
  return { ...pr, state: "probe", next, probeSent: false, inflight: [], stalledHeartbeats: 0 };
}

/** The follower's log matches ours up to `match`: AppendEntries are pipelined from there. */
export function replicating(pr: Progress, match: number): Progress {
  invariant(match >= pr.match, "a follower's match never goes back");
  return { ...pr, state: "replicate", match, next: match + 1, probeSent: false, inflight: [], stalledHeartbeats: 0 };
}

/** What the follower needs was compacted away: replication pauses while the snapshot at `index` goes out. */
export function snapshotting(pr: Progress, index: number): Progress {
  // The follower needs entries before the log's snapshot: it covers at least the next one.
  invariant(index >= pr.next, "a snapshot covers the entry the follower needs next");
  invariant(pr.state !== "snapshot", "one snapshot at a time per follower");
  return { ...pr, state: "snapshot", pendingSnapshot: index, inflight: [], stalledHeartbeats: 0 };
}

/**
 * An AppendEntries went out to the follower: a probe waits for its answer; in the pipeline, the
 * entries through `last` (`bytes` of them) are in flight.
 */
export function sent(pr: Progress, last: number, entries: number, bytes: number): Progress {
  invariant(last === pr.next - 1 + entries, "an AppendEntries carries the entries from next on");
  invariant(pr.state !== "snapshot", "nothing is sent while a snapshot is on its way");
  if (pr.state === "probe") return { ...pr, probeSent: true };
  if (entries === 0) return pr;
  return { ...pr, next: last + 1, inflight: [...pr.inflight, { index: last, bytes }] };
}

/**
 * The follower holds our log up to `index`. A probe that matched, or an installed snapshot (the
 * follower acknowledges its index), starts the pipeline; in it, acknowledged messages leave the
 * in-flight window.
 */
export function acknowledged(pr: Progress, index: number): Progress {
  invariant(index >= 0, "an acknowledged index is not negative");
  invariant(pr.state !== "probe" || pr.inflight.length === 0, "a probe has nothing in flight");
  const match = Math.max(pr.match, index);
  if (pr.state === "probe" || (pr.state === "snapshot" && match >= pr.pendingSnapshot)) return replicating(pr, match);
  return {
    ...pr,
    match,
    next: Math.max(pr.next, match + 1),
    inflight: pr.inflight.filter((f) => f.index > index),
    stalledHeartbeats: index > pr.match ? 0 : pr.stalledHeartbeats,
  };
}

/** Whether a refusal of the AppendEntries ending before `index` is about what we sent this follower last. */
export function refusalIsCurrent(pr: Progress, index: number): boolean {
  invariant(pr.match < pr.next, "a follower's match is below its next index");
  if (pr.state === "snapshot") return false;
  return pr.state === "replicate" ? index > pr.match && index < pr.next : index === pr.next - 1;
}

/**
 * A heartbeat interval passed. A probe is retried (one per heartbeat, as etcd does); a pipeline
 * silent for `stallLimit` heartbeats with messages in flight, or a snapshot transfer silent for
 * `snapshotStallLimit`, falls back to probing.
 */
export function heartbeatPassed(pr: Progress, stallLimit: number, snapshotStallLimit: number): Progress {
  invariant(stallLimit > 0, "a stalled pipeline is judged over at least one heartbeat");
  invariant(snapshotStallLimit >= stallLimit, "a snapshot may stall at least as long as a pipeline");
  if (pr.state === "probe") return { ...pr, probeSent: false };
  if (pr.state === "replicate" && pr.inflight.length === 0) return pr;
  const stalled = pr.stalledHeartbeats + 1;
  if (pr.state === "snapshot")
    return stalled >= snapshotStallLimit ? probing(pr, pr.next) : { ...pr, stalledHeartbeats: stalled };
  return stalled >= stallLimit ? probing(pr, pr.match + 1) : { ...pr, stalledHeartbeats: stalled };
}

export function inflightBytes(pr: Progress): number {
  let bytes = 0;
  for (const f of pr.inflight) bytes += f.bytes;
  return bytes;
}

/** Whether the follower may be sent an AppendEntries now: its one probe, or room in its window. */
export function canSend(d: RaftContext, pr: Progress): boolean {
  // The window is a limit: nothing goes out once it is full, so it never holds more.
  invariant(pr.inflight.length <= d.options.maxInflightMessages, "the in-flight window holds at most its limit");
  if (pr.state === "snapshot") return false;
  if (pr.state === "probe") return !pr.probeSent;
  return pr.inflight.length < d.options.maxInflightMessages && inflightBytes(pr) < d.options.maxInflightBytes;
}
