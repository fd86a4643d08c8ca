import {
  arrayOf,
  assertToken,
  bool,
  broadcastSubject,
  ErrorCode,
  type Infer,
  literal,
  type NodeId,
  nullable,
  object,
  optional,
  QuorateError,
  string,
  uint,
  type Validator,
} from "@quorate/core";
import {
  CONTENT_TYPE_HEADER,
  JSON_CONTENT_TYPE,
  MAX_FORWARD_HOPS,
  openRequest,
  queueGroupOf,
  type ServiceReplyCode,
  serviceReplyCode,
  sessionTag,
} from "@quorate/service";
import {
  type KvEntry,
  type KvResultValue,
  kvCompare,
  kvEntry,
  kvKey,
  kvResultValue,
  kvTxnOp,
  kvValue,
  leaseId,
  leaseTtl,
  MAX_CHANGE_EVENTS,
  MAX_KEY_LENGTH,
  MAX_LEASE_KEYS,
  MAX_TXN_OPS,
} from "./commands.js";
import type { KvChange, KvEvent, KvLeaseInfo } from "./state-machine.js";

/**
 * The request/reply protocol between KvClient and the KV service, msgpack-encoded with
 * core's packValue. Requests go to rpcSubject(scope, "kv") (a queue group: any member
 * answers) or rpcSubject(scope, "kv", member) (one member, for forwarding).
 */
export const KV_SERVICE = "kv";
export const KV_QUEUE_GROUP = queueGroupOf(KV_SERVICE);

/**
 * The consensus group of a KV that is not sharded, and every KV call's default. A KV in group g
 * serves on the service token g (rpcSubject(scope, g)) and publishes changes on `g-watch`: the
 * default group keeps the subjects "kv" and "kv-watch".
 */
export const KV_GROUP = KV_SERVICE;

/** What ends a subject group of watch publications; a KV group's name cannot end with it. */
const WATCH_SUFFIX = "-watch";

/**
 * The subject group of the default group's watch publications: member m publishes every change
 * it applies on `<prefix>.<cluster>.kv-watch.b.<m>`, a broadcast subject, so NATS permissions
 * that pin a member to its own broadcast subjects cover it.
 */
export const KV_WATCH_GROUP = `${KV_GROUP}${WATCH_SUFFIX}`;

/** Refuses a KV group name that is not a subject token, or that would take another group's watch subjects. */
export function assertKvGroup(group: string): void {
  assertToken("group", group);
  if (group.endsWith(WATCH_SUFFIX)) {
    throw new QuorateError(
      ErrorCode.Config,
      `KV group '${group}' ends with '${WATCH_SUFFIX}', which names the watch subjects of group '${group.slice(0, -WATCH_SUFFIX.length)}'`,
    );
  }
}

/**
 * A member publishes the changes it applies on its watch subject for this long after a watch
 * request reached it, and otherwise only its heartbeats: without watchers, no socket write per
 * change. A watcher that let it lapse sees a heartbeat past its position and catches up by request.
 */
export const WATCH_INTEREST_MS = 15_000;
/** A watch that follows a member asks it again this often (a catch-up request), so its interest never lapses. */
export const WATCH_RENEW_MS = 5_000;

export function watchSubject(scope: { prefix?: string; cluster: string }, member: NodeId, group = KV_GROUP): string {
  return broadcastSubject({ ...scope, group: `${group}${WATCH_SUFFIX}` }, member);
}

export { CONTENT_TYPE_HEADER, MAX_FORWARD_HOPS };

/** Most entries one range (or watch catch-up) reply carries; a caller pages on with `fromKey`. */
export const MAX_RANGE_LIMIT = 1000;

const hops = optional(uint);
const limit = (v: unknown): v is number => uint(v) && v >= 1 && v <= MAX_RANGE_LIMIT;
/** A key prefix: empty (every key) or a key's beginning. */
const kvPrefix = string(MAX_KEY_LENGTH);

const getRequest = object({ op: literal("get", "entry"), key: kvKey, hops });
/** A lease's remaining TTL and keys (timeToLive): a read, after a read barrier. */
const leaseRequest = object({ op: literal("lease"), lease: leaseId, hops });
const rangeRequest = object({
  op: literal("range"),
  prefix: kvPrefix,
  fromKey: optional(kvKey),
  limit,
  keysOnly: bool,
  hops,
});
/**
 * Served by the member it reaches from its window: the changes after revision `after` (which
 * every member numbers alike) matching `key` or `prefix`. Without `after`, nothing but the
 * member's revision after a read barrier, where a watch of "from now on" starts (forwarded to
 * the leader, as a get is, when the barrier needs it).
 */
