import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ClosedConnectionError,
  DrainingConnectionError,
  type NatsConnection,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import {
  assertToken,
  ErrorCode,
  MAX_CLIENT_NAME_LENGTH,
  packValue,
  QuorateError,
  rpcSubject,
  SessionErrorCode,
  type SessionTag,
  unpackValue,
  type Validator,
} from "@quorate/core";
import { Attr, context, injectHeaders, messagingAttributes, SpanKind, SpanName, traced } from "@quorate/telemetry";
import { connectNats, type NatsConnectOptions, toMsgHdrs } from "@quorate/transport-nats";
import { type KvCommand, type KvResultValue, type KvValue, kvKey, kvValue, MAX_KEY_LENGTH } from "./commands.js";
import { KV_SERVICE, type KvReply, type KvReplyCode, type KvRequest, kvReply } from "./protocol.js";

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 2_000;
const FIRST_BACKOFF_MS = 20;
const MAX_BACKOFF_MS = 1_000;

export interface KvClientOptions {
  /**
   * A NATS connection to use, which `close()` leaves open; or server URL(s) or connection
   * options, for a connection the client makes and closes itself.
   */
  readonly nats: NatsConnection | string | readonly string[] | NatsConnectOptions;
  readonly cluster: string;
  readonly prefix?: string;
  /** How long one call may take, retries included. Default 10 s. */
  readonly timeoutMs?: number;
  /** How long one attempt waits for a reply. Default 2 s. */
  readonly requestTimeoutMs?: number;
  /** Names this client's sessions in the replicated session table. A random UUID by default. */
  readonly clientId?: string;
  /**
   * Fail at once with Unreachable when no KV member is subscribed (NATS "no responders"),
   * instead of retrying until `timeoutMs`. For tools, where it means a wrong cluster name or
   * server; a service keeps the default (false) to ride out members restarting.
   */
  readonly failWithoutResponders?: boolean;
}

/** A session opened in the replicated session table. */
interface ClientSession {
  /** The client id the session table assigned. */
  readonly client: string;
  nextSeq: number;
  /** Seqs of calls still running; the lowest is what the session has not acknowledged yet. */
  readonly outstanding: Set<number>;
}

/** How an attempt that did not succeed failed. */
interface Failure {
  readonly ok: false;
  readonly error: QuorateError;
  /** The attempt may have taken effect. */
  readonly uncertain: boolean;
  /** Another attempt may succeed. */
  readonly retriable: boolean;
  /** The session table did not know the session: it expired. */
  readonly sessionExpired: boolean;
}

type Attempt<T> = { readonly ok: true; readonly value: T } | Failure;

/** How a service's error reply is handled: the code the caller sees, and whether to retry. */
const REPLY_FAILURES: Record<KvReplyCode, { code: ErrorCode; uncertain: boolean; retriable: boolean }> = {
  [ErrorCode.NotLeader]: { code: ErrorCode.NotLeader, uncertain: false, retriable: true },
  [ErrorCode.NoQuorum]: { code: ErrorCode.NoQuorum, uncertain: false, retriable: true },
  [ErrorCode.Busy]: { code: ErrorCode.Busy, uncertain: false, retriable: true },
  [ErrorCode.Closed]: { code: ErrorCode.Closed, uncertain: false, retriable: true },
  [ErrorCode.Unreachable]: { code: ErrorCode.Unreachable, uncertain: false, retriable: true },
  [ErrorCode.Storage]: { code: ErrorCode.Storage, uncertain: false, retriable: true },
  [ErrorCode.Indeterminate]: { code: ErrorCode.Indeterminate, uncertain: true, retriable: true },
  [ErrorCode.Rejected]: { code: ErrorCode.Rejected, uncertain: false, retriable: false },
  [ErrorCode.Config]: { code: ErrorCode.Config, uncertain: false, retriable: false },
  [ErrorCode.Membership]: { code: ErrorCode.Membership, uncertain: false, retriable: false },
  [ErrorCode.ChangeInProgress]: { code: ErrorCode.ChangeInProgress, uncertain: false, retriable: true },
  [ErrorCode.Invariant]: { code: ErrorCode.Invariant, uncertain: true, retriable: false },
  [SessionErrorCode.MalformedCommand]: { code: ErrorCode.Rejected, uncertain: false, retriable: false },
  // The seq was applied (or abandoned) before; its result is gone.
  [SessionErrorCode.ResultDiscarded]: { code: ErrorCode.Indeterminate, uncertain: true, retriable: false },
  // This attempt applied nothing. A write retries in a new session unless an earlier attempt may have applied.
  [SessionErrorCode.SessionExpired]: { code: ErrorCode.Rejected, uncertain: false, retriable: true },
};

