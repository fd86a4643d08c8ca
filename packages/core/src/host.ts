import { ErrorCode, QuorateError } from "./errors.js";
import type { NodeId } from "./ids.js";
import type { MessageMap, MessageType } from "./messages.js";

// What the hosts of every protocol (Raft's node, the Paxos roles) share: the timers they run
// on, the messages their machines ask them to send, and how they fail what callers wait for.

/**
 * Interval and timeout timers a host runs on. The simulator substitutes virtual ones; one
 * implementation serves every protocol's host.
 */
export interface Timers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's own timers. */
export const realTimers: Timers = {
  setInterval: (cb, ms) => setInterval(cb, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  setTimeout: (cb, ms) => setTimeout(cb, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

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

  /** Waits for `key`; when the timeout passes first, fails `waiter` with `timeoutMessage`. */
  add(key: K, waiter: W, timeoutMessage: string): void {
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
