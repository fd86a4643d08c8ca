import type { Headers, Transport } from "@quorate/core";
import { DurablePipeline, type DurableWrite, invariant, type OutboundMessage } from "@quorate/core/internal";
import type { RaftStorage, StoredSnapshot } from "@quorate/storage";
import type { RaftLog } from "./log.js";
import type { RaftContext } from "./protocol.js";

/** What one write made durable, for the machine's `persisted` (and `compacted`) events. */
export interface Persisted {
  /** The last log index and its term when the write started. */
  readonly index: number;
  readonly term: number;
  /** The term the write recorded with its vote. */
  readonly durableTerm: number;
  /** The index of the snapshot the write installed, if it carried one. */
  readonly snapshotIndex: number | null;
}

export interface RaftWritesOptions {
  readonly storage: RaftStorage;
  readonly transport: Transport;
  readonly log: RaftLog;
  readonly context: () => RaftContext;
  /** The durable snapshot and commit index recovered at start. */
  readonly snapshot: StoredSnapshot | null;
  readonly commitIndex: number;
  readonly sending: (message: OutboundMessage) => Headers | undefined;
  /** A write is durable and the messages held for it have left. */
  readonly persisted: (persisted: Persisted) => void;
  readonly failed: (err: Error) => void;
}

/**
 * Raft's side of the durable write pipeline: what changed since the last write (entries from an
 * index on, the hard state, a snapshot), turned into one storage write at a time. Every message
 * but the leader's appends waits for the write that covers the state it depends on.
 */
export class RaftWrites {
  readonly #pipeline: DurablePipeline;
  #pendingFrom: number | null = null;
  #pendingHardState = false;
  #pendingSnapshot: { snapshot: StoredSnapshot; discardLog: boolean } | null = null;
  /** This member's own snapshot was asked for and is not durable yet. */
  #ownSnapshotUnwritten = false;
  /** The latest durable snapshot (sent to laggards). */
  #snapshot: StoredSnapshot | null;
  #storedSnapshotIndex: number;
  /** The last index storage holds once every write issued so far applies. */
  #storedLastIndex: number;
  /** The commit index of the last write issued: storage refuses to truncate at or below it. */
  #storedCommit: number;

  constructor(private readonly options: RaftWritesOptions) {
    this.#snapshot = options.snapshot;
    this.#storedSnapshotIndex = options.snapshot?.index ?? 0;
    this.#storedLastIndex = options.log.lastIndex;
    this.#storedCommit = options.commitIndex;
    this.#pipeline = new DurablePipeline({
      transport: options.transport,
      startWrite: () => this.#startWrite(),
      writeFailed: options.failed,
      sending: options.sending,
    });
  }

  /** The latest durable snapshot. */
  get snapshot(): StoredSnapshot | null {
    return this.#snapshot;
  }

  /** The last index the snapshot written (or being written) covers. */
  get snapshotIndex(): number {
    return this.#storedSnapshotIndex;
  }

  /** A snapshot waits to be written, or this member's own is not durable yet: take no other. */
  get snapshotting(): boolean {
    return this.#ownSnapshotUnwritten || this.#pendingSnapshot !== null;
  }

  /** What one drain of the machine's outbox asks to make durable, and the messages to send. */
  add(taken: { messages: readonly OutboundMessage[]; unstableFrom: number | null; hardStateChanged: boolean }): void {
    this.#pipeline.push(taken.messages);
    if (taken.unstableFrom !== null) {
      this.#pendingFrom =
        this.#pendingFrom === null ? taken.unstableFrom : Math.min(this.#pendingFrom, taken.unstableFrom);
    }
    this.#pendingHardState ||= taken.hardStateChanged;
  }

  /** A snapshot to write with the next write: this member's own, or one received from the leader. */
  addSnapshot(snapshot: StoredSnapshot, discardLog: boolean, own: boolean): void {
    if (own) {
      invariant(!this.snapshotting, `snapshot at ${snapshot.index} taken while another is being written`);
      this.#ownSnapshotUnwritten = true;
    }
    this.#pendingSnapshot = { snapshot, discardLog };
  }

  /** Starts the next write unless one is in flight; with nothing to write, sends waiting messages. */
  flush(): void {
    this.#pipeline.flush();
  }

  close(): void {
    this.#pipeline.close();
  }

  /** Settles once the write in flight, if any, is done. */
  settled(): Promise<void> {
    return this.#pipeline.writeSettled();
  }

  #startWrite(): DurableWrite | null {
    if (this.#pendingFrom === null && !this.#pendingHardState && this.#pendingSnapshot === null) return null;
    const log = this.options.log;
    const snapshot = this.#pendingSnapshot;
    const lastIndex = log.lastIndex;
    const lastTerm = log.lastTerm;
    // Entries a snapshot covers are not written: storage drops them with the snapshot, and the
    // snapshot may cover entries that were not durable yet (applied as soon as committed).
    const floor = (snapshot?.snapshot.index ?? log.snapshotIndex) + 1;
    const from = this.#pendingFrom === null ? null : Math.max(this.#pendingFrom, floor);
    // Storage truncates before it installs a snapshot, and only within what it holds. The
    // truncation starts where the log changed even below the snapshot: entries that a new
    // leader replaced may have committed (and been snapshotted) before this write started.
    let truncateFrom = this.#pendingFrom === null ? null : Math.min(this.#pendingFrom, this.#storedLastIndex + 1);
    // A snapshot that does not match our log replaces it: drop what storage holds past the
    // commit point (entries up to it match the leader's and the snapshot covers them anyway).
    if (snapshot?.discardLog) {
      truncateFrom = Math.min(this.#storedLastIndex + 1, Math.max(this.#storedCommit, this.#storedSnapshotIndex) + 1);
    }
    this.#pendingFrom = null;
    this.#pendingHardState = false;
    this.#pendingSnapshot = null;
    const ctx = this.options.context();
    const entries =
      from === null || from > lastIndex
        ? []
        : log.slice(from, lastIndex).map((e, i) => ({ index: from + i, term: e.term, kind: e.kind, data: e.data }));
    // What storage will hold once this write applies (writes apply in order).
    let storedLast = truncateFrom === null ? this.#storedLastIndex : Math.min(this.#storedLastIndex, truncateFrom - 1);
    if (snapshot !== null) {
      this.#storedSnapshotIndex = snapshot.snapshot.index;
      storedLast = Math.max(storedLast, snapshot.snapshot.index);
    }
    this.#storedLastIndex = entries.at(-1)?.index ?? storedLast;
    this.#storedCommit = ctx.commitIndex;
    const durableTerm = ctx.term;
    const done = this.options.storage.write({
      hardState: { term: ctx.term, vote: ctx.vote, commit: ctx.commitIndex },
      ...(truncateFrom === null ? {} : { truncateFrom, entries }),
      ...(snapshot === null ? {} : { snapshot: snapshot.snapshot }),
    });
    return {
      done,
      durable: () => {
        if (snapshot !== null) {
          this.#snapshot = snapshot.snapshot;
          this.#ownSnapshotUnwritten = false;
        }
        this.options.persisted({
          index: lastIndex,
          term: lastTerm,
          durableTerm,
          snapshotIndex: snapshot?.snapshot.index ?? null,
        });
      },
    };
  }
}