const watchRequest = object({
  op: literal("watch"),
  key: optional(kvKey),
  prefix: optional(kvPrefix),
  after: optional(uint),
  limit,
  hops,
});
const putRequest = object({
  op: literal("put", "create"),
  key: kvKey,
  value: kvValue,
  lease: optional(leaseId),
  session: sessionTag,
  hops,
});
const updateRequest = object({
  op: literal("update"),
  key: kvKey,
  value: kvValue,
  revision: uint,
  lease: optional(leaseId),
  session: sessionTag,
  hops,
});
const grantRequest = object({ op: literal("grant"), ttlMs: leaseTtl, session: sessionTag, hops });
const leaseWriteRequest = object({ op: literal("keepAlive", "revoke"), lease: leaseId, session: sessionTag, hops });
const deleteRequest = object({
  op: literal("delete"),
  key: kvKey,
  revision: optional(uint),
  session: sessionTag,
  hops,
});
const casRequest = object({
  op: literal("cas"),
  key: kvKey,
  expected: nullable(kvValue),
  value: kvValue,
  session: sessionTag,
  hops,
});
const txnRequest = object({
  op: literal("txn"),
  compare: arrayOf(kvCompare, MAX_TXN_OPS),
  success: arrayOf(kvTxnOp, MAX_TXN_OPS),
  failure: optional(arrayOf(kvTxnOp, MAX_TXN_OPS)),
  session: sessionTag,
  hops,
});

export type KvReadRequest = Infer<typeof getRequest> | Infer<typeof rangeRequest> | Infer<typeof leaseRequest>;
export type KvWatchRequest = Infer<typeof watchRequest>;
/** Writes: the state machine (encodeKvCommand) validates their exact shape again when applied. */
export type KvWriteRequest =
  | Infer<typeof putRequest>
  | Infer<typeof updateRequest>
  | Infer<typeof deleteRequest>
  | Infer<typeof casRequest>
  | Infer<typeof txnRequest>
  | Infer<typeof grantRequest>
  | Infer<typeof leaseWriteRequest>;
/** Opens a client session; the reply's value is the session's client id. */
export type KvOpenRequest = Infer<typeof openRequest>;
export type KvRequest = KvReadRequest | KvWatchRequest | KvWriteRequest | KvOpenRequest;

export const kvRequest: Validator<KvRequest> = (v): v is KvRequest =>
  getRequest(v) ||
  rangeRequest(v) ||
  watchRequest(v) ||
  putRequest(v) ||
  updateRequest(v) ||
  deleteRequest(v) ||
  casRequest(v) ||
  txnRequest(v) ||
  grantRequest(v) ||
  leaseWriteRequest(v) ||
  leaseRequest(v) ||
  openRequest(v);

/** One key of a range reply. `value` is absent when only keys were asked for. */
export interface KvListedEntry extends Omit<KvEntry, "value"> {
  readonly key: string;
  readonly value?: KvEntry["value"];
}

/** A page of a range: `next` is the `fromKey` of the next page, or null when this was the last. */
export interface KvRange {
  readonly entries: readonly KvListedEntry[];
  readonly next: string | null;
}

export const kvListedEntry: Validator<KvListedEntry> = object({
  key: kvKey,
  value: optional(kvValue),
  revision: uint,
  createRevision: uint,
  version: uint,
  lease: optional(leaseId),
});

export const kvRange: Validator<KvRange> = object({
  entries: arrayOf(kvListedEntry, MAX_RANGE_LIMIT),
  next: nullable(kvKey),
});

/**
 * A watch catch-up reply: the matching changes after the request's `after`, and `revision`, the
 * revision through which the reply is complete (every matching change up to it is included).
 * `member` served it; the watcher follows that member's watch subject next.
 */
export interface KvWatchBatch {
  readonly member: string;
  readonly revision: number;
  readonly changes: readonly KvChange[];
}

const kvEvent: Validator<KvEvent> = object({
  op: literal("put", "delete"),
  key: kvKey,
  value: nullable(kvValue),
  revision: uint,
});

export const kvChange: Validator<KvChange> = object({
  previous: uint,
  revision: uint,
  events: arrayOf(kvEvent, MAX_CHANGE_EVENTS),
});

