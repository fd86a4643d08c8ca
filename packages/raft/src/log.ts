import { type EntryRecord, invariant } from "@quorate/core";

/** An entry of the replicated log. Its index is its position; terms never decrease along the log. */
export type LogEntry = EntryRecord;

/** Per-entry overhead counted against message size caps, beside the command bytes. */
const ENTRY_OVERHEAD_BYTES = 16;

export function entryBytes(entry: LogEntry): number {
  return entry.data.length + ENTRY_OVERHEAD_BYTES;
}

/**
 * The in-memory mirror of the log, owned by the host and referenced (never copied) by the
 * machine. Indexes start at 1; `snapshotIndex` is the last index covered by a snapshot,
 * and entries after it are held in order.
 */
export class RaftLog {
  #entries: LogEntry[] = [];
  #snapshotIndex = 0;
  #snapshotTerm = 0;

  constructor(init?: { snapshotIndex: number; snapshotTerm: number; entries: readonly LogEntry[] }) {
    if (init !== undefined) {
      this.#snapshotIndex = init.snapshotIndex;
      this.#snapshotTerm = init.snapshotTerm;
      this.#entries = [...init.entries];
    }
  }

  get snapshotIndex(): number {
    return this.#snapshotIndex;
  }

  get firstIndex(): number {
    return this.#snapshotIndex + 1;
  }

  get lastIndex(): number {
    return this.#snapshotIndex + this.#entries.length;
  }

  get lastTerm(): number {
    return this.term(this.lastIndex) ?? 0;
  }

  /** The term of the entry at `index`; undefined if it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.#snapshotIndex) return this.#snapshotTerm;
    if (index < this.#snapshotIndex || index > this.lastIndex) return undefined;
    return this.#entries[index - this.#snapshotIndex - 1]?.term;
  }

  entry(index: number): LogEntry | undefined {
    if (index <= this.#snapshotIndex) return undefined;
    return this.#entries[index - this.#snapshotIndex - 1];
  }

  /** Entries from `from` up to `to` inclusive, stopping early once `maxBytes` is exceeded (at least one). */
  slice(from: number, to: number, maxBytes = Number.POSITIVE_INFINITY): LogEntry[] {
    invariant(from > this.#snapshotIndex, `slice from ${from} at or below snapshot ${this.#snapshotIndex}`);
    const end = Math.min(to, this.lastIndex);
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let i = from; i <= end; i++) {
      const entry = this.#entries[i - this.#snapshotIndex - 1] as LogEntry;
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  append(entries: readonly LogEntry[]): void {
    let prevTerm = this.lastTerm;
    for (const entry of entries) {
      invariant(entry.term >= prevTerm, `log terms must not decrease (${entry.term} after ${prevTerm})`);
      prevTerm = entry.term;
      this.#entries.push(entry);
    }
  }

  /** Removes every entry at `index` and after. Only conflicting, uncommitted entries are ever removed. */
  truncateFrom(index: number): void {
    invariant(index > this.#snapshotIndex, `truncate at ${index} inside snapshot ${this.#snapshotIndex}`);
    this.#entries.length = Math.max(0, index - this.#snapshotIndex - 1);
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastTerm: number, lastIndex: number): boolean {
    const myTerm = this.lastTerm;
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex);
  }

  /**
   * The largest index at or below `index` whose term is at most `term`: where the two logs
   * can first agree. Both ends of fast backtracking use it (etcd's findConflictByTerm).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex);
    for (; i > this.#snapshotIndex; i--) {
      const t = this.term(i) as number;
      if (t <= term) return i;
    }
    return i;
  }

  /** Forgets entries up to `index`, which a durable snapshot now covers. */
  compact(index: number): void {
    const term = this.term(index);
    invariant(term !== undefined && index <= this.lastIndex, `compact to ${index} outside the log`);
    this.#entries = this.#entries.slice(index - this.#snapshotIndex);
    this.#snapshotIndex = index;
    this.#snapshotTerm = term;
  }

  /**
   * Replaces the log's prefix by a snapshot received from the leader. A suffix that matches the
   * snapshot's last entry is kept (§7, compaction/memsnapshot.tex); otherwise the log is discarded.
   * Returns whether the suffix was kept.
   */
  installSnapshot(index: number, term: number): boolean {
    const keep = index <= this.lastIndex && this.term(index) === term;
    this.#entries = keep ? this.#entries.slice(index - this.#snapshotIndex) : [];
    this.#snapshotIndex = index;
    this.#snapshotTerm = term;
    return keep;
  }
}
