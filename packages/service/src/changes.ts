import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  ErrorCode,
  type Logger,
  packValue,
  QuorateError,
  silentLogger,
  unpackValue,
  type Validator,
} from "@quorate/core";

/**
 * A change feed: every change a member applies to its replicated state, published on a subject
 * of that member's, so that watchers follow the state without a consensus round per change (the
 * change is committed already). Publishing is best effort: a subscriber notices a lost
 * publication because a change names the revision before it (`previous`), and catches up from
 * its last revision by a request to the service, which keeps a window of recent changes.
 */

/** A change of replicated state: from revision `previous` to revision `revision`. */
export interface RevisionedChange {
  readonly previous: number;
  readonly revision: number;
}

/** What a change feed publishes from: a state machine that tells its applied changes. */
export interface ChangeSource<C extends RevisionedChange> {
  /** The revision applied last. */
  readonly revision: number;
  /** Calls `listener` with every change applied from now on, in order. Returns the unsubscribe. */
  onChange(listener: (change: C) => void): () => void;
}

export interface ChangePublisherOptions<C extends RevisionedChange> {
  readonly nc: NatsConnection;
  /** This member's change subject. */
  readonly subject: string;
  readonly source: ChangeSource<C>;
  /**
   * The change published when nothing changed for `heartbeatMs`: one from `revision` to
   * `revision`, so that subscribers see this member's revision and know it is alive.
   */
  readonly heartbeat: (revision: number) => C;
  readonly heartbeatMs: number;
  /**
   * Publish changes only for this long after the last `interested()` (a subscriber's request to
   * this member), heartbeats always. Without subscribers a member then spends no socket write per
   * change; a subscriber that let its interest lapse sees a heartbeat past what it has, and
   * catches up by request, which renews it. Default: changes are always published.
   */
  readonly interestMs?: number;
  readonly logger?: Logger;
}

export interface ChangePublisher {
  /** A subscriber follows this member: publish changes for `interestMs` from now. */
  interested(): void;
  /** Stops publishing. Does not close the NATS connection. */
  close(): void;
}

/** Publishes every change `source` applies (while someone is interested), and a heartbeat every `heartbeatMs`, on `subject`. */
export function publishChanges<C extends RevisionedChange>(options: ChangePublisherOptions<C>): ChangePublisher {
  const { nc, subject, source, heartbeat, heartbeatMs, interestMs } = options;
  const logger = options.logger ?? silentLogger;
  for (const [name, value] of Object.entries({ heartbeatMs, interestMs })) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new QuorateError(ErrorCode.Config, `${name} must be a positive integer (got ${value})`);
    }
  }
  /** Until when (performance.now()) changes are published; Infinity without an interest limit. */
  let interestedUntil = interestMs === undefined ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  function publishChange(change: C): void {
    if (performance.now() <= interestedUntil) publish(change);
  }
  function publish(change: C): void {
    if (nc.isClosed() || nc.isDraining()) return;
    try {
      nc.publish(subject, packValue(change));
    } catch (err) {
      logger.debug("could not publish a change", { subject, revision: change.revision, error: String(err) });
    }
  }
  const unsubscribe = source.onChange(publishChange);
  const timer = setInterval(() => publish(heartbeat(source.revision)), heartbeatMs);
  timer.unref();
  return {
    interested() {
      if (interestMs !== undefined) interestedUntil = performance.now() + interestMs;
    },
    close() {
      clearInterval(timer);
      unsubscribe();
    },
  };
}

/** What `ChangeSubscription.next` yields besides a change. */
export type ChangeSignal = "overflow" | "idle" | "closed";

export interface ChangeSubscriptionOptions<C extends RevisionedChange> {
  readonly nc: NatsConnection;
  /** The change subject of the member followed. */
  readonly subject: string;
  /** Checks each publication; a malformed one is dropped (the next one shows the gap it leaves). */
  readonly accepts: Validator<C>;
  /** Changes held while the consumer is busy; beyond, the queue is dropped and `next` says "overflow". */
  readonly maxQueue: number;
  /** Called once, when the subscription closes. */
  readonly onClose?: () => void;
}

/**
 * One member's change subject, queued for a consumer: at most `maxQueue` changes; beyond, the
 * queue is dropped and the consumer told to catch up by request instead.
 */
export class ChangeSubscription<C extends RevisionedChange> {
  readonly #subscription: Subscription;
  readonly #onClose: () => void;
  readonly #maxQueue: number;
  #queue: C[] = [];
  #overflowed = false;
  #closed = false;
  #wake: (() => void) | null = null;

  constructor(options: ChangeSubscriptionOptions<C>) {
    const { nc, subject, accepts, maxQueue } = options;
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 1) {
      throw new QuorateError(ErrorCode.Config, `maxQueue must be a positive integer (got ${maxQueue})`);
    }
    this.#maxQueue = maxQueue;
    this.#onClose = options.onClose ?? (() => {});
    this.#subscription = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) return;
        let change: unknown;
        try {
          change = unpackValue(msg.data);
        } catch {
          return;
        }
        if (!accepts(change)) return;
        this.#enqueue(change);
      },
    });
  }

  #enqueue(change: C): void {
    if (this.#queue.length >= this.#maxQueue) {
      this.#queue = [];
      this.#overflowed = true;
    } else {
      this.#queue.push(change);
    }
    this.#wake?.();
  }

  /** The next change; "overflow" when changes were dropped; "idle" after `idleMs` without any. */
  async next(idleMs: number): Promise<C | ChangeSignal> {
    for (;;) {
      if (this.#closed) return "closed";
      if (this.#overflowed) {
        this.#overflowed = false;
        return "overflow";
      }
      const change = this.#queue.shift();
      if (change !== undefined) return change;
      const woken = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), idleMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      this.#wake = null;
      if (!woken) return "idle";
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscription.unsubscribe();
    this.#wake?.();
    this.#onClose();
  }
}
