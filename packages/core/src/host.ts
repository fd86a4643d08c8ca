import { ErrorCode, invariant, QuorateError } from "./errors.js";
import type { NodeId } from "./ids.js";
import type { MessageMap, MessageType } from "./messages.js";

// What the hosts of every protocol (Raft's node, the Paxos roles) share: the timers they run
// on, the messages their machines ask them to send, and how they fail what callers wait for.

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

/**
 * Why a host refuses new requests, or null while it serves: `name` is how it calls itself
 * ("raft node n1", "learner l1").
 */
export function closedError(name: string, failure: Error | null, stopped: boolean): QuorateError | null {
  if (failure !== null) {
    return new QuorateError(ErrorCode.Closed, `${name} failed: ${failure.message}`, { cause: failure });
  }
  return stopped ? new QuorateError(ErrorCode.Closed, `${name} stopped`) : null;
}

/**
 * A client request to a host: refused at once with `closed` when the host no longer serves,
 * otherwise handed to `enqueue`, which queues the caller for the host's next batch.
 */
export function queueRequest<T>(
  closed: Error | null,
  enqueue: (resolve: (result: T) => void, reject: (err: Error) => void) => void,
): Promise<T> {
  if (closed !== null) return Promise.reject(closed);
  return new Promise(enqueue);
}

/** A caller waiting for a request's outcome. */
export interface Rejectable {
  readonly reject: (err: Error) => void;
}

/**
 * Requests the protocol took, by key (a log index, a request seq), each waiting until it takes
 * effect or its timeout fires. One that times out, or is still waiting when its host stops, may
 * yet take effect elsewhere: its caller learns the outcome is unknown (Indeterminate).
 */
export class TakenRequests<K, W extends Rejectable> {
  readonly #waiting = new Map<K, { readonly waiter: W; readonly timer: unknown }>();

  constructor(
    private readonly timers: Timers,
    private readonly timeoutMs: number,
  ) {}

  get size(): number {
    return this.#waiting.size;
  }

  /**
   * Waits for `key`; when the timeout passes first, fails `waiter` with `timeoutMessage`. The
   * key must be free: a waiter replaced here would never settle, so the host takes and settles
   * the one holding it first.
   */
  add(key: K, waiter: W, timeoutMessage: string): void {
    invariant(!this.#waiting.has(key), `a request already waits for ${String(key)}`);
    const timer = this.timers.setTimeout(() => {
      if (this.#waiting.get(key)?.waiter !== waiter) return;
      this.#waiting.delete(key);
      waiter.reject(new QuorateError(ErrorCode.Indeterminate, timeoutMessage));
    }, this.timeoutMs);
    this.#waiting.set(key, { waiter, timer });
  }

  /** Stops waiting for `key` and hands back its waiter, if any, for the caller to settle. */
  take(key: K): W | undefined {
    const entry = this.#waiting.get(key);
    if (entry === undefined) return undefined;
    this.#waiting.delete(key);
    this.timers.clearTimeout(entry.timer);
    return entry.waiter;
  }

  /** Fails every waiter as Indeterminate, because its host stops with `err`. */
  failAll(err: Error): void {
    for (const { waiter, timer } of this.#waiting.values()) {
      this.timers.clearTimeout(timer);
      waiter.reject(new QuorateError(ErrorCode.Indeterminate, err.message, { cause: err }));
    }
    this.#waiting.clear();
  }
}

/** Fails every caller in `waiters`. */
export function rejectAll(waiters: Iterable<Rejectable>, err: Error): void {
  for (const waiter of waiters) waiter.reject(err);
}

/** Fails every batch of requests handed to the machine that has not answered for it yet. */
export function failBatches(batches: Map<number, readonly Rejectable[]>, err: Error): void {
  for (const batch of batches.values()) rejectAll(batch, err);
  batches.clear();
}
