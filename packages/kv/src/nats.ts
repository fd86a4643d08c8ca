// The KV on NATS: the service a member runs (createKvService), the client (KvClient) and the
// request/reply protocol between them. The state machine and commands are in "@quorate/kv".
export {
  KvClient,
  type KvClientOptions,
  type KvKeyEntry,
  KvLease,
  type KvPage,
  type KvRangeOptions,
  KvWatch,
  type KvWatchOptions,
  type KvWatchTarget,
  type KvWriteOptions,
} from "./client.js";
export {
  assertKvGroup,
  KV_GROUP,
  KV_JSON_CONTENT_TYPE,
  KV_QUEUE_GROUP,
  KV_SERVICE,
  KV_WATCH_GROUP,
  KvCompactedError,
  type KvListedEntry,
  type KvRange,
  type KvReply,
  type KvReplyCode,
  type KvRequest,
  MAX_FORWARD_HOPS,
  MAX_RANGE_LIMIT,
  WATCH_INTEREST_MS,
  WATCH_RENEW_MS,
  watchSubject,
} from "./protocol.js";
export { createKvService, type KvService, type KvServiceOptions } from "./service.js";
export {
  kvGroupOfKey,
  kvShardGroups,
  MAX_KV_GROUPS,
  ShardedKvClient,
  type ShardedKvClientOptions,
  type ShardedKvEvent,
  ShardedKvWatch,
  type ShardedKvWatchOptions,
} from "./sharded.js";
