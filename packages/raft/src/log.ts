import { EntryKind } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import { type ClusterConfig, decodeConfig, type IndexedConfig } from "./config.js";
import type { EntryRecord } from "./messages.js";

/** An entry of the replicated log. Its index is its position; terms never decrease along the log. */
export type LogEntry = EntryRecord;

/** Per-entry overhead counted against message size caps, beside the command bytes. */
const ENTRY_OVERHEAD_BYTES = 16;

export function entryBytes(entry: LogEntry): number {
  return entry.data.length + ENTRY_OVERHEAD_BYTES;
}

export interface RaftLogInit {
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  /** The configuration in force at `snapshotIndex`: the snapshot's, or the bootstrap one. */
  readonly snapshotConfig: ClusterConfig;
  readonly entries: readonly LogEntry[];
}

/**
 * The in-memory mirror of the log, owned by the host and referenced (never copied) by the
 * machine. Indexes start at 1; `snapshotIndex` is the last index covered by a snapshot,
 * and entries after it are held in order.
 *
 * It also tracks membership: a member uses the latest configuration in its log, committed or
 * not (thesis §4.1), so a configuration changes with the log, and a truncated configuration
 * entry brings back the one before it.
 */
export class RaftLog {
  #entries: LogEntry[] = [];
  #snapshotIndex = 0;
  #snapshotTerm = 0;
  #snapshotConfig: IndexedConfig;
  /** Configuration entries after the snapshot, in log order. */
  #configs: IndexedConfig[] = [];

  constructor(init: RaftLogInit) {
    this.#snapshotIndex = init.snapshotIndex;
    this.#snapshotTerm = init.snapshotTerm;
    this.#snapshotConfig = { index: init.snapshotIndex, ...init.snapshotConfig };
    this.append(init.entries);
  }

  /** The configuration in force: the latest in the log. */
  get config(): IndexedConfig {
    return this.#configs.at(-1) ?? this.#snapshotConfig;
  }

  /** The configuration in force at `index` (at or after the snapshot), for a snapshot taken there. */
  configAt(index: number): IndexedConfig {
    invariant(index >= this.#snapshotIndex, `configuration at ${index} is inside snapshot ${this.#snapshotIndex}`);
    let found = this.#snapshotConfig;
    for (const config of this.#configs) {
      if (config.index > index) break;
      found = config;
    }
    return found;
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
      if (entry.kind === EntryKind.Config) this.#configs.push({ index: this.lastIndex, ...decodeConfig(entry.data) });
    }
  }

  /** Removes every entry at `index` and after. Only conflicting, uncommitted entries are ever removed. */
  truncateFrom(index: number): void {
    invariant(index > this.#snapshotIndex, `truncate at ${index} inside snapshot ${this.#snapshotIndex}`);
    this.#entries.length = Math.max(0, index - this.#snapshotIndex - 1);
    while ((this.#configs.at(-1)?.index ?? 0) >= index) this.#configs.pop();
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
    this.#snapshotConfig = this.configAt(index);
    this.#configs = this.#configs.filter((c) => c.index > index);
    this.#entries = this.#entries.slice(index - this.#snapshotIndex);
    this.#snapshotIndex = index;
    this.#snapshotTerm = term;
  }

  /**
   * Replaces the log's prefix by a snapshot received from the leader. A suffix that matches the
   * snapshot's last entry is kept (§7, compaction/memsnapshot.tex); otherwise the log is discarded.
   * Returns whether the suffix was kept.
   */
  installSnapshot(index: number, term: number, config: ClusterConfig): boolean {
    const keep = index <= this.lastIndex && this.term(index) === term;
    this.#entries = keep ? this.#entries.slice(index - this.#snapshotIndex) : [];
    this.#configs = keep ? this.#configs.filter((c) => c.index > index) : [];
    this.#snapshotConfig = { index, ...config };
    this.#snapshotIndex = index;
    this.#snapshotTerm = term;
    return keep;
  }
}
