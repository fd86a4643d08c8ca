import { CheckerError, CheckerErrorCode } from "./errors.js";
import { parseHistory } from "./history.js";
import type { Operation, Value } from "./operation.js";
import { checkRevisionOrder, type RevisionOrderFailure } from "./revision-order.js";
import { LinearizationSearch, type SearchOutcome } from "./search.js";
import { operationKeys, usesLeases } from "./store-model.js";

export type Verdict = "linearizable" | "not-linearizable" | "unknown";

/** Why a key's verdict is "unknown". */
export type UndecidedReason =
  /** The time limit ran out. */
  | "time-limit"
  /** The search outgrew what a JavaScript Map or typed array can hold. */
  | "search-too-large"
  /** Another key (or the revision order) was found not linearizable first, which settles the verdict of the history. */
  | "stopped";

/** Search steps a key runs before the next key gets its turn. */
const stepsPerSlice = 1 << 14;

export interface CheckOptions {
  /** Time budget for the whole check; when it runs out, undecided keys get the verdict "unknown". No limit by default. */
  readonly timeoutMs?: number;
}

/** Why a key is not linearizable: how far the search got, and what could not come next. */
export interface KeyFailure {
  /** The deepest partial linearization found, in linearization order. */
  readonly linearized: readonly Operation[];
  /**
   * The key's value after `linearized`; null when absent or never written. For a part of several
   * keys: their contents as a JSON object (key to value, absent keys left out).
   */
  readonly value: Value;
  /** The operations that could be linearized next after `linearized` (by id); none of them leads to a full linearization. */
  readonly candidates: readonly Operation[];
}

export interface KeyResult {
  /**
   * The key; for a part of several keys tied together by transactions, ranges or leases, the
   * first of `keys`; "" for a part of lease operations that touch no key.
   */
  readonly key: string;
  /** Present for a part of several keys: all of them, in code-unit order. */
  readonly keys?: readonly string[];
  /** Present (true) for the part that holds the lease operations, the lease clock and the keys attached to leases. */
  readonly leases?: true;
  readonly verdict: Verdict;
  /** Operations checked: gets of unknown outcome are left out, they neither changed nor observed anything. */
  readonly operationCount: number;
  /** Present when the verdict is "not-linearizable". */
  readonly failure?: KeyFailure;
  /** Present when the verdict is "unknown". */
  readonly undecided?: UndecidedReason;
}

export interface CheckResult {
  /** "not-linearizable" if any key is, else "unknown" if any key is undecided, else "linearizable". */
  readonly verdict: Verdict;
  /** One result per key, in key order. */
  readonly keys: readonly KeyResult[];
  /**
   * When not linearizable: the operations that cannot be ordered (the candidates of the first
   * failing key, or the two operations of `revisionOrder`).
   */
  readonly witness?: readonly Operation[];
  /** Present when the recorded revisions contradict each other or real time across keys (see checkRevisionOrder). */
  readonly revisionOrder?: RevisionOrderFailure;
}

function validateOperation(operation: Operation): void {
  if (!Number.isFinite(operation.call) || !(operation.return > operation.call)) {
    throw new CheckerError(
      CheckerErrorCode.Argument,
      `operation ${operation.id}: call must be finite and return must come after it (call ${operation.call}, return ${operation.return})`,
    );
  }
}

function isRead(operation: Operation): boolean {
  return operation.f === "get" || operation.f === "entry" || operation.f === "keys" || operation.f === "list";
}

/**
 * A read whose result the history does not have constrains nothing, so the check leaves it out;
 * so does a grant of unknown outcome: no one learnt its lease's id, so no key was attached to it.
 */
function isDropped(operation: Operation): boolean {
  return (isRead(operation) || operation.f === "grant") && operation.status === "unknown";
}

/** A part of the history that can be checked alone: its keys, whether it holds the lease table, and the operations on them. */
interface Part {
  readonly keys: string[];
  leases: boolean;
  readonly operations: Operation[];
}

