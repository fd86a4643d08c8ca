import {
  arrayOf,
  bool,
  ErrorCode,
  literal,
  nullable,
  object,
  optional,
  packValue,
  string,
  uint,
  unpackValue,
  type Validator,
} from "@quorate/core";

/** A stored value. Strings and bytes are kept apart: a get returns the type that was put. */
export type KvValue = string | Uint8Array;

export const MAX_KEY_LENGTH = 1024;

/** Most compares, and most operations per branch, in one transaction. */
export const MAX_TXN_OPS = 64;

/** Most events one applied command makes (a transaction's two branches; a lease's keys). */
export const MAX_CHANGE_EVENTS = 2 * MAX_TXN_OPS;

/** The shortest lease: below it, the lease clock's ticks (every few hundred ms) would be most of the TTL. */
export const MIN_LEASE_TTL_MS = 500;
/** The longest lease: a week. */
export const MAX_LEASE_TTL_MS = 7 * 24 * 3600 * 1000;
/** Most leases a store holds at once; a grant beyond fails with QUORATE_LEASE_LIMIT. */
export const MAX_LEASES = 10_000;
/** Most keys attached to one lease: its expiry deletes them all in one change, which watchers receive whole. */
export const MAX_LEASE_KEYS = MAX_CHANGE_EVENTS;

/** A lease's time to live in ms, MIN_LEASE_TTL_MS to MAX_LEASE_TTL_MS. */
export const leaseTtl: Validator<number> = (v): v is number =>
  uint(v) && v >= MIN_LEASE_TTL_MS && v <= MAX_LEASE_TTL_MS;

/** A lease id: the revision (log or slot index) of the grant, so never 0. */
export const leaseId: Validator<number> = (v): v is number => uint(v) && v >= 1;

/** A key: a non-empty string of at most MAX_KEY_LENGTH UTF-16 code units. */
export const kvKey: Validator<string> = (v): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_KEY_LENGTH;

export const kvValue: Validator<KvValue> = (v): v is KvValue => typeof v === "string" || v instanceof Uint8Array;

/**
 * A stored key's value and history. Revisions are the log (Raft) or slot (Paxos) indexes of the
 * writes: they increase strictly across the whole store, so the revision of a write orders it
 * against every other write (a fencing token).
 */
export interface KvEntry {
  readonly value: KvValue;
  /** The revision of the last write to the key (etcd's modRevision). */
  readonly revision: number;
  /** The revision of the write that created the key (since it was last absent). */
  readonly createRevision: number;
  /** Writes to the key since it was created: 1 after the create. */
  readonly version: number;
  /** The lease the key is attached to: the key is deleted when the lease ends. Absent without one. */
  readonly lease?: number;
}

export const kvEntry: Validator<KvEntry> = object({
  value: kvValue,
  revision: uint,
  createRevision: uint,
  version: uint,
  lease: optional(leaseId),
});

/**
 * A condition of a transaction on one key: it holds `value` (same type and content); its last
 * write has revision `revision`; or it is absent. An absent key holds no value and has no revision.
 */
export type KvCompare =
  | { readonly key: string; readonly value: KvValue }
  | { readonly key: string; readonly revision: number }
  | { readonly key: string; readonly absent: true };

const compareValue = object({ key: kvKey, value: kvValue });
const compareRevision = object({ key: kvKey, revision: uint });
const compareAbsent = object({ key: kvKey, absent: (v: unknown): v is true => v === true });
export const kvCompare: Validator<KvCompare> = (v): v is KvCompare =>
  compareValue(v) || compareRevision(v) || compareAbsent(v);

/** A write inside a transaction. */
export type KvTxnOp =
  | { readonly op: "put"; readonly key: string; readonly value: KvValue }
  | { readonly op: "delete"; readonly key: string };

const txnPut = object({ op: literal("put"), key: kvKey, value: kvValue });
const txnDelete = object({ op: literal("delete"), key: kvKey });
export const kvTxnOp: Validator<KvTxnOp> = (v): v is KvTxnOp => txnPut(v) || txnDelete(v);

/** A branch writes each key at most once, so the events of one revision never contradict each other. */
const txnBranch: Validator<KvTxnOp[]> = (v): v is KvTxnOp[] =>
  arrayOf(kvTxnOp, MAX_TXN_OPS)(v) && new Set(v.map((op) => op.key)).size === v.length;

