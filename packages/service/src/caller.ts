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
  packValue,
  QuorateError,
  rpcSubject,
  SessionErrorCode,
  unpackValue,
  type Validator,
} from "@quorate/core";
import { context, injectHeaders, messagingAttributes, SpanKind, SpanName, traced } from "@quorate/telemetry";
import { toMsgHdrs } from "@quorate/transport-nats";
import type { OpenRequest, ServiceFailure, ServiceReply, ServiceReplyCode, ServiceRequest } from "./protocol.js";
import { MAX_CLIENT_NAME_LENGTH, type SessionTag } from "./sessions.js";

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 2_000;
const FIRST_BACKOFF_MS = 20;
/** The longest wait between two attempts of a call. */
export const MAX_BACKOFF_MS = 1_000;

/** A session opened in the replicated session table. */
interface ClientSession {
  /** The client id the session table assigned. */
  readonly client: string;
  nextSeq: number;
  /** Seqs of calls still running; the lowest is what the session has not acknowledged yet. */
  readonly outstanding: Set<number>;
}

/** How an attempt that did not succeed failed. */
export interface Failure {
  readonly ok: false;
  readonly error: QuorateError;
  /** The attempt may have taken effect. */
  readonly uncertain: boolean;
  /** Another attempt may succeed. */
  readonly retriable: boolean;
  /** The session table did not know the session: it expired. */
  readonly sessionExpired: boolean;
}

export type Attempt<T> = { readonly ok: true; readonly value: T } | Failure;

/** How a service's error reply is handled: the code the caller sees, and whether to retry. */
const REPLY_FAILURES: Record<ServiceReplyCode, { code: ErrorCode; uncertain: boolean; retriable: boolean }> = {
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
  [ErrorCode.Compacted]: { code: ErrorCode.Compacted, uncertain: false, retriable: false },
  [ErrorCode.LeaseNotFound]: { code: ErrorCode.LeaseNotFound, uncertain: false, retriable: false },
  [ErrorCode.LeaseLimit]: { code: ErrorCode.LeaseLimit, uncertain: false, retriable: false },
  // Backup files only; no reply carries it.
  [ErrorCode.Corrupt]: { code: ErrorCode.Corrupt, uncertain: false, retriable: false },
};

const isClientId = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/** The lowest seq whose call has not finished: results below it are no longer needed. */
function firstUnacked(session: ClientSession): number {
  let lowest = session.nextSeq;
  for (const seq of session.outstanding) if (seq < lowest) lowest = seq;
  return lowest;
}

/** The error a write throws: Indeterminate as soon as any attempt may have taken effect. */
function writeError(op: string, last: QuorateError, uncertain: boolean): QuorateError {
  if (!uncertain || last.code === ErrorCode.Indeterminate) return last;
  const message = `${op} may have taken effect in an earlier attempt; last attempt: ${last.message}`;
  return new QuorateError(ErrorCode.Indeterminate, message, { cause: last });
}

/** The error a read or a session open throws: these take no effect, so nothing is indeterminate. */
function idempotentError(last: QuorateError): QuorateError {
  if (last.code !== ErrorCode.Indeterminate) return last;
  return new QuorateError(ErrorCode.Unreachable, last.message, { cause: last });
}

export function checkTimeout(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new QuorateError(ErrorCode.Config, `${name} must be a positive integer of milliseconds (got ${value})`);
  }
}

