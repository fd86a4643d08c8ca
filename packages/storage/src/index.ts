/**
 * Durable storage for applications: Raft's log and state, and the Paxos acceptor's, on LMDB
 * (fsync before a write resolves) or in memory. The memory disks with crash semantics and their
 * durability schedule, for tests and the simulator, are internals: "@quorate/storage/internal".
 */
export { LmdbAcceptorStorage, openLmdbAcceptorStorage } from "./acceptor-lmdb.js";
export { createMemoryAcceptorStorage, MemoryAcceptorStorage } from "./acceptor-memory.js";
export type { AcceptorState, AcceptorWrite } from "./acceptor-types.js";
export { type LmdbRaftStorage, openLmdbStorage } from "./lmdb.js";
export {
  type GroupFlush,
  LmdbGroups,
  type LmdbGroupsOptions,
  type LmdbGroupsStats,
  openLmdbGroups,
} from "./lmdb-groups.js";
export { createMemoryStorage, MemoryRaftStorage } from "./memory.js";
export type {
  HardState,
  OpenOptions,
  RaftState,
  RaftStorage,
  RaftWrite,
  SnapshotMeta,
  StoredEntry,
  StoredSnapshot,
} from "./types.js";