/** If every compare holds, the success writes are applied, otherwise the failure writes: all at one revision. */
export interface KvTxn {
  readonly compare: readonly KvCompare[];
  readonly success: readonly KvTxnOp[];
  readonly failure?: readonly KvTxnOp[];
}

/** What a transaction did: which branch ran, and the store's revision after it. */
export interface KvTxnResult {
  readonly succeeded: boolean;
  readonly revision: number;
}

export const kvTxnResult: Validator<KvTxnResult> = object({ succeeded: bool, revision: uint });

/** The lease a put, create or update attaches its key to; without one, the key has none (etcd's put). */
type LeaseOption = { readonly lease?: number };

/** A basic command of the replicated key-value state machine. */
export type KvCommand =
  | { readonly op: "get"; readonly key: string }
  | ({ readonly op: "put"; readonly key: string; readonly value: KvValue } & LeaseOption)
  /** Deletes the key; with `revision`, only if its last write has that revision. */
  | { readonly op: "delete"; readonly key: string; readonly revision?: number }
  /** Sets `value` if the key holds `expected` (same type and content), or is absent when `expected` is null. */
  | { readonly op: "cas"; readonly key: string; readonly expected: KvValue | null; readonly value: KvValue };

/**
 * The revision-conditioned commands. A type apart from KvCommand so that code written against
 * the basic commands (the simulator's workload) keeps compiling; the state machine takes both.
 */
export type KvRevisionCommand =
  /** Sets `value` only if the key is absent. */
  | ({ readonly op: "create"; readonly key: string; readonly value: KvValue } & LeaseOption)
  /** Sets `value` only if the key's last write has revision `revision`. */
  | ({ readonly op: "update"; readonly key: string; readonly value: KvValue; readonly revision: number } & LeaseOption)
  | ({ readonly op: "txn" } & KvTxn);

/**
 * The lease commands. Leases expire by the store's lease clock, which advances only by `tick`
 * commands in the log (see KvStateMachine), so every replica expires the same leases at the
 * same revision, whatever its own clock says.
 */
export type KvLeaseCommand =
  /** Grants a lease of `ttlMs`; its id is the grant's revision. */
  | { readonly op: "grant"; readonly ttlMs: number }
  /** Gives the lease its full TTL again; fails with QUORATE_LEASE_NOT_FOUND if it ended. */
  | { readonly op: "keepAlive"; readonly lease: number }
  /** Ends the lease now, deleting its keys; resolves to whether it was live. */
  | { readonly op: "revoke"; readonly lease: number }
  /**
   * Advances the lease clock by `elapsedMs`, measured on the monotonic clock of the member `by`
   * since its previous tick, while it led in `term` (Raft term, Paxos ballot round). Proposed
   * by the member that leads, never by clients. A tick from another (by, term) than the last
   * counts as 0: see KvStateMachine. `seq` numbers the ticks of one proposer (1, 2, ...): a tick
   * of the same (by, term) whose `seq` is not above the last one's was applied already (Multi-Paxos
   * may choose one request in two slots) and counts nothing. Ticks written before `seq` existed
   * have none, and count as they did.
   */
  | {
      readonly op: "tick";
      readonly by: string;
      readonly term: number;
      readonly elapsedMs: number;
      readonly seq?: number;
    };

/** Every command the KV state machine applies. */
export type KvAnyCommand = KvCommand | KvRevisionCommand | KvLeaseCommand;

const leaseField = optional(leaseId);

export const kvCommand: Validator<KvAnyCommand> = (v): v is KvAnyCommand =>
  object({ op: literal("get"), key: kvKey })(v) ||
  object({ op: literal("delete"), key: kvKey, revision: optional(uint) })(v) ||
  object({ op: literal("put", "create"), key: kvKey, value: kvValue, lease: leaseField })(v) ||
  object({ op: literal("update"), key: kvKey, value: kvValue, revision: uint, lease: leaseField })(v) ||
  object({ op: literal("grant"), ttlMs: leaseTtl })(v) ||
  object({ op: literal("keepAlive", "revoke"), lease: leaseId })(v) ||
  object({ op: literal("tick"), by: string(256), term: uint, elapsedMs: uint, seq: optional(uint) })(v) ||
  object({ op: literal("cas"), key: kvKey, expected: nullable(kvValue), value: kvValue })(v) ||
  object({
    op: literal("txn"),
    compare: arrayOf(kvCompare, MAX_TXN_OPS),
    success: txnBranch,
    failure: optional(txnBranch),
  })(v);

