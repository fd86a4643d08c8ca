import type { EntryKind, Logger } from "@quorate/core";

/** The state Raft must persist before it answers any RPC (Raft §5, Figure 2), plus the commit index. */
export interface HardState {
  term: number;
  vote: string | null;
  commit: number;
}

export interface StoredEntry {
  index: number;
  term: number;
  kind: EntryKind;
  data: Uint8Array;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  /** opaque membership config, msgpack/bytes */
  config: Uint8Array;
}

export interface StoredSnapshot extends SnapshotMeta {
  data: Uint8Array;
}

/**
 * One atomic change to the durable state. Its parts apply in this order: truncation, snapshot
 * installation, append, hard state; so entries may directly follow a snapshot installed by the
 * same write.
 */
export interface RaftWrite {
  hardState?: HardState;
  /** Delete every entry with index >= truncateFrom (done before appending). */
  truncateFrom?: number;
  /** Contiguous entries; the first one's index is lastIndex+1 after truncation. */
  entries?: readonly StoredEntry[];
  /** Install a snapshot: stored, and every entry with index <= snapshot.index is removed. */
  snapshot?: StoredSnapshot;
}

export interface RaftState {
  /** {term:0, vote:null, commit:0} for a new store */
  hardState: HardState;
  snapshot: StoredSnapshot | null;
  /** every stored entry after the snapshot, in order */
  entries: StoredEntry[];
}

export interface RaftStorage {
  /** What is durable now. Called once at start. */
  load(): Promise<RaftState>;
  /** Applies the write atomically (all of it or none of it survives a crash); resolves only once durable. Writes are applied in call order. */
  write(write: RaftWrite): Promise<void>;
  /** Drops entries with index <= upTo, which a stored snapshot already covers. Durable when resolved. */
  compact(upTo: number): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  dir: string;
  cluster: string;
  member: string;
  logger?: Logger;
}
