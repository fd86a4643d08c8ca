import { channel } from "node:diagnostics_channel";
import { performance } from "node:perf_hooks";

/**
 * The `node:diagnostics_channel` name on which hosts publish a `TimelineMark` at each step of a
 * request's way through a member: frames sent and received, storage writes started and durable,
 * commits, applies, client requests and replies. `pnpm bench:timeline` subscribes to it to find
 * where the time of one put goes; anyone profiling a deployment can do the same. With no
 * subscriber a mark costs one property read: nothing is built.
 */
export const TIMELINE_CHANNEL = "quorate:timeline";

export interface TimelineMark {
  readonly member: string;
  /** What happened, e.g. "send raft.append", "receive raft.append.resp", "write.durable", "commit". */
  readonly what: string;
  /**
   * When, in Unix milliseconds with a sub-millisecond fraction (`performance.timeOrigin +
   * performance.now()`): comparable across processes on one machine, unlike span start times,
   * which OpenTelemetry JS takes from `Date.now()`.
   */
  readonly atMs: number;
  /** A number that identifies or sizes the step: a log index, a count of entries. */
  readonly detail?: number;
}

const timeline = channel(TIMELINE_CHANNEL);

/** True while someone listens: callers skip building a mark's text otherwise. */
export function timelineActive(): boolean {
  return timeline.hasSubscribers;
}

/** Publishes a mark if anyone listens. */
export function markTimeline(member: string, what: string, detail?: number): void {
  if (!timeline.hasSubscribers) return;
  const mark: TimelineMark = { member, what, atMs: performance.timeOrigin + performance.now(), detail };
  timeline.publish(mark);
}
