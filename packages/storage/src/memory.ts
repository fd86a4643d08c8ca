import { invariant } from "@quorate/core/internal";
import { copyBytes } from "./bytes.js";
import { LogShape } from "./log-shape.js";
import { DiskTenancy, DurabilityQueue, type MemoryStorageOptions, never } from "./memory-durability.js";
import type { HardState, RaftState, RaftStorage, RaftWrite, StoredEntry, StoredSnapshot } from "./types.js";

export type { DurabilitySchedule, MemoryStorageOptions } from "./memory-durability.js";

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
  readonly #tenancy = new DiskTenancy("memory disk is in use by another storage; close() it or crash() the disk first");

  static {
    attach = (disk, onCrash) => disk.#attach(onCrash);
  }

  /**
   * Simulates a crash of the member: the attached storage loses every write that is not yet
   * durable, and is dead: its pending and future promises never settle, as a killed process
   * observes nothing. A new MemoryRaftStorage on this disk then loads only what was durable.
   */
  crash(): void {
    this.#tenancy.crash();
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
    const detach = this.#tenancy.attach(onCrash);
    return { read: () => this.durableState(), apply: (write) => this.#apply(write), detach };
  }

  #apply({ truncateFrom, snapshot, entries, hardState }: RaftWrite): void {
    // Entries are kept in index order: a truncation removes a tail, in time proportional to it
    // (a filter over the whole log on every write made long runs quadratic).
    if (truncateFrom !== undefined) {
      while ((this.#entries.at(-1)?.index ?? Number.NEGATIVE_INFINITY) >= truncateFrom) this.#entries.pop();
    }
    if (snapshot !== undefined) {
      this.#snapshot = snapshot;
      this.#entries = this.#entries.filter((entry) => entry.index > snapshot.index);
    }
    if (entries !== undefined) for (const entry of entries) this.#entries.push(entry);
    if (hardState !== undefined) this.#hardState = hardState;
  }
}

/**
 * RaftStorage over a MemoryDisk with crash semantics, for tests and the simulator. A write is
 * pending until the schedule calls back; then it becomes durable together with every earlier
 * pending write (as one fsync flushes everything written before it), so writes become durable
 * strictly in call order. Data is copied on the way in and on the way out.
 */
export class MemoryRaftStorage implements RaftStorage {
  readonly #disk: DiskAttachment;
  readonly #queue: DurabilityQueue<RaftWrite>;
  #shape: LogShape | null = null;

  constructor(disk: MemoryDisk, options?: MemoryStorageOptions) {
    this.#queue = new DurabilityQueue(
      options?.schedule ?? queueMicrotask,
      (write) => this.#disk.apply(write),
      "memory storage",
    );
    this.#disk = attach(disk, () => this.#queue.crash());
  }

  async load(): Promise<RaftState> {
    if (this.#queue.crashed) return never();
    this.#queue.checkOpen();
    invariant(this.#shape === null, "load() is called once, before any write");
    const state = this.#disk.read();
    this.#shape = LogShape.of(state);
    return state;
  }

  async write(write: RaftWrite): Promise<void> {
    if (this.#queue.crashed) return never();
    this.#queue.checkOpen();
    this.#loadedShape().accept(write);
    return this.#queue.enqueue(copyWrite(write));
  }

  async compact(upTo: number): Promise<void> {
    if (this.#queue.crashed) return never();
    this.#queue.checkOpen();
    this.#loadedShape().acceptCompaction(upTo);
    // Nothing to delete (see acceptCompaction); resolving after the previous write keeps the order.
    return this.#queue.latest;
  }

  /** Waits until every accepted write is durable, then releases the disk. */
  close(): Promise<void> {
    return this.#queue.close(() => this.#disk.detach());
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
