import { ErrorCode, invariant, QuorateError } from "./errors.js";
import type { Timers } from "./host.js";

// Client requests a host holds, from the call until they settle: admitted under a limit,
// queued until the next microtask, handed to the machine in batches, then waiting until they
// take effect. Every path ends in resolve or reject: a request never hangs, not even when
// its host stops.

/** A caller waiting for a request's outcome. */
export interface Rejectable {
  readonly reject: (err: Error) => void;
}

/** Fails every caller in `waiters`. */
export function rejectAll(waiters: Iterable<Rejectable>, err: Error): void {
  for (const waiter of waiters) waiter.reject(err);
}

/**
 * Bounds the requests of one kind a host holds (queued, batched or waiting to take effect):
 * one more is refused at once with Busy, so a flood of callers cannot grow a host's queues
 * without end. A request's place frees as it settles, whichever way.
 */
export class PendingLimit {
  #pending = 0;

  constructor(
    /** The host and the requests, as the error names them: "raft node n1", "proposals". */
    private readonly host: string,
    private readonly what: string,
    /** The option that sets the limit, named in the error. */
    private readonly option: string,
    readonly limit: number,
  ) {
    invariant(Number.isSafeInteger(limit) && limit >= 1, `${option} must be a positive integer (got ${limit})`);
  }

  /** Requests admitted and not yet settled. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * A client request: refused at once with `closed` when the host no longer serves, or with
   * Busy when `limit` requests are pending; otherwise handed to `enqueue`, which queues the
   * caller for the host's next batch.
   */
  admit<T>(
    closed: Error | null,
    enqueue: (resolve: (result: T) => void, reject: (err: Error) => void) => void,
  ): Promise<T> {
    if (closed !== null) return Promise.reject(closed);
    if (this.#pending >= this.limit) {
      return Promise.reject(
        new QuorateError(
          ErrorCode.Busy,
          `${this.host} holds ${this.limit} pending ${this.what} (${this.option}); retry later`,
        ),
      );
    }
    this.#pending++;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const release = () => {
        invariant(!settled, `a pending request of ${this.host} settled twice`);
        settled = true;
        this.#pending--;
      };
      enqueue(
        (result) => {
          release();
          resolve(result);
        },
        (err) => {
          release();
          reject(err);
        },
      );
    });
  }
}

/** Runs `flush` once in the next microtask however often it is scheduled before then: one batch per turn. */
export class MicrotaskFlush {
  #scheduled = false;

  constructor(private readonly flush: () => void) {}

  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.flush();
    });
  }
}

/**
 * Requests queued for the host's next batch, and the batches handed to the machine that it has
 * not answered for yet, by batch id. `limit` bounds both together; the host admits no more
 * than that (PendingLimit), so reaching it is a bug.
 */
export class RequestBatches<W extends Rejectable> {
  #queued: W[] = [];
  #handedCount = 0;
  readonly #handed = new Map<number, W[]>();

  constructor(
    private readonly what: string,
    private readonly limit: number,
  ) {}

  /** Requests queued or handed to the machine. */
  get size(): number {
    return this.#queued.length + this.#handedCount;
  }

  get queued(): number {
    return this.#queued.length;
  }

  push(waiter: W): void {
    invariant(this.size < this.limit, `more than ${this.limit} ${this.what} queued or batched`);
    this.#queued.push(waiter);
  }

  /** Hands every queued request to the machine as batch `id`. */
  take(id: number): W[] {
    invariant(!this.#handed.has(id), `batch ${id} of ${this.what} handed twice`);
    const batch = this.#queued;
    this.#queued = [];
    this.#handed.set(id, batch);
    this.#handedCount += batch.length;
    return batch;
  }

  /** The machine answered for batch `id`: its requests, for the host to settle (none if unknown). */
  answered(id: number): W[] {
    const batch = this.#handed.get(id) ?? [];
    this.#handed.delete(id);
    this.#handedCount -= batch.length;
    return batch;
  }

  /** Fails every request queued or handed to the machine, because the host stops with `err`. */
  failAll(err: Error): void {
    for (const batch of this.#handed.values()) rejectAll(batch, err);
    this.#handed.clear();
    this.#handedCount = 0;
    rejectAll(this.#queued, err);
    this.#queued = [];
  }
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
    /** The most requests that may wait at once; the host admits no more (PendingLimit). */
    private readonly limit: number,
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
    invariant(this.#waiting.size < this.limit, `more than ${this.limit} requests wait to take effect`);
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
