import {
  arrayOf,
  bool,
  ErrorCode,
  literal,
  nullable,
  object,
  optional,
  packValue,
  uint,
  unpackValue,
  type Validator,
} from "@quorate/core";

/** A stored value. Strings and bytes are kept apart: a get returns the type that was put. */
export type KvValue = string | Uint8Array;

export const MAX_KEY_LENGTH = 1024;

/** Most compares, and most operations per branch, in one transaction. */
export const MAX_TXN_OPS = 64;

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
}

export const kvEntry: Validator<KvEntry> = object({
  value: kvValue,
  revision: uint,
  createRevision: uint,
  version: uint,
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

/** A basic command of the replicated key-value state machine. */
export type KvCommand =
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "put"; readonly key: string; readonly value: KvValue }
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
  | { readonly op: "create"; readonly key: string; readonly value: KvValue }
  /** Sets `value` only if the key's last write has revision `revision`. */
  | { readonly op: "update"; readonly key: string; readonly value: KvValue; readonly revision: number }
  | ({ readonly op: "txn" } & KvTxn);

export const kvCommand: Validator<KvCommand | KvRevisionCommand> = (v): v is KvCommand | KvRevisionCommand =>
  object({ op: literal("get"), key: kvKey })(v) ||
  object({ op: literal("delete"), key: kvKey, revision: optional(uint) })(v) ||
  object({ op: literal("put", "create"), key: kvKey, value: kvValue })(v) ||
  object({ op: literal("update"), key: kvKey, value: kvValue, revision: uint })(v) ||
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

/** Encodes only the fields of the command's op, so stray fields never reach the log. */
export function encodeKvCommand(command: KvCommand | KvRevisionCommand): Uint8Array {
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
      return packValue({ op: command.op, key: command.key, value: command.value });
    case "update":
      return packValue({ op: command.op, key: command.key, value: command.value, revision: command.revision });
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

/**
 * The result of a KV command. `value` by op: get → the stored value or null; put → the write's
 * revision; delete → whether it deleted; cas → whether the value was swapped in; create and
 * update → the write's revision, or null when the condition failed; txn → a KvTxnResult.
 * A command that fails validation is Rejected: it changed nothing.
 */
export type KvResult =
  | { readonly ok: true; readonly value: KvResultValue }
  | { readonly ok: false; readonly code: typeof ErrorCode.Rejected; readonly message: string };

const kvResult = (v: unknown): v is KvResult =>
  object({
    ok: (x: unknown): x is true => x === true,
    value: kvResultValue,
  })(v) ||
  object({
    ok: (x: unknown): x is false => x === false,
    code: literal(ErrorCode.Rejected),
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
