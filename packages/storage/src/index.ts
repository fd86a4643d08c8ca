export { LmdbAcceptorStorage, openLmdbAcceptorStorage } from "./acceptor-lmdb.js";
export { createMemoryAcceptorStorage, MemoryAcceptorDisk, MemoryAcceptorStorage } from "./acceptor-memory.js";
export { AcceptorShape, compareBallots } from "./acceptor-shape.js";
export { type AcceptorState, type AcceptorStorage, type AcceptorWrite, NO_BALLOT } from "./acceptor-types.js";
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
