import { ErrorCode, QuorateError } from "@quorate/core";

// What the in-memory storages (Raft's and the acceptor's) share: a disk that serves one live
// storage at a time and can crash under it, and the queue of writes not yet durable.

/** Decides when a pending write reaches the disk: it calls `makeDurable` then, or never. */
export type DurabilitySchedule = (makeDurable: () => void) => void;

export interface MemoryStorageOptions {
  /** decides when a pending write becomes durable; default: queueMicrotask */
  schedule?: DurabilitySchedule;
}

/** The promise of a dead process: it never settles. */
export function never(): Promise<never> {
  return new Promise(() => undefined);
}

/**
 * The one storage a memory disk serves at a time, as a data directory serves one process, and
 * how to kill it when the disk crashes.
 */
export class DiskTenancy {
  /** Kills the attached storage; null when none is attached. */
  #crashAttached: (() => void) | null = null;

  /** `inUse` is the error message for a second storage attaching. */
  constructor(private readonly inUse: string) {}

  /** Attaches a storage that `onCrash` kills; returns how it detaches again. */
  attach(onCrash: () => void): () => void {
    if (this.#crashAttached !== null) throw new QuorateError(ErrorCode.Storage, this.inUse);
    this.#crashAttached = onCrash;
    return () => {
      if (this.#crashAttached === onCrash) this.#crashAttached = null;
    };
  }

  /** Kills the attached storage, if any, and frees the disk for the next one. */
  crash(): void {
    const crashAttached = this.#crashAttached;
    this.#crashAttached = null;
    crashAttached?.();
  }
}

interface PendingWrite<W> {
  readonly write: W;
  readonly resolve: () => void;
}

/**
 * The writes a memory storage accepted, each pending until the schedule calls back; then it
 * becomes durable together with every earlier pending write (as one fsync flushes everything
 * written before it), so writes become durable strictly in call order. After a crash nothing
 * pending ever becomes durable and no promise settles.
 */
export class DurabilityQueue<W> {
  /** Accepted writes that are not yet durable, oldest first. */
  #pending: PendingWrite<W>[] = [];
  /** Settles when the last accepted write is durable. */
  #latest: Promise<void> = Promise.resolve();
  #crashed = false;
  #closing: Promise<void> | null = null;

  constructor(
    private readonly schedule: DurabilitySchedule,
    /** Puts a write, validated and copied when it was accepted, on the disk. */
    private readonly makeDurable: (write: W) => void,
    /** How errors name the storage: "memory storage". */
    private readonly name: string,
  ) {}

  get crashed(): boolean {
    return this.#crashed;
  }

  /** Settles when every write accepted so far is durable. */
  get latest(): Promise<void> {
    return this.#latest;
  }

  /** Throws once close() was called. */
  checkOpen(): void {
    if (this.#closing !== null) throw new QuorateError(ErrorCode.Closed, `${this.name} is closed`);
  }

  /** Queues an accepted write; settles when it is durable. */
  enqueue(write: W): Promise<void> {
    this.#latest = new Promise((resolve) => {
      const pending = { write, resolve };
      this.#pending.push(pending);
      this.schedule(() => this.#makeDurableThrough(pending));
    });
    return this.#latest;
  }

  /** Waits until every accepted write is durable, then calls `release` (once). */
  close(release: () => void): Promise<void> {
    if (this.#crashed) return Promise.resolve();
    this.#closing ??= this.#latest.then(release);
    return this.#closing;
  }

  /** Loses every pending write; nothing settles any more. */
  crash(): void {
    this.#crashed = true;
    this.#pending = [];
  }

  #makeDurableThrough(target: PendingWrite<W>): void {
    if (this.#crashed) return;
    const position = this.#pending.indexOf(target);
    // Not pending any more: it became durable along with a later write.
    if (position < 0) return;
    const durable = this.#pending.splice(0, position + 1);
    for (const { write } of durable) this.makeDurable(write);
    for (const { resolve } of durable) resolve();
  }
}