/** Throws Config on a caller's options that could never work: a client checks them before it connects. */
export function checkCallerOptions(options: {
  readonly name: string;
  readonly timeoutMs?: number | undefined;
  readonly requestTimeoutMs?: number | undefined;
}): void {
  checkTimeout("timeoutMs", options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  checkTimeout("requestTimeoutMs", options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  if (options.name.length === 0 || options.name.length > MAX_CLIENT_NAME_LENGTH) {
    throw new QuorateError(ErrorCode.Config, `clientId must have 1 to ${MAX_CLIENT_NAME_LENGTH} characters`);
  }
}

export interface ServiceCallerOptions<Reply extends ServiceReply> {
  readonly nc: NatsConnection;
  readonly cluster: string;
  readonly prefix?: string | undefined;
  /** The service's subject token (see serveRequests). */
  readonly service: string;
  /** The name sessions are opened with; the session table makes it unique. */
  readonly name: string;
  /** How long a call may take, its retries included. Default 10000 ms. */
  readonly timeoutMs?: number;
  /** How long one attempt waits for its reply. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  /** Fail at once with Unreachable when no member serves the cluster's subject, instead of retrying. */
  readonly failWithoutResponders?: boolean;
  /** Validates a decoded reply. */
  readonly reply: Validator<Reply>;
  /** The error a failed reply becomes, when the service has errors of its own (a subclass carrying more). */
  readonly replyError?: (reply: Reply & ServiceFailure, code: ErrorCode) => QuorateError;
}

/**
 * The calls of a client of a replicated service: requests that go to the member believed to
 * lead, retries with backoff until a deadline, and writes in a session, so a retried write is
 * applied at most once. An attempt's failure is definite (nothing was applied) or uncertain
 * (it may have been); a write that may have taken effect fails Indeterminate, never Rejected.
 */
export class ServiceCaller<Request extends ServiceRequest, Reply extends ServiceReply> {
  readonly #nc: NatsConnection;
  readonly #scope: { cluster: string; prefix: string | undefined };
  readonly #service: string;
  readonly #subject: string;
  readonly #name: string;
  readonly #timeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #failWithoutResponders: boolean;
  readonly #reply: Validator<Reply>;
  readonly #replyError: ((reply: Reply & ServiceFailure, code: ErrorCode) => QuorateError) | undefined;
  /**
   * The member that served the last request: the leader, as far as this client knows. Requests
   * go straight to it, saving the forwarding hop; on any doubt they go to the queue group again.
   */
  #preferred: string | null = null;
  #session: ClientSession | null = null;
  #opening: Promise<ClientSession> | null = null;
  #closed = false;

  constructor(options: ServiceCallerOptions<Reply>) {
    assertToken("cluster", options.cluster);
    assertToken("service", options.service);
    checkCallerOptions(options);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#nc = options.nc;
    this.#scope = { cluster: options.cluster, prefix: options.prefix };
    this.#service = options.service;
    this.#subject = rpcSubject(this.#scope, options.service);
    this.#name = options.name;
    this.#failWithoutResponders = options.failWithoutResponders ?? false;
    this.#reply = options.reply;
    this.#replyError = options.replyError;
  }

  /** The cluster's subject of the service. */
  get subject(): string {
    return this.#subject;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Fails the calls still retrying and refuses new ones. Leaves the NATS connection open. */
  close(): void {
    this.#closed = true;
  }

  /** The deadline of a call starting now; throws Closed once the caller is closed. */
  deadline(): number {
    if (this.#closed) throw new QuorateError(ErrorCode.Closed, `the ${this.#service} client is closed`);
    return performance.now() + this.#timeoutMs;
  }

  /** Each call is a CLIENT span, so an application's trace continues into the round that serves it. */
  traced<T>(op: string, attributes: Record<string, string>, fn: () => Promise<T>): Promise<T> {
    return traced(
      SpanName.serviceClient(this.#service, op),
      SpanKind.CLIENT,
      {
        ...attributes,
        // The cluster's subject: a retry may go to one member's, but the call is addressed to the cluster.
        ...messagingAttributes("send", {
          subject: this.#subject,
          template: this.#subject,
          serverAddress: this.#nc.isClosed() ? undefined : this.#nc.getServer(),
        }),
      },
      fn,
    );
  }

  /**
   * Runs a write in the session, retrying the same (client, seq) until it succeeds or the
   * deadline passes. `request` builds the request of one attempt from its session tag.
   */
  async write<T>(op: string, request: (session: SessionTag) => Request, expect: Validator<T>): Promise<T> {
    const deadline = this.deadline();
    let session = await this.#openSession(deadline);
    let seq = session.nextSeq++;
    session.outstanding.add(seq);
    let uncertain = false;
    try {
      for (let attempt = 0; ; attempt++) {
        const tag: SessionTag = { client: session.client, seq, firstUnacked: firstUnacked(session) };
        const outcome = await this.attempt(request(tag), deadline, expect);
        if (outcome.ok) return outcome.value;
        if (outcome.sessionExpired) {
          if (this.#session === session) this.#session = null;
          if (uncertain) throw writeError(op, outcome.error, uncertain);
          // No attempt took effect: the command moves to a new session as a new command.
          session.outstanding.delete(seq);
          session = await this.#openSession(deadline);
          seq = session.nextSeq++;
          session.outstanding.add(seq);
        }
        uncertain ||= outcome.uncertain;
        if (!outcome.retriable || !(await this.backoff(attempt, deadline))) {
          throw writeError(op, outcome.error, uncertain);
        }
      }
    } finally {
      session.outstanding.delete(seq);
    }
  }

  /** Runs a request that takes no effect when repeated, retrying until the deadline. */
  async idempotent<T>(request: Request | OpenRequest, deadline: number, expect: Validator<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.attempt(request, deadline, expect);
      if (outcome.ok) return outcome.value;
      if (!outcome.retriable || !(await this.backoff(attempt, deadline))) throw idempotentError(outcome.error);
    }
  }

  /** The open session, or a new one; concurrent calls share one open request. */
  #openSession(deadline: number): Promise<ClientSession> {
    if (this.#session !== null) return Promise.resolve(this.#session);
    this.#opening ??= this.idempotent({ op: "open", name: this.#name }, deadline, isClientId)
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

  /**
   * One request. Without `member` it goes where the client's writes go (the member believed to
   * lead, or the queue group) and learns from the reply where to go next; with `member` it goes
   * to that member alone (or, when null, to the queue group) and learns nothing.
   */
  async attempt<T>(
    request: Request | OpenRequest,
    deadline: number,
    expect: Validator<T>,
    member?: string | null,
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
    const steer = member === undefined;
    const target = steer ? this.#preferred : member;
    const subject = target === null ? this.#subject : rpcSubject(this.#scope, this.#service, target);
    try {
      const trace = injectHeaders(context.active());
      replyData = (await this.#nc.request(subject, data, { timeout, ...(trace && toMsgHdrs(trace)) })).data;
    } catch (err) {
      if (steer) this.#preferred = null;
      return this.#requestFailure(err, timeout, subject);
    }
    const reply = this.#decodeReply(replyData);
    if (reply !== null) {
      if (reply.ok && expect(reply.value)) {
        if (steer) this.#preferred = reply.servedBy ?? null;
        return { ok: true, value: reply.value };
      }
      if (!reply.ok) {
        if (steer) this.#preferred = reply.code === ErrorCode.NotLeader ? reply.leader : null;
        const { code, uncertain, retriable } = REPLY_FAILURES[reply.code];
        const failed = reply as Reply & ServiceFailure;
        const error =
          this.#replyError?.(failed, code) ?? new QuorateError(code, reply.message, { leader: reply.leader });
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

  #decodeReply(data: Uint8Array): Reply | null {
    try {
      const reply = unpackValue(data);
      return this.#reply(reply) ? reply : null;
    } catch {
      return null;
    }
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
      return failure(
        ErrorCode.Unreachable,
        `no member of the ${this.#service} service serves ${subject}`,
        false,
        retriable,
      );
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

  /** Waits before the next attempt; false when that would pass the deadline or the caller closed. */
  async backoff(attempt: number, deadline: number): Promise<boolean> {
    const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    if (this.#closed || performance.now() + delay >= deadline) return false;
    await sleep(delay);
    return !this.#closed;
  }
}