const isNull = (v: unknown): v is null => v === null;
const isBoolean = (v: unknown): v is boolean => typeof v === "boolean";
const isStoredValue = (v: unknown): v is KvValue | null => v === null || kvValue(v);
const isClientId = (v: unknown): v is string => typeof v === "string" && v.length > 0;

function checkKey(key: unknown): asserts key is string {
  if (!kvKey(key)) {
    throw new QuorateError(ErrorCode.Config, `a key must be a string of 1 to ${MAX_KEY_LENGTH} characters`);
  }
}

function checkValue(what: string, value: unknown): asserts value is KvValue {
  if (!kvValue(value)) throw new QuorateError(ErrorCode.Config, `${what} must be a string or a Uint8Array`);
}

function checkTimeout(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new QuorateError(ErrorCode.Config, `${name} must be a positive integer of milliseconds (got ${value})`);
  }
}

/** The lowest seq whose call has not finished: results below it are no longer needed. */
function firstUnacked(session: ClientSession): number {
  let lowest = session.nextSeq;
  for (const seq of session.outstanding) if (seq < lowest) lowest = seq;
  return lowest;
}

/** Decoded bytes are Buffers; callers get plain Uint8Arrays, as they put them. */
function plainValue(value: KvValue | null): KvValue | null {
  return value instanceof Uint8Array ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : value;
}

function decodeReply(data: Uint8Array): KvReply | null {
  try {
    const reply = unpackValue(data);
    return kvReply(reply) ? reply : null;
  } catch {
    return null;
  }
}

/** The error a write throws: Indeterminate as soon as any attempt may have taken effect. */
function writeError(op: string, last: QuorateError, uncertain: boolean): QuorateError {
  if (!uncertain || last.code === ErrorCode.Indeterminate) return last;
  const message = `${op} may have taken effect in an earlier attempt; last attempt: ${last.message}`;
  return new QuorateError(ErrorCode.Indeterminate, message, { cause: last });
}

/** The error a get or a session open throws: these take no effect, so nothing is indeterminate. */
function idempotentError(last: QuorateError): QuorateError {
  if (last.code !== ErrorCode.Indeterminate) return last;
  return new QuorateError(ErrorCode.Unreachable, last.message, { cause: last });
}

/**
 * A client of the replicated KV service. Writes run in a session, so a retried write is
 * applied at most once; see the package README for the retry and error semantics.
 */
export class KvClient {
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  readonly #subject: string;
  readonly #scope: { cluster: string; prefix: string | undefined };
  /**
   * The member that served the last request: the leader, as far as this client knows. Requests
   * go straight to it, saving the forwarding hop; on any doubt they go to the queue group again.
   */
  #preferred: string | null = null;
  readonly #name: string;
  readonly #timeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #failWithoutResponders: boolean;
  #session: ClientSession | null = null;
  #opening: Promise<ClientSession> | null = null;
  #closed = false;

  private constructor(
    nc: NatsConnection,
    ownsConnection: boolean,
    scope: { cluster: string; prefix: string | undefined },
    name: string,
    timeoutMs: number,
    requestTimeoutMs: number,
    failWithoutResponders: boolean,
  ) {
    this.#nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#scope = scope;
    this.#subject = rpcSubject(scope, KV_SERVICE);
    this.#name = name;
    this.#timeoutMs = timeoutMs;
    this.#requestTimeoutMs = requestTimeoutMs;
    this.#failWithoutResponders = failWithoutResponders;
  }

