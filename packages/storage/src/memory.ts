import { ErrorCode, invariant, QuorateError } from "@quorate/core";
import { copyBytes } from "./bytes.js";
import { LogShape } from "./log-shape.js";
import type { HardState, RaftState, RaftStorage, RaftWrite, StoredEntry, StoredSnapshot } from "./types.js";

/** Decides when a pending write reaches the disk: it calls `makeDurable` then, or never. */
export type DurabilitySchedule = (makeDurable: () => void) => void;

export interface MemoryStorageOptions {
  /** decides when a pending write becomes durable; default: queueMicrotask */
  schedule?: DurabilitySchedule;
}

/** What an attached storage may do with its disk. */
interface DiskAttachment {
  read(): RaftState;
  /** Applies a write that was validated and copied when it was issued. */
  apply(write: RaftWrite): void;
  detach(): void;
}

let attach: (disk: MemoryDisk, onCrash: () => void) => DiskAttachment;

/**
 * The durable state of one simulated member: what survives a crash. Like a data directory,
 * it serves one live storage at a time.
 */
export class MemoryDisk {
  #hardState: HardState = { term: 0, vote: null, commit: 0 };
  #snapshot: StoredSnapshot | null = null;
  /** The entries after the snapshot, in index order. */
  #entries: StoredEntry[] = [];
  /** Kills the attached storage; null when none is attached. */
  #crashAttached: (() => void) | null = null;

  static {
    attach = (disk, onCrash) => disk.#attach(onCrash);
  }

  /**
   * Simulates a crash of the member: the attached storage loses every write that is not yet
   * durable, and is dead: its pending and future promises never settle, as a killed process
   * observes nothing. A new MemoryRaftStorage on this disk then loads only what was durable.
   */
  crash(): void {
    const crashAttached = this.#crashAttached;
    this.#crashAttached = null;
    crashAttached?.();
  }

  /** A copy of what is durable now, for checkers; needs no attached storage. */
  durableState(): RaftState {
    return {
      hardState: { ...this.#hardState },
      snapshot: this.#snapshot && copySnapshot(this.#snapshot),
      entries: this.#entries.map(copyEntry),
    };
  }

  #attach(onCrash: () => void): DiskAttachment {
    if (this.#crashAttached !== null) {
      throw new QuorateError(
        ErrorCode.Storage,
        "memory disk is in use by another storage; close() it or crash() the disk first",
      );
    }
    this.#crashAttached = onCrash;
    return {
      read: () => this.durableState(),
      apply: (write) => this.#apply(write),
      detach: () => {
        if (this.#crashAttached === onCrash) this.#crashAttached = null;
      },
    };
  }

  #apply({ truncateFrom, snapshot, entries, hardState }: RaftWrite): void {
    if (truncateFrom !== undefined) this.#entries = this.#entries.filter((entry) => entry.index < truncateFrom);
    if (snapshot !== undefined) {
      this.#snapshot = snapshot;
      this.#entries = this.#entries.filter((entry) => entry.index > snapshot.index);
    }
    if (entries !== undefined) for (const entry of entries) this.#entries.push(entry);
    if (hardState !== undefined) this.#hardState = hardState;
  }
}

interface PendingWrite {
  readonly write: RaftWrite;
  readonly resolve: () => void;
}

/**
 * RaftStorage over a MemoryDisk with crash semantics, for tests and the simulator. A write is
 * pending until the schedule calls back; then it becomes durable together with every earlier
 * pending write (as one fsync flushes everything written before it), so writes become durable
 * strictly in call order. Data is copied on the way in and on the way out.
 */
export class MemoryRaftStorage implements RaftStorage {
  readonly #disk: DiskAttachment;
  readonly #schedule: DurabilitySchedule;
  #shape: LogShape | null = null;
  /** Accepted writes that are not yet durable, oldest first. */
  #pending: PendingWrite[] = [];
  /** Settles when the last accepted write is durable. */
  #latest: Promise<void> = Promise.resolve();
  #crashed = false;
  #closing: Promise<void> | null = null;

  constructor(disk: MemoryDisk, options?: MemoryStorageOptions) {
    this.#schedule = options?.schedule ?? queueMicrotask;
    this.#disk = attach(disk, () => this.#crash());
  }

  async load(): Promise<RaftState> {
    if (this.#crashed) return never();
    this.#checkOpen();
    invariant(this.#shape === null, "load() is called once, before any write");
    const state = this.#disk.read();
    this.#shape = LogShape.of(state);
    return state;
  }

  async write(write: RaftWrite): Promise<void> {
    if (this.#crashed) return never();
    this.#checkOpen();
    this.#loadedShape().accept(write);
    const accepted = copyWrite(write);
    this.#latest = new Promise((resolve) => {
      const pending = { write: accepted, resolve };
      this.#pending.push(pending);
      this.#schedule(() => this.#makeDurableThrough(pending));
    });
    return this.#latest;
  }

  async compact(upTo: number): Promise<void> {
    if (this.#crashed) return never();
    this.#checkOpen();
    this.#loadedShape().acceptCompaction(upTo);
    // Nothing to delete (see acceptCompaction); resolving after the previous write keeps the order.
    return this.#latest;
  }

  /** Waits until every accepted write is durable, then releases the disk. */
  close(): Promise<void> {
    if (this.#crashed) return Promise.resolve();
    this.#closing ??= this.#latest.then(() => this.#disk.detach());
    return this.#closing;
  }

  #makeDurableThrough(target: PendingWrite): void {
    if (this.#crashed) return;
    const position = this.#pending.indexOf(target);
    // Not pending any more: it became durable along with a later write.
    if (position < 0) return;
    const durable = this.#pending.splice(0, position + 1);
    for (const { write } of durable) this.#disk.apply(write);
    for (const { resolve } of durable) resolve();
  }

  #crash(): void {
    this.#crashed = true;
    this.#pending = [];
  }

  #checkOpen(): void {
    if (this.#closing !== null) throw new QuorateError(ErrorCode.Closed, "memory storage is closed");
  }

  #loadedShape(): LogShape {
    invariant(this.#shape !== null, "load() must complete before the first write");
    return this.#shape;
  }
}

/** A MemoryRaftStorage over a fresh MemoryDisk. */
export function createMemoryStorage(options?: MemoryStorageOptions): MemoryRaftStorage {
  return new MemoryRaftStorage(new MemoryDisk(), options);
}

/** The promise of a dead process: it never settles. */
function never(): Promise<never> {
  return new Promise(() => undefined);
}

function copyEntry(entry: StoredEntry): StoredEntry {
  return { index: entry.index, term: entry.term, kind: entry.kind, data: copyBytes(entry.data) };
}

function copySnapshot(snapshot: StoredSnapshot): StoredSnapshot {
  return {
    index: snapshot.index,
    term: snapshot.term,
    config: copyBytes(snapshot.config),
    data: copyBytes(snapshot.data),
  };
}

function copyWrite(write: RaftWrite): RaftWrite {
  const copy: RaftWrite = {};
  if (write.hardState !== undefined) {
    copy.hardState = { term: write.hardState.term, vote: write.hardState.vote, commit: write.hardState.commit };
  }
  if (write.truncateFrom !== undefined) copy.truncateFrom = write.truncateFrom;
  if (write.entries !== undefined) copy.entries = write.entries.map(copyEntry);
  if (write.snapshot !== undefined) copy.snapshot = copySnapshot(write.snapshot);
  return copy;
}
