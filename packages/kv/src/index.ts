// The replicated key-value state machine and its commands: no NATS, no service. Hosting it on
// NATS (createKvService) and the client (KvClient) are in "@quorate/kv/nats".
export {
  decodeKvResult,
  encodeKvCommand,
  type KvAnyCommand,
  type KvCommand,
  type KvCompare,
  type KvEntry,
  type KvLeaseCommand,
  type KvResult,
  type KvResultCode,
  type KvResultValue,
  type KvRevisionCommand,
  type KvTxn,
  type KvTxnOp,
  type KvTxnResult,
  type KvValue,
  MAX_CHANGE_EVENTS,
  MAX_KEY_LENGTH,
  MAX_LEASE_KEYS,
  MAX_LEASE_TTL_MS,
  MAX_LEASES,
  MAX_TXN_OPS,
  MIN_LEASE_TTL_MS,
} from "./commands.js";
export { type LeaseTick, type LeaseTickerOptions, startLeaseTicker } from "./lease-ticker.js";
export {
  DEFAULT_WATCH_WINDOW,
  type KvChange,
  type KvEvent,
  type KvLeaseInfo,
  KvStateMachine,
  type KvStateMachineOptions,
} from "./state-machine.js";