  static async connect(options: KvClientOptions): Promise<KvClient> {
    assertToken("cluster", options.cluster);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    checkTimeout("timeoutMs", timeoutMs);
    checkTimeout("requestTimeoutMs", requestTimeoutMs);
    const name = options.clientId ?? randomUUID();
    if (name.length === 0 || name.length > MAX_CLIENT_NAME_LENGTH) {
      throw new QuorateError(ErrorCode.Config, `clientId must have 1 to ${MAX_CLIENT_NAME_LENGTH} characters`);
    }
    const scope = { cluster: options.cluster, prefix: options.prefix };
    const { nats } = options;
    const failWithoutResponders = options.failWithoutResponders ?? false;
    if (typeof nats === "object" && "request" in nats) {
      return new KvClient(nats, false, scope, name, timeoutMs, requestTimeoutMs, failWithoutResponders);
    }
    const connectOptions: NatsConnectOptions = typeof nats === "object" && "servers" in nats ? nats : { servers: nats };
    const nc = await connectNats({ name: `quorate-kv-client-${name}`, ...connectOptions });
    return new KvClient(nc, true, scope, name, timeoutMs, requestTimeoutMs, failWithoutResponders);
  }

  /** The value stored under `key` (a string or bytes, as it was put), or null. Linearizable. */
  async get(key: string): Promise<KvValue | null> {
    checkKey(key);
    return this.#traced("get", key, async () =>
      plainValue(await this.#idempotent({ op: "get", key }, this.#deadline(), isStoredValue)),
    );
  }

  async put(key: string, value: KvValue): Promise<void> {
    checkKey(key);
    checkValue("value", value);
    await this.#traced("put", key, () => this.#write({ op: "put", key, value }, isNull));
  }

  /** Deletes `key`; resolves to whether it existed. */
  async delete(key: string): Promise<boolean> {
    checkKey(key);
    return this.#traced("delete", key, () => this.#write({ op: "delete", key }, isBoolean));
  }

  /**
   * Sets `key` to `value` if it holds `expected` (same type and content), or, with `expected`
   * null, if it is absent. Resolves to whether it did.
   */
  async cas(key: string, expected: KvValue | null, value: KvValue): Promise<boolean> {
    checkKey(key);
    if (expected !== null) checkValue("expected", expected);
    checkValue("value", value);
    return this.#traced("cas", key, () => this.#write({ op: "cas", key, expected, value }, isBoolean));
  }

  /** Each call is a CLIENT span, so an application's trace continues into the round that serves it. */
  #traced<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    return traced(
      SpanName.kvClient(op),
      SpanKind.CLIENT,
      { [Attr.kvKey]: key, ...messagingAttributes("publish", this.#subject) },
      fn,
    );
  }

