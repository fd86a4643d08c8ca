import {
  ErrorCode,
  type Infer,
  literal,
  MAX_CLIENT_NAME_LENGTH,
  nullable,
  object,
  optional,
  SessionErrorCode,
  sessionTag,
  string,
  uint,
  type Validator,
} from "@quorate/core";
import { type KvResultValue, kvKey, kvResultValue, kvValue } from "./commands.js";

/**
 * The request/reply protocol between KvClient and the KV service, msgpack-encoded with
 * core's packValue. Requests go to rpcSubject(scope, "kv") (a queue group: any member
 * answers) or rpcSubject(scope, "kv", member) (one member, for forwarding).
 */
export const KV_SERVICE = "kv";
export const KV_QUEUE_GROUP = "quorate-kv";

/** A member forwards a request to the leader it knows only while fewer hops were taken. */
export const MAX_FORWARD_HOPS = 2;

const hops = optional(uint);
const sessionName = (v: unknown): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_CLIENT_NAME_LENGTH;

const getRequest = object({ op: literal("get"), key: kvKey, hops });
const putRequest = object({ op: literal("put"), key: kvKey, value: kvValue, session: sessionTag, hops });
const deleteRequest = object({ op: literal("delete"), key: kvKey, session: sessionTag, hops });
const casRequest = object({
  op: literal("cas"),
  key: kvKey,
  expected: nullable(kvValue),
  value: kvValue,
  session: sessionTag,
  hops,
});
/** Opens a client session; the reply's value is the session's client id. */
const openRequest = object({ op: literal("open"), name: sessionName, hops });

export type KvReadRequest = Infer<typeof getRequest>;
export type KvWriteRequest = Infer<typeof putRequest> | Infer<typeof deleteRequest> | Infer<typeof casRequest>;
export type KvOpenRequest = Infer<typeof openRequest>;
export type KvRequest = KvReadRequest | KvWriteRequest | KvOpenRequest;

export const kvRequest: Validator<KvRequest> = (v): v is KvRequest =>
  getRequest(v) || putRequest(v) || deleteRequest(v) || casRequest(v) || openRequest(v);

/** Error codes a reply may carry: core's, and the session table's. */
export type KvReplyCode = ErrorCode | SessionErrorCode;

/**
 * A reply. `value` by op: get → the stored value or null; put → null; delete → whether the
 * key existed; cas → whether it swapped; open → the session's client id.
 */
export type KvReply =
  | {
      readonly ok: true;
      readonly value: KvResultValue;
      /** The member that executed the request: the leader. Clients send their next requests there. */
      readonly servedBy?: string;
    }
  | { readonly ok: false; readonly code: KvReplyCode; readonly message: string; readonly leader: string | null };

export const kvReply: Validator<KvReply> = (v): v is KvReply =>
  object({
    ok: (x: unknown): x is true => x === true,
    value: kvResultValue,
    servedBy: optional(string(64)),
  })(v) ||
  object({
    ok: (x: unknown): x is false => x === false,
    code: literal<KvReplyCode>(...Object.values(ErrorCode), ...Object.values(SessionErrorCode)),
    message: string(Number.MAX_SAFE_INTEGER),
    leader: nullable(string(64)),
  })(v);

/**
 * Requests with this `Content-Type` header are JSON, and so are their replies (which carry the
 * header too). JSON has no bytes, so a bytes value or expected value is written
 * `{ "bytes": "<base64>" }`; everything else is as in msgpack. Without the header (or with any
 * other value) requests and replies are msgpack.
 */
export const KV_JSON_CONTENT_TYPE = "application/json";
export const CONTENT_TYPE_HEADER = "Content-Type";

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
