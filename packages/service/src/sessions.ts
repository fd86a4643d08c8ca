import {
  arrayOf,
  bytes,
  ErrorCode,
  literal,
  nullable,
  object,
  packValue,
  QuorateError,
  SessionErrorCode,
  type StateMachine,
  string,
  uint,
  unpackValue,
  type Validator,
} from "@quorate/core";

/**
 * Client sessions: exactly-once application of retried commands (Raft thesis, clients.tex).
 *
 * A client opens a session once, then tags every command with (client, seq). The replicated
 * session table remembers the result of each applied seq until the client says it no longer
 * needs it, so a retry of an applied command returns the cached result instead of applying
 * again. Sessions expire by apply order, never by wall clock, so every replica expires the
 * same sessions at the same command.
 *
 * Opening is an explicit command rather than a side effect of a client's first command:
 * a retry that reaches a replica after its session expired must fail (it may have been
 * applied before), and only a session that was explicitly opened can tell "expired" from "new".
 * For the same reason the replicated state, not the client, picks the session's client id
 * (as the thesis uses the index of the register entry): every open makes a new session, so
 * a delayed duplicate of an open can never revive an expired session and its old seqs.
 */

export const MAX_CLIENT_ID_LENGTH = 256;
/** Room left in a client id for the ".<counter>" suffix that makes it unique. */
export const MAX_CLIENT_NAME_LENGTH = MAX_CLIENT_ID_LENGTH - 20;

/** Identifies one command of one client. */
export interface SessionTag {
  readonly client: string;
  /** Per-client command number, from 1, increasing by one per command. */
  readonly seq: number;
  /**
   * The client's lowest seq whose outcome it has not yet received (or given up on). Results
   * of lower seqs are discarded, and commands with a lower seq are never applied again.
   */
  readonly firstUnacked: number;
}

const clientId: Validator<string> = (v): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_CLIENT_ID_LENGTH;

const positiveUint: Validator<number> = (v): v is number => uint(v) && v >= 1;

const sessionTagShape = object({ client: clientId, seq: positiveUint, firstUnacked: positiveUint });

/** Validates a decoded session tag, including firstUnacked <= seq (the command itself is unacked). */
export const sessionTag: Validator<SessionTag> = (v): v is SessionTag => sessionTagShape(v) && v.firstUnacked <= v.seq;

const clientName: Validator<string> = (v): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_CLIENT_NAME_LENGTH;

const openCommand = object({ open: clientName });
const taggedCommand = object({ session: nullable(sessionTag), payload: bytes });

/**
 * Encodes a command for a SessionStateMachine. With a null session the payload is applied
 * every time it is committed, without deduplication.
 */
export function encodeSessionCommand(session: SessionTag | null, payload: Uint8Array): Uint8Array {
  // Copies the fields, so that stray ones of a validated request never reach the log.
  const tag =
    session === null ? null : { client: session.client, seq: session.seq, firstUnacked: session.firstUnacked };
  return packValue({ session: tag, payload });
}

/**
 * Encodes the command that opens a new session. Its result (decode it with
 * `decodeOpenedClient`) is the session's client id: `name` plus a suffix unique in the
 * replicated state. Retrying an open is safe: a duplicate opens a session nobody uses, which
 * expires like any idle one.
 */
export function encodeOpenSession(name: string): Uint8Array {
  return packValue({ open: name });
}

/** The client id in the result of an open command; throws Invariant on anything else. */
export function decodeOpenedClient(result: Uint8Array): string {
  let raw: unknown;
  try {
    raw = unpackValue(result);
  } catch (cause) {
    throw new QuorateError(ErrorCode.Invariant, "undecodable open-session result", { cause });
  }
  if (!clientId(raw)) throw new QuorateError(ErrorCode.Invariant, "malformed open-session result");
  return raw;
}

/** What SessionStateMachine.apply returns: the inner machine's result, or why there is none. */
export type SessionResult =
  | { readonly ok: true; readonly result: Uint8Array }
  | { readonly ok: false; readonly code: SessionErrorCode; readonly message: string };

