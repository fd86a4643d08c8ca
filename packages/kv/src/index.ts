export { KvClient, type KvClientOptions, type KvWatchOptions, type KvWatchTarget } from "./client.js";
export {
  decodeKvResult,
  encodeKvCommand,
  type KvCommand,
  type KvCompare,
  type KvEntry,
  type KvResult,
  type KvResultValue,
  type KvRevisionCommand,
  type KvTxn,
  type KvTxnOp,
  type KvTxnResult,
  type KvValue,
  kvCommand,
  kvKey,
  kvValue,
  MAX_KEY_LENGTH,
  MAX_TXN_OPS,
} from "./commands.js";
export {
  KV_QUEUE_GROUP,
  KV_SERVICE,
  KV_WATCH_GROUP,
  KvCompactedError,
  type KvListedEntry,
  type KvRange,
  type KvReply,
  type KvReplyCode,
  type KvRequest,
  kvReply,
  kvRequest,
  MAX_FORWARD_HOPS,
  MAX_RANGE_LIMIT,
  watchSubject,
} from "./protocol.js";
export { createKvService, type KvService, type KvServiceOptions } from "./service.js";
export {
  DEFAULT_WATCH_WINDOW,
  type KvChange,
  type KvEvent,
  KvStateMachine,
  type KvStateMachineOptions,
} from "./state-machine.js";
