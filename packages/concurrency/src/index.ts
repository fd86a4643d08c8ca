export {
  type CampaignOptions,
  DEFAULT_ELECTION_PREFIX,
  Election,
  type ElectionLeader,
  ElectionObserver,
  type ElectionOptions,
} from "./election.js";
export { DEFAULT_LOCK_PREFIX, Lock, type LockOptions, Mutex, type MutexOptions } from "./mutex.js";
export type { ConcurrencyKv, LeaseRef } from "./queue.js";