const okSessionResult = object({ ok: (v: unknown): v is true => v === true, result: bytes });
const errorSessionResult = object({
  ok: (v: unknown): v is false => v === false,
  code: literal(...Object.values(SessionErrorCode)),
  message: string(Number.MAX_SAFE_INTEGER),
});
const sessionResult = (v: unknown): v is SessionResult => okSessionResult(v) || errorSessionResult(v);

/** Decodes a result returned by SessionStateMachine.apply; throws Invariant on anything else. */
export function decodeSessionResult(data: Uint8Array): SessionResult {
  let raw: unknown;
  try {
    raw = unpackValue(data);
  } catch (cause) {
    throw new QuorateError(ErrorCode.Invariant, "undecodable session result", { cause });
  }
  if (!sessionResult(raw)) throw new QuorateError(ErrorCode.Invariant, "malformed session result");
  return raw;
}

function okResult(result: Uint8Array): Uint8Array {
  return packValue({ ok: true, result });
}

function errorResult(code: SessionErrorCode, message: string): Uint8Array {
  return packValue({ ok: false, code, message });
}

export interface SessionLimits {
  /** A session expires once more than this many other commands were applied since its last command. */
  readonly maxIdleCommands: number;
  /** At most this many sessions are kept; opening one more expires the least recently used. */
  readonly maxSessions: number;
  /**
   * At most this many results are kept per session; beyond it the lowest seq's result is
   * discarded, as if the client had acknowledged it, so a client that never acknowledges
   * cannot grow the state without bound.
   */
  readonly maxResultsPerSession: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxIdleCommands: 1_000_000,
  maxSessions: 10_000,
  maxResultsPerSession: 1_024,
};

interface Session {
  /** The value of the applied-command counter at this session's last command. */
  lastUsed: number;
  /** The highest firstUnacked seen: no seq below it is applied again. */
  floor: number;
  readonly results: Map<number, Uint8Array>;
}

const SNAPSHOT_VERSION = 1;

/** [client, lastUsed, floor, [[seq, result], ...]] in least-recently-used order. */
const sessionRecord = (v: unknown): v is [string, number, number, [number, Uint8Array][]] =>
  Array.isArray(v) &&
  v.length === 4 &&
  clientId(v[0]) &&
  uint(v[1]) &&
  positiveUint(v[2]) &&
  arrayOf(
    (r: unknown): r is [number, Uint8Array] => Array.isArray(r) && r.length === 2 && uint(r[0]) && bytes(r[1]),
    Number.MAX_SAFE_INTEGER,
  )(v[3]);

const sessionSnapshot = object({
  version: literal(SNAPSHOT_VERSION),
  applied: uint,
  sessions: arrayOf(sessionRecord, Number.MAX_SAFE_INTEGER),
  inner: bytes,
});

/**
 * Wraps a state machine with client sessions. Commands are made with `encodeSessionCommand`
 * and `encodeOpenSession`; results are SessionResults, decoded with `decodeSessionResult`.
 * Never throws on a malformed command: it returns a MalformedCommand result, because a throw
 * would stop every replica at the same log entry. The inner machine must not throw either.
 */
export class SessionStateMachine implements StateMachine {
  readonly #inner: StateMachine;
  readonly #limits: SessionLimits;
  /** Commands applied so far: the session clock. */
  #applied = 0;
  /** Insertion order is least-recently-used first: every command re-inserts its session. */
  #sessions = new Map<string, Session>();

