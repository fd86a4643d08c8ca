/** A key's value as clients see it: a string, or null when the key is absent. */
export type Value = string | null;

/** Input of a compare-and-set: `[expected, new]`; expected null means "the key is absent". */
export type CasInput = readonly [expected: Value, replacement: string];

/** Input of an update: `[revision, new]`; it writes only if the key's last write has that revision. */
export type UpdateInput = readonly [revision: number, replacement: string];

/** A condition of a transaction on one key: it holds `value`, its last write has `revision`, or it is absent. */
export type TxnCompare =
  | { readonly key: string; readonly value: string }
  | { readonly key: string; readonly revision: number }
  | { readonly key: string; readonly absent: true };

/** A write of a transaction's branch; a branch writes each key at most once. */
export type TxnWrite = { readonly key: string; readonly put: string } | { readonly key: string; readonly delete: true };

/** Input of a transaction: if every compare holds the success writes apply, else the failure writes, all at one revision. */
export interface TxnInput {
  readonly compare: readonly TxnCompare[];
  readonly success: readonly TxnWrite[];
  readonly failure: readonly TxnWrite[];
}

/** Input of a range (`keys` or `list`, whose `key` is the prefix): at most `limit` keys from `fromKey` on (inclusive). */
export interface RangeInput {
  readonly fromKey: string | null;
  readonly limit: number;
}

/** One key a range returned: its value (null for `keys`, which reads none) and revisions. */
export interface RangeEntry {
  readonly key: string;
  readonly value: string | null;
  readonly revision: number;
  readonly createRevision: number;
}

/** Input of a tick of the lease clock: the store's `tick` command, `[by, term, elapsedMs]`. */
export type TickInput = readonly [by: string, term: number, elapsedMs: number];

/**
 * `ok`: the operation completed and took effect (for a cas: it succeeded).
 * `unknown`: it may or may not have taken effect, at any time after its call (`:info` or no completion).
 */
export type OperationStatus = "ok" | "unknown";

/** What an operation asks for: its kind and the `:value` of its invocation. */
export type OperationRequest =
  | { readonly f: "get"; readonly input: null }
  /** `lease`: the lease the key is attached to from this write on; without one, the key has none. */
  | { readonly f: "put"; readonly input: string; readonly lease?: number }
  | { readonly f: "append"; readonly input: string }
  | { readonly f: "cas"; readonly input: CasInput }
  /** input: the revision the key's last write must have (compare-and-delete), or null for an unconditional delete. */
  | { readonly f: "delete"; readonly input: number | null }
  /** Writes only if the key is absent. `lease` as for put. */
  | { readonly f: "create"; readonly input: string; readonly lease?: number }
  /** `lease` as for put. */
  | { readonly f: "update"; readonly input: UpdateInput; readonly lease?: number }
  /** Reads the value with its revisions (`output`, `revision`, `createRevision`). */
  | { readonly f: "entry"; readonly input: null }
  /** Compares then writes several keys, all or nothing; `succeeded` says which branch ran, `revision` the store's after it. */
  | { readonly f: "txn"; readonly input: TxnInput }
  /** The keys under the prefix `key`, with revisions (`entries`, values null). */
  | { readonly f: "keys"; readonly input: RangeInput }
  /** The keys under the prefix `key`, with values and revisions (`entries`). */
  | { readonly f: "list"; readonly input: RangeInput }
  /** Grants a lease of `input` ms by the lease clock; the lease's id is the grant's `revision`. Names no key. */
  | { readonly f: "grant"; readonly input: number }
  /** Gives lease `input` its full TTL again; `applied`: whether it was live (false: not found). Names no key. */
  | { readonly f: "keepAlive"; readonly input: number }
  /** Ends lease `input`, deleting its keys; `applied`: whether it was live. Names no key. */
  | { readonly f: "revoke"; readonly input: number }
  /** Advances the lease clock as the store's `tick` command does, ending the leases it passes. Names no key. */
  | { readonly f: "tick"; readonly input: TickInput };

export type OperationKind = OperationRequest["f"];

export type OperationInput = OperationRequest["input"];

interface OperationFields {
  /** Position of the invocation among all invocations of the history, starting at 0. */
  readonly id: number;
  readonly process: number;
  readonly key: string;
  /** Position of the invocation event in the history, starting at 0. */
  readonly call: number;
  /** Position of the completion event, or Infinity when the outcome is unknown. */
  readonly return: number;
  readonly status: OperationStatus;
  /** The value a get or an entry read; null for other kinds and for reads whose outcome is unknown. */
  readonly output: Value;
  /**
   * A completed write: the revision it wrote at, null when not recorded (or when it changed nothing).
   * A completed entry: the modRevision it read, null when it read an absent key.
   * A completed txn: the store's revision after it (its writes' revision when it wrote).
   * A completed grant: the lease's id.
   */
  readonly revision: number | null;
  /** A completed entry: the createRevision it read; null otherwise. */
  readonly createRevision: number | null;
  /**
   * A completed create, update or delete: whether it wrote (its condition held; a delete found the
   * key), false when it completed and changed nothing; null when not recorded or not completed.
   * A completed keepAlive or revoke: whether the lease was live.
   */
  readonly applied: boolean | null;
  /** A completed txn: whether its compares held (the success branch ran); null otherwise. */
  readonly succeeded?: boolean | null;
  /** A completed range: the keys it returned, in order; null otherwise. */
  readonly entries?: readonly RangeEntry[] | null;
}

/** What a completion reports besides the value read, as `HistoryRecorder.ok` takes it. */
export interface CompletionDetails {
  readonly revision?: number | null;
  readonly createRevision?: number | null;
  readonly applied?: boolean | null;
  readonly succeeded?: boolean | null;
  readonly entries?: readonly RangeEntry[] | null;
}

/**
 * One operation of a history, invocation and completion paired. Operations that failed (`:fail`)
 * definitely did not happen and are not represented.
 */
export type Operation = OperationFields & OperationRequest;
