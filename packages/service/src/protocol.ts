import {
  bytes,
  ErrorCode,
  type Infer,
  literal,
  nullable,
  object,
  optional,
  SessionErrorCode,
  string,
  uint,
  type Validator,
} from "@quorate/core";
import { MAX_CLIENT_ID_LENGTH, MAX_CLIENT_NAME_LENGTH, sessionTag } from "./sessions.js";

/**
 * The request/reply envelope every replicated service shares, msgpack-encoded with core's
 * packValue. Requests go to rpcSubject(scope, service) (a queue group: any member answers) or
 * rpcSubject(scope, service, member) (one member, for forwarding to the leader).
 */

/** The queue group a service's members answer its cluster subject in: one member per request. */
export function queueGroupOf(service: string): string {
  return `quorate-${service}`;
}

/** A member forwards a request to the leader it knows only while fewer hops were taken. */
export const MAX_FORWARD_HOPS = 2;

/** What every request carries: its operation, and how often members forwarded it. */
export interface ServiceRequest {
  readonly op: string;
  readonly hops?: number | undefined;
}

const hops = optional(uint);
const sessionName = (v: unknown): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_CLIENT_NAME_LENGTH;

/** Opens a session in the replicated session table; the reply's value is the session's client id. */
export const openRequest = object({ op: literal("open"), name: sessionName, hops });
export type OpenRequest = Infer<typeof openRequest>;

/** A command of the hosted state machine, in a session: applied exactly once however often it is retried. */
const commandRequest = object({ op: literal("command"), command: bytes, session: sessionTag, hops });
/** A query of the hosted state machine, answered after a linearizable read point. */
const queryRequest = object({ op: literal("query"), query: bytes, hops });

/** The requests of serveReplicated: open a session, run a command, run a query. */
export type ReplicatedRequest = OpenRequest | Infer<typeof commandRequest> | Infer<typeof queryRequest>;
export const replicatedRequest: Validator<ReplicatedRequest> = (v): v is ReplicatedRequest =>
  openRequest(v) || commandRequest(v) || queryRequest(v);

/** Error codes a reply may carry: core's, and the session table's. */
export type ServiceReplyCode = ErrorCode | SessionErrorCode;

export const serviceReplyCode: Validator<ServiceReplyCode> = literal<ServiceReplyCode>(
  ...Object.values(ErrorCode),
  ...Object.values(SessionErrorCode),
);

/** A failed request: its code, a message, and the leader the member knows of (on NotLeader). */
export interface ServiceFailure {
  readonly ok: false;
  readonly code: ServiceReplyCode;
  readonly message: string;
  readonly leader: string | null;
}

/**
 * A reply. On success `value` depends on the op; `servedBy` is where clients send their next
 * requests: the member that executed the request (Raft's leader), or for Paxos the learner
 * beside the active proposer.
 */
export type ServiceReply<V = unknown> =
  | { readonly ok: true; readonly value: V; readonly servedBy?: string }
  | ServiceFailure;

/** A validator of replies whose successful values satisfy `value`. */
export function serviceReply<V>(value: Validator<V>): Validator<ServiceReply<V>> {
  const ok = object({ ok: (x: unknown): x is true => x === true, value, servedBy: optional(string(64)) });
  const failed = object({
    ok: (x: unknown): x is false => x === false,
    code: serviceReplyCode,
    message: string(Number.MAX_SAFE_INTEGER),
    leader: nullable(string(64)),
  });
  return (v): v is ServiceReply<V> => ok(v) || failed(v);
}

/** The value of every serveReplicated reply: a client id (open) or a result's bytes. */
export const replicatedReply: Validator<ServiceReply<string | Uint8Array>> = serviceReply(
  (v: unknown): v is string | Uint8Array =>
    (typeof v === "string" && v.length > 0 && v.length <= MAX_CLIENT_ID_LENGTH) || bytes(v),
);