function encodeCompare(compare: KvCompare): KvCompare {
  if ("value" in compare) return { key: compare.key, value: compare.value };
  if ("revision" in compare) return { key: compare.key, revision: compare.revision };
  return { key: compare.key, absent: true };
}

function encodeTxnOp(op: KvTxnOp): KvTxnOp {
  return op.op === "put" ? { op: "put", key: op.key, value: op.value } : { op: "delete", key: op.key };
}

/** The lease field of an encoded write: only when there is one (a decoded absent field may be null). */
function withLease<T extends object>(fields: T, lease: number | null | undefined): T | (T & { lease: number }) {
  return lease === undefined || lease === null ? fields : { ...fields, lease };
}

/** Encodes only the fields of the command's op, so stray fields never reach the log. */
export function encodeKvCommand(command: KvAnyCommand): Uint8Array {
  switch (command.op) {
    case "get":
      return packValue({ op: command.op, key: command.key });
    case "delete":
      return packValue(
        // A decoded optional field may be null: it means absent, as undefined does.
        command.revision === undefined || command.revision === null
          ? { op: command.op, key: command.key }
          : { op: command.op, key: command.key, revision: command.revision },
      );
    case "put":
    case "create":
      return packValue(withLease({ op: command.op, key: command.key, value: command.value }, command.lease));
    case "update":
      return packValue(
        withLease(
          { op: command.op, key: command.key, value: command.value, revision: command.revision },
          command.lease,
        ),
      );
    case "grant":
      return packValue({ op: command.op, ttlMs: command.ttlMs });
    case "keepAlive":
    case "revoke":
      return packValue({ op: command.op, lease: command.lease });
    case "tick":
      return packValue({
        op: command.op,
        by: command.by,
        term: command.term,
        elapsedMs: command.elapsedMs,
        ...(command.seq === undefined ? {} : { seq: command.seq }),
      });
    case "cas":
      return packValue({ op: command.op, key: command.key, expected: command.expected, value: command.value });
    case "txn":
      return packValue({
        op: command.op,
        compare: command.compare.map(encodeCompare),
        success: command.success.map(encodeTxnOp),
        failure: (command.failure ?? []).map(encodeTxnOp),
      });
  }
}

/** What a KV command returns when it succeeds; see KvResult. */
export type KvResultValue = KvValue | boolean | number | null | KvTxnResult;

export const kvResultValue: Validator<KvResultValue> = (v): v is KvResultValue =>
  v === null || typeof v === "boolean" || uint(v) || kvValue(v) || kvTxnResult(v);

/** The error codes of a KV command's result: each means it changed nothing. */
export type KvResultCode = typeof ErrorCode.Rejected | typeof ErrorCode.LeaseNotFound | typeof ErrorCode.LeaseLimit;

/**
 * The result of a KV command. `value` by op: get → the stored value or null; put → the write's
 * revision; delete → whether it deleted (and `revision`, the delete's revision, when it did); cas → whether the value was swapped in; create and
 * update → the write's revision, or null when the condition failed; txn → a KvTxnResult;
 * grant → the lease id; keepAlive → the lease's TTL in ms; revoke → whether the lease was live;
 * tick → null. A command that fails validation is Rejected; one naming a lease that ended fails
 * with LeaseNotFound; one past MAX_LEASES or MAX_LEASE_KEYS with LeaseLimit: it changed nothing.
 */
export type KvResult =
  /** `revision`: only in a delete's result that deleted, the revision of the delete (an addition: `value` stays a boolean). */
  | { readonly ok: true; readonly value: KvResultValue; readonly revision?: number }
  | { readonly ok: false; readonly code: KvResultCode; readonly message: string };

const kvResult = (v: unknown): v is KvResult =>
  object({
    ok: (x: unknown): x is true => x === true,
    value: kvResultValue,
    revision: optional(uint),
  })(v) ||
  object({
    ok: (x: unknown): x is false => x === false,
    code: literal<KvResultCode>(ErrorCode.Rejected, ErrorCode.LeaseNotFound, ErrorCode.LeaseLimit),
    message: (x: unknown): x is string => typeof x === "string",
  })(v);

/** Decodes a result of KvStateMachine.apply; null when the bytes are not one. */
export function decodeKvResult(data: Uint8Array): KvResult | null {
  try {
    const raw = unpackValue(data);
    return kvResult(raw) ? raw : null;
  } catch {
    return null;
  }
}
