/**
 * The leader's view of each follower (etcd's tracker/progress.go): probe, replicate or snapshot,
 * with in-flight limits.
 */
import { invariant, type NodeId } from "@quorate/core";
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

export function setProgress(d: RaftContext, peer: NodeId, patch: Partial<Progress>): void {
  const pr: Progress = { ...(d.progress[peer] as Progress), ...patch };
  invariant(pr.match < pr.next, `progress of ${peer}: match ${pr.match} must be below next ${pr.next}`);
  invariant(pr.next <= d.log.lastIndex + 1, `progress of ${peer}: next ${pr.next} beyond ${d.log.lastIndex + 1}`);
  d.progress = { ...d.progress, [peer]: pr };
}

export function inflightBytes(pr: Progress): number {
  let bytes = 0;
  for (const f of pr.inflight) bytes += f.bytes;
  return bytes;
}

export function canSend(d: RaftContext, pr: Progress): boolean {
  if (pr.state === "snapshot") return false;
  if (pr.state === "probe") return !pr.probeSent;
  return pr.inflight.length < d.options.maxInflightMessages && inflightBytes(pr) < d.options.maxInflightBytes;
}