/** The lease table (the leases and the lease clock) as one object of the partition, apart from every key. */
const leaseTable = Symbol("lease table");
type StoreObject = string | typeof leaseTable;

/**
 * Splits the history into parts that can be checked alone (P-compositionality, Herlihy and Wing's
 * locality: a history is linearizable iff each object's sub-history is), leaving out reads of
 * unknown outcome. Each key is an object of its own, unless operations tie keys together: a
 * transaction ties the keys it compares and writes; a range ties every key of the history under
 * its prefix (a key it did not return was read as absent) and the keys it returned. The lease
 * table (leases and the lease clock) is one more object, which every lease operation touches (each
 * reads the clock), and a write with a lease ties its key to it: a tick or a revoke may delete
 * that key. Tied objects form one part, checked with the store model. A range on a prefix no key
 * has is a part of its own (it must return nothing). So workloads keep parts small by confining
 * transactions and ranges to groups of keys, such as one prefix, and leases to keys of their
 * own; a history with a range over every key is checked whole.
 */
function partitionOperations(operations: readonly Operation[]): Map<string, Part> {
  const parent = new Map<StoreObject, StoreObject>();
  const root = (object: StoreObject): StoreObject => {
    let top = object;
    while (parent.get(top) !== top) top = parent.get(top) as StoreObject;
    for (let at = object; at !== top; ) {
      const next = parent.get(at) as StoreObject;
      parent.set(at, top);
      at = next;
    }
    return top;
  };
  const union = (objects: readonly StoreObject[]) => {
    const first = objects[0];
    if (first === undefined) return;
    for (const object of objects) parent.set(root(object), root(first));
  };
  /** The objects an operation touches: its keys (a range: also those under its prefix) and the lease table. */
  const touched = (operation: Operation, allKeys: readonly string[]): StoreObject[] => {
    const objects: StoreObject[] = operationKeys(operation);
    if (operation.f === "keys" || operation.f === "list") {
      objects.push(...allKeys.filter((key) => key.startsWith(operation.key)));
    }
    if (usesLeases(operation)) objects.push(leaseTable);
    return objects;
  };
  for (const operation of operations) {
    validateOperation(operation);
    for (const key of operationKeys(operation)) if (!parent.has(key)) parent.set(key, key);
    if (usesLeases(operation) && !isDropped(operation)) parent.set(leaseTable, leaseTable);
  }
  const allKeys = [...parent.keys()].filter((object): object is string => object !== leaseTable);
  for (const operation of operations) {
    // A read of unknown outcome is dropped below, so it ties no keys.
    if (!isDropped(operation)) union(touched(operation, allKeys));
  }
  const byRoot = new Map<StoreObject, Part>();
  for (const object of parent.keys()) {
    const top = root(object);
    const part = byRoot.get(top) ?? { keys: [], leases: false, operations: [] };
    if (object === leaseTable) part.leases = true;
    else part.keys.push(object);
    byRoot.set(top, part);
  }
  const parts = new Map<string, Part>();
  for (const part of byRoot.values()) {
    part.keys.sort();
    // A part is named after its first key; the lease table without keys, "".
    parts.set(part.keys[0] ?? "", part);
  }
  for (const operation of operations) {
    if (isDropped(operation)) continue;
    const first = touched(operation, allKeys)[0];
    // An operation that ties no object (an empty transaction, a range that found no key) is a part of its own.
    let part = first === undefined ? parts.get(operation.key) : byRoot.get(root(first));
    if (part === undefined) {
      part = { keys: [], leases: false, operations: [] };
      parts.set(operation.key, part);
    }
    part.operations.push(operation);
  }
  return parts;
}

interface KeyTask {
  readonly key: string;
  readonly keys: readonly string[];
  readonly leases: boolean;
  readonly operations: readonly Operation[];
  /** Created on the key's first slice and dropped once decided, so only running searches hold memory. */
  search: LinearizationSearch | null;
  result: KeyResult | null;
}

