export { KvClient, type KvClientOptions } from "./client.js";
export {
  decodeKvResult,
  encodeKvCommand,
  type KvCommand,
  type KvResult,
  type KvResultValue,
  type KvValue,
  kvCommand,
  kvKey,
  kvValue,
  MAX_KEY_LENGTH,
} from "./commands.js";
export {
  KV_JSON_CONTENT_TYPE,
  KV_QUEUE_GROUP,
  KV_SERVICE,
  type KvReply,
  type KvReplyCode,
  type KvRequest,
  kvReply,
  kvRequest,
  MAX_FORWARD_HOPS,
} from "./protocol.js";
export { createKvService, type KvService, type KvServiceOptions } from "./service.js";
export { KvStateMachine } from "./state-machine.js";