export const kvWatchBatch: Validator<KvWatchBatch> = object({
  member: string(64),
  revision: uint,
  changes: arrayOf(kvChange, MAX_RANGE_LIMIT),
});

export const kvLeaseInfo: Validator<KvLeaseInfo> = object({
  ttlMs: leaseTtl,
  remainingMs: uint,
  keys: arrayOf(kvKey, MAX_LEASE_KEYS),
});

/** What a successful reply carries, by op: see KvReply. */
export type KvReplyValue = KvResultValue | KvEntry | KvRange | KvWatchBatch | KvLeaseInfo;

const kvReplyValue: Validator<KvReplyValue> = (v): v is KvReplyValue =>
  kvResultValue(v) || kvEntry(v) || kvRange(v) || kvWatchBatch(v) || kvLeaseInfo(v);

/** Error codes a reply may carry: core's, and the session table's. */
export type KvReplyCode = ServiceReplyCode;

/**
 * A reply. `value` by op: get → the stored value or null; entry → a KvEntry or null; range → a
 * KvRange; watch → a KvWatchBatch; put → the revision; delete → whether it deleted; cas → whether
 * it swapped; create, update → the revision or null; txn → a KvTxnResult; open → the client id;
 * grant → the lease id; keepAlive → the lease's TTL; revoke → whether it was live; lease → a
 * KvLeaseInfo or null.
 */
export type KvReply =
  | {
      readonly ok: true;
      readonly value: KvReplyValue;
      /**
       * Where clients send their next requests: the member that executed the request (Raft's
       * leader), or for Paxos the learner beside the active proposer.
       */
      readonly servedBy?: string;
    }
  | {
      readonly ok: false;
      readonly code: KvReplyCode;
      readonly message: string;
      readonly leader: string | null;
      /** On QUORATE_COMPACTED: the oldest revision the member can serve a watch from. */
      readonly oldestRevision?: number;
    };

export const kvReply: Validator<KvReply> = (v): v is KvReply =>
  object({
    ok: (x: unknown): x is true => x === true,
    value: kvReplyValue,
    servedBy: optional(string(64)),
  })(v) ||
  object({
    ok: (x: unknown): x is false => x === false,
    code: serviceReplyCode,
    message: string(Number.MAX_SAFE_INTEGER),
    leader: nullable(string(64)),
    oldestRevision: optional(uint),
  })(v);

/**
 * Requests with this `Content-Type` header are JSON, and so are their replies (which carry the
 * header too). JSON has no bytes, so a bytes value or expected value is written
 * `{ "bytes": "<base64>" }`; everything else is as in msgpack. Without the header (or with any
 * other value) requests and replies are msgpack.
 */
export const KV_JSON_CONTENT_TYPE = JSON_CONTENT_TYPE;

/** The fields of a request or reply that hold a stored value, where JSON writes bytes as `{ bytes }`. */
const VALUE_FIELDS = ["value", "expected"] as const;

function isJsonBytes(v: unknown): v is { bytes: string } {
  return (
    typeof v === "object" &&
    v !== null &&
    Object.keys(v).length === 1 &&
    typeof (v as { bytes?: unknown }).bytes === "string"
  );
}

/** Decodes a JSON request body; the result is validated with `kvRequest` like a msgpack one. Throws on bad JSON. */
export function decodeJsonRequest(data: Uint8Array): unknown {
  const raw: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  const request = { ...(raw as Record<string, unknown>) };
  for (const field of VALUE_FIELDS) {
    const value = request[field];
    if (isJsonBytes(value)) request[field] = new Uint8Array(Buffer.from(value.bytes, "base64"));
  }
  return request;
}

/** Encodes a request or reply as JSON, bytes values as `{ bytes: base64 }`. */
export function encodeJson(message: object): Uint8Array {
  const copy: Record<string, unknown> = { ...message };
  for (const field of VALUE_FIELDS) {
    const value = copy[field];
    if (value instanceof Uint8Array) copy[field] = { bytes: Buffer.from(value).toString("base64") };
  }
  return new TextEncoder().encode(JSON.stringify(copy));
}

/** A watch asked for changes no member it reached still keeps. */
export class KvCompactedError extends QuorateError {
  /** The oldest revision the member can serve a watch from. */
  readonly oldestRevision: number;
  constructor(message: string, oldestRevision: number) {
    super(ErrorCode.Compacted, message);
    this.name = "KvCompactedError";
    this.oldestRevision = oldestRevision;
  }
}