/** How a KeyResult names a part: its first key, all its keys when several, whether it holds the lease table. */
function partNames(part: { readonly key: string; readonly keys: readonly string[]; readonly leases: boolean }) {
  return {
    key: part.key,
    ...(part.keys.length > 1 ? { keys: part.keys } : {}),
    ...(part.leases ? { leases: true as const } : {}),
  };
}

/** Runs one slice of a key's search; returns its result once decided. */
function runSlice(task: KeyTask): KeyResult | null {
  const { operations } = task;
  const operationCount = operations.length;
  const named = partNames(task);
  let outcome: SearchOutcome | null;
  try {
    task.search ??= new LinearizationSearch(operations);
    outcome = task.search.run(stepsPerSlice);
  } catch (error) {
    // Thrown when a Map or typed array of the search outgrows what the engine can allocate.
    if (!(error instanceof RangeError)) throw error;
    task.search = null;
    return { ...named, verdict: "unknown", operationCount, undecided: "search-too-large" };
  }
  if (outcome === null) return null;
  task.search = null;
  if (outcome.verdict === "linearizable") return { ...named, verdict: "linearizable", operationCount };
  const operationAt = (index: number) => operations[index] as Operation;
  const failure: KeyFailure = {
    linearized: outcome.linearized.map(operationAt),
    value: outcome.value,
    candidates: outcome.candidates.map(operationAt).sort((a, b) => a.id - b.id),
  };
  return { ...named, verdict: "not-linearizable", operationCount, failure };
}

/**
 * Decides whether a key-value history is linearizable: first the recorded revisions across keys
 * (checkRevisionOrder), then key by key. The keys' searches run
 * round-robin, a slice of steps at a time (as Porcupine runs them in parallel), so that a key found
 * not linearizable ends the check at the end of the round without waiting for harder keys.
 * Deterministic, except where the time limit cuts it short.
 */
export function checkOperations(operations: readonly Operation[], options: CheckOptions = {}): CheckResult {
  const { timeoutMs } = options;
  if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
    throw new CheckerError(CheckerErrorCode.Argument, `timeoutMs must be a number >= 0, got ${timeoutMs}`);
  }
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeoutMs;
  const parts = partitionOperations(operations);
  const revisionOrder = checkRevisionOrder(operations);
  if (revisionOrder !== null) {
    const keys = [...parts.keys()].sort().map((key): KeyResult => {
      const part = parts.get(key) as Part;
      return {
        ...partNames({ key, ...part }),
        verdict: "unknown",
        operationCount: part.operations.length,
        undecided: "stopped",
      };
    });
    return { verdict: "not-linearizable", keys, witness: revisionOrder.operations, revisionOrder };
  }
  const tasks: KeyTask[] = [...parts.keys()].sort().map((key) => {
    const part = parts.get(key) as Part;
    return { key, keys: part.keys, leases: part.leases, operations: part.operations, search: null, result: null };
  });
  let failed: KeyResult | null = null;
  let running = tasks;
  let timedOut = false;
  while (running.length > 0 && failed === null && !timedOut) {
    for (const task of running) {
      timedOut = performance.now() > deadline;
      if (timedOut) break;
      task.result = runSlice(task);
      if (task.result?.verdict === "not-linearizable") failed ??= task.result;
    }
    running = running.filter((task) => task.result === null);
  }
  const undecided: UndecidedReason = failed === null ? "time-limit" : "stopped";
  const keys = tasks.map(
    (task): KeyResult =>
      task.result ?? {
        ...partNames(task),
        verdict: "unknown",
        operationCount: task.operations.length,
        undecided,
      },
  );
  if (failed?.failure !== undefined) return { verdict: "not-linearizable", keys, witness: failed.failure.candidates };
  return { verdict: keys.some((result) => result.verdict === "unknown") ? "unknown" : "linearizable", keys };
}

/** Parses an EDN history (see parseHistory) and checks it. */
export function checkHistoryText(text: string, options: CheckOptions = {}): CheckResult {
  return checkOperations(parseHistory(text), options);
}