  constructor(inner: StateMachine, limits: Partial<SessionLimits> = {}) {
    const merged = { ...DEFAULT_SESSION_LIMITS, ...limits };
    for (const [name, value] of Object.entries(merged)) {
      if (!positiveUint(value)) {
        throw new QuorateError(ErrorCode.Config, `session limit ${name} must be a positive integer (got ${value})`);
      }
    }
    this.#inner = inner;
    this.#limits = merged;
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  apply(command: Uint8Array, index: number): Uint8Array {
    this.#expireIdle();
    this.#applied++;
    let raw: unknown;
    try {
      raw = unpackValue(command);
    } catch {
      return errorResult(SessionErrorCode.MalformedCommand, "undecodable session command");
    }
    if (openCommand(raw)) return okResult(packValue(this.#open(raw.open)));
    if (!taggedCommand(raw)) return errorResult(SessionErrorCode.MalformedCommand, "invalid session command");
    if (raw.session === null) return okResult(this.#inner.apply(raw.payload, index));

    const { client, seq, firstUnacked } = raw.session;
    const session = this.#touch(client);
    if (session === undefined) {
      return errorResult(SessionErrorCode.SessionExpired, `session of client '${client}' is not open (expired?)`);
    }
    if (firstUnacked > session.floor) this.#raiseFloor(session, firstUnacked);
    if (seq < session.floor) {
      return errorResult(
        SessionErrorCode.ResultDiscarded,
        `seq ${seq} of client '${client}' is below ${session.floor}: applied or abandoned before, result discarded`,
      );
    }
    const cached = session.results.get(seq);
    if (cached !== undefined) return okResult(cached);
    const result = this.#inner.apply(raw.payload, index);
    session.results.set(seq, result);
    if (session.results.size > this.#limits.maxResultsPerSession) {
      let lowest = seq;
      for (const kept of session.results.keys()) if (kept < lowest) lowest = kept;
      this.#raiseFloor(session, lowest + 1);
    }
    return okResult(result);
  }

  snapshot(): Uint8Array {
    const sessions = [...this.#sessions].map(([client, s]) => [
      client,
      s.lastUsed,
      s.floor,
      // Sorted, so that a replica restored from a snapshot snapshots to the same bytes.
      [...s.results].sort((a, b) => a[0] - b[0]),
    ]);
    return packValue({ version: SNAPSHOT_VERSION, applied: this.#applied, sessions, inner: this.#inner.snapshot() });
  }

  restore(snapshot: Uint8Array): void {
    let raw: unknown;
    try {
      raw = unpackValue(snapshot);
    } catch (cause) {
      throw new QuorateError(ErrorCode.Storage, "undecodable session snapshot", { cause });
    }
    if (!sessionSnapshot(raw)) throw new QuorateError(ErrorCode.Storage, "malformed session snapshot");
    const sessions = new Map<string, Session>();
    for (const [client, lastUsed, floor, results] of raw.sessions) {
      sessions.set(client, { lastUsed, floor, results: new Map(results) });
    }
    // The inner machine validates its own part; ours is replaced only once it accepted it.
    this.#inner.restore(raw.inner);
    this.#applied = raw.applied;
    this.#sessions = sessions;
  }

  /** Opens a session and returns its client id; the apply counter makes the id unique. */
  #open(name: string): string {
    const client = `${name}.${this.#applied}`;
    this.#sessions.set(client, { lastUsed: this.#applied, floor: 1, results: new Map() });
    for (const oldest of this.#sessions.keys()) {
      if (this.#sessions.size <= this.#limits.maxSessions) break;
      this.#sessions.delete(oldest);
    }
    return client;
  }

  /** Marks a session used now, moving it to the most-recently-used end. */
  #touch(client: string): Session | undefined {
    const session = this.#sessions.get(client);
    if (session === undefined) return undefined;
    this.#sessions.delete(client);
    session.lastUsed = this.#applied;
    this.#sessions.set(client, session);
    return session;
  }

  /** Expires sessions that saw more than maxIdleCommands other commands since their last one. */
  #expireIdle(): void {
    for (const [client, session] of this.#sessions) {
      if (this.#applied - session.lastUsed <= this.#limits.maxIdleCommands) break;
      this.#sessions.delete(client);
    }
  }

  #raiseFloor(session: Session, floor: number): void {
    session.floor = floor;
    for (const seq of session.results.keys()) if (seq < floor) session.results.delete(seq);
  }
}