  /** Stops the client; calls still running fail. Closes the NATS connection only if the client made it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsConnection && !this.#nc.isClosed()) await this.#nc.close();
  }

  #deadline(): number {
    if (this.#closed) throw new QuorateError(ErrorCode.Closed, "the KV client is closed");
    return performance.now() + this.#timeoutMs;
  }

  /** Runs a write in the session, retrying the same (client, seq) until it succeeds or the deadline passes. */
  async #write<T extends KvResultValue>(command: Exclude<KvCommand, { op: "get" }>, expect: Validator<T>): Promise<T> {
    const deadline = this.#deadline();
    let session = await this.#openSession(deadline);
    let seq = session.nextSeq++;
    session.outstanding.add(seq);
    let uncertain = false;
    try {
      for (let attempt = 0; ; attempt++) {
        const tag: SessionTag = { client: session.client, seq, firstUnacked: firstUnacked(session) };
        const outcome = await this.#attempt({ ...command, session: tag }, deadline, expect);
        if (outcome.ok) return outcome.value;
        if (outcome.sessionExpired) {
          if (this.#session === session) this.#session = null;
          if (uncertain) throw writeError(command.op, outcome.error, uncertain);
          // No attempt took effect: the command moves to a new session as a new command.
          session.outstanding.delete(seq);
          session = await this.#openSession(deadline);
          seq = session.nextSeq++;
          session.outstanding.add(seq);
        }
        uncertain ||= outcome.uncertain;
        if (!outcome.retriable || !(await this.#backoff(attempt, deadline))) {
          throw writeError(command.op, outcome.error, uncertain);
        }
      }
    } finally {
      session.outstanding.delete(seq);
    }
  }

  /** Runs a request that takes no effect when repeated, retrying until the deadline. */
  async #idempotent<T extends KvResultValue>(request: KvRequest, deadline: number, expect: Validator<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#attempt(request, deadline, expect);
      if (outcome.ok) return outcome.value;
      if (!outcome.retriable || !(await this.#backoff(attempt, deadline))) throw idempotentError(outcome.error);
    }
  }

  /** The open session, or a new one; concurrent calls share one open request. */
  #openSession(deadline: number): Promise<ClientSession> {
    if (this.#session !== null) return Promise.resolve(this.#session);
    this.#opening ??= this.#idempotent({ op: "open", name: this.#name }, deadline, isClientId)
      .then((client) => {
        const session: ClientSession = { client, nextSeq: 1, outstanding: new Set() };
        this.#session = session;
        return session;
      })
      .finally(() => {
        this.#opening = null;
      });
    return this.#opening;
  }

  async #attempt<T extends KvResultValue>(
    request: KvRequest,
    deadline: number,
    expect: Validator<T>,
  ): Promise<Attempt<T>> {
    const data = packValue(request);
    const maxPayload = this.#nc.info?.max_payload;
    if (maxPayload !== undefined && data.length > maxPayload) {
      const error = new QuorateError(
        ErrorCode.Config,
        `the ${request.op} request is ${data.length} bytes, more than the server's max_payload of ${maxPayload}`,
      );
      return { ok: false, error, uncertain: false, retriable: false, sessionExpired: false };
    }
    const timeout = Math.max(1, Math.min(this.#requestTimeoutMs, Math.ceil(deadline - performance.now())));
    let replyData: Uint8Array;
    const subject = this.#preferred === null ? this.#subject : rpcSubject(this.#scope, KV_SERVICE, this.#preferred);
    try {
      const trace = injectHeaders(context.active());
      replyData = (await this.#nc.request(subject, data, { timeout, ...(trace && toMsgHdrs(trace)) })).data;
    } catch (err) {
      this.#preferred = null;
      return this.#requestFailure(err, timeout, subject);
    }
    const reply = decodeReply(replyData);
    if (reply !== null) {
      if (reply.ok && expect(reply.value)) {
        this.#preferred = reply.servedBy ?? null;
        return { ok: true, value: reply.value };
      }
      if (!reply.ok) {
        this.#preferred = reply.code === ErrorCode.NotLeader ? reply.leader : null;
        const { code, uncertain, retriable } = REPLY_FAILURES[reply.code];
        const error = new QuorateError(code, reply.message, { leader: reply.leader });
        return {
          ok: false,
          error,
          uncertain,
          retriable,
          sessionExpired: reply.code === SessionErrorCode.SessionExpired,
        };
      }
    }
    const error = new QuorateError(ErrorCode.Invariant, `malformed reply to a ${request.op} request`);
    return { ok: false, error, uncertain: true, retriable: false, sessionExpired: false };
  }

  #requestFailure(err: unknown, timeoutMs: number, subject: string): Failure {
    const failure = (code: ErrorCode, message: string, uncertain: boolean, retriable: boolean): Failure => ({
      ok: false,
      error: new QuorateError(code, message, { cause: err }),
      uncertain,
      retriable,
      sessionExpired: false,
    });
    if (err instanceof TimeoutError) {
      return failure(ErrorCode.Indeterminate, `no reply within ${timeoutMs} ms`, true, true);
    }
    if (err instanceof RequestError && err.isNoResponders()) {
      // The server answered for the subject: nothing was delivered.
      // Only the cluster's own subject tells that no member at all is there; a preferred member may just have gone.
      const retriable = !(this.#failWithoutResponders && subject === this.#subject);
      return failure(ErrorCode.Unreachable, `no KV service member serves ${subject}`, false, retriable);
    }
    const detail = err instanceof Error ? err.message : String(err);
    if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError) {
      // Refused before anything was sent.
      return failure(ErrorCode.Closed, `the NATS connection is closed (${detail})`, false, false);
    }
    if (this.#nc.isClosed()) {
      return failure(ErrorCode.Closed, `the NATS connection closed during the request (${detail})`, true, false);
    }
    // Connection lost with the request in flight.
    return failure(ErrorCode.Indeterminate, `request failed: ${detail}`, true, true);
  }

  /** Waits before the next attempt; false when that would pass the deadline or the client closed. */
  async #backoff(attempt: number, deadline: number): Promise<boolean> {
    const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    if (this.#closed || performance.now() + delay >= deadline) return false;
    await sleep(delay);
    return !this.#closed;
  }
}
