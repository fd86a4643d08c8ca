import { invariant } from "./errors.js";
import type { NodeId } from "./ids.js";
import type { MessageMap, MessageType } from "./schema.js";

// What the hosts of every protocol (Raft's node, the Paxos roles) share: the timers they run
// on and the messages their machines ask them to send. The rest of the host kit: the durable
// write pipeline (host-pipeline.ts), the lifecycle (host-lifecycle.ts), client requests and
// their waiters (host-requests.ts), the outbox base (host-outbox.ts), option checks (host-options.ts).

/**
 * Interval and timeout timers a host runs on, and the monotonic clock its ticks follow. The
 * simulator substitutes virtual ones; one implementation serves every protocol's host.
 */
export interface Timers {
  /** Milliseconds on a monotonic clock: never goes back, and keeps counting while the process is paused. */
  now(): number;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's own timers. */
export const realTimers: Timers = {
  now: () => performance.now(),
  setInterval: (cb, ms) => setInterval(cb, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  setTimeout: (cb, ms) => setTimeout(cb, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * The fraction of a period by which a tick may be counted early: it absorbs floating-point error
 * in clock arithmetic (a virtual clock whose callbacks land exactly on period boundaries), and is
 * far below anything a timeout could notice (50 femtoseconds of a 50 ms tick).
 */
const PERIOD_ROUNDING = 1e-9;

/**
 * Turns elapsed time into protocol ticks: each delivery hands over as many ticks as whole
 * `periodMs` periods have passed on `timers.now()` since the last tick delivered (the fraction
 * left over counts towards the next), not one per interval callback. A process paused for
 * seconds (GC, SIGSTOP, a stalled VM) gets one overdue callback when it resumes; counting
 * callbacks would leave a leader believing its lease still holds. A host calls `catchUp()`
 * before it handles anything that arrived during a pause (a message, a request), so its
 * machine sees how much time has passed before it acts on it.
 */
export class Ticker {
  #handle: unknown = null;
  /** The clock time up to which ticks have been delivered; a multiple of periodMs after start. */
  #deliveredUpToMs = 0;

  /**
   * `maxCatchUpTicks` bounds the ticks one delivery hands over after a long pause; the rest are
   * dropped. The host chooses it above every time-bounded deadline its protocol keeps, so that
   * the capped ticks already expire all of them.
   */
  constructor(
    private readonly timers: Timers,
    private readonly periodMs: number,
    private readonly maxCatchUpTicks: number,
    private readonly onTick: () => void,
  ) {
    invariant(periodMs > 0, `tick period must be positive (got ${periodMs} ms)`);
    invariant(Number.isSafeInteger(maxCatchUpTicks) && maxCatchUpTicks >= 1, "catch-up limit must be ≥ 1 tick");
  }

  start(): void {
    invariant(this.#handle === null, "ticker started twice");
    this.#deliveredUpToMs = this.timers.now();
    this.#handle = this.timers.setInterval(() => this.catchUp(), this.periodMs);
  }

  stop(): void {
    if (this.#handle === null) return;
    this.timers.clearInterval(this.#handle);
    this.#handle = null;
  }

  /** Delivers the ticks due by now; returns how many it delivered. */
  catchUp(): number {
    if (this.#handle === null) return 0;
    const due = Math.floor((this.timers.now() - this.#deliveredUpToMs) / this.periodMs + PERIOD_ROUNDING);
    if (due <= 0) return 0;
    // Advanced before delivering: a tick handler that catches up again finds nothing due.
    this.#deliveredUpToMs += due * this.periodMs;
    const ticks = Math.min(due, this.maxCatchUpTicks);
    let delivered = 0;
    // A tick may stop the host (a failed invariant): nothing more is delivered then.
    while (delivered < ticks && this.#handle !== null) {
      delivered++;
      this.onTick();
    }
    return delivered;
  }
}

/** A message a protocol machine asks its host to send. `to === null` is a broadcast to the whole group. */
export interface OutboundMessage<T extends MessageType = MessageType> {
  readonly to: NodeId | null;
  readonly type: T;
  readonly body: MessageMap[T];
  /**
   * True when the message depends on state not yet durable (a vote, a promise, an acceptance,
   * a new round): the host sends it only once every write requested before it is on disk.
   */
  readonly afterPersist: boolean;
}

/** Whatever a host caught, as an Error it can fail with. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
