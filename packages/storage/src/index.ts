export { LmdbAcceptorStorage, openLmdbAcceptorStorage } from "./acceptor-lmdb.js";
export { createMemoryAcceptorStorage, MemoryAcceptorDisk, MemoryAcceptorStorage } from "./acceptor-memory.js";
export type { AcceptorState, AcceptorWrite } from "./acceptor-types.js";
export { type LmdbRaftStorage, openLmdbStorage } from "./lmdb.js";
export {
  createMemoryStorage,
  type DurabilitySchedule,
  MemoryDisk,
  MemoryRaftStorage,
  type MemoryStorageOptions,
} from "./memory.js";
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
