import { CheckerError, CheckerErrorCode } from "./errors.js";
import { parseHistory } from "./history.js";
import type { Operation, Value } from "./operation.js";
import { checkRevisionOrder, type RevisionOrderFailure } from "./revision-order.js";
import { LinearizationSearch, type SearchOutcome } from "./search.js";
import { isMultiKey, operationKeys } from "./store-model.js";

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
  /** The key; for a part of several keys tied together by transactions or ranges, the first of `keys`. */
  readonly key: string;
  /** Present for a part of several keys: all of them, in code-unit order. */
  readonly keys?: readonly string[];
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

/** A read whose result the history does not have constrains nothing, so the check leaves it out. */
function isDropped(operation: Operation): boolean {
  return isRead(operation) && operation.status === "unknown";
}

/** A part of the history that can be checked alone: its keys, and the operations on them. */
interface Part {
  readonly keys: string[];
  readonly operations: Operation[];
}

/**
 * Splits the history into parts that can be checked alone (P-compositionality, Herlihy and Wing's
 * locality: a history is linearizable iff each object's sub-history is), leaving out reads of
 * unknown outcome. Each key is an object of its own, unless operations tie keys together: a
 * transaction ties the keys it compares and writes; a range ties every key of the history under
 * its prefix (a key it did not return was read as absent) and the keys it returned. Tied keys
 * form one object, checked with the store model. A range on a prefix no key has is a part of its
 * own (it must return nothing). So workloads keep parts small by confining transactions and
 * ranges to groups of keys, such as one prefix; a history with a range over every key is checked
 * whole.
 */
function partitionOperations(operations: readonly Operation[]): Map<string, Part> {
  const parent = new Map<string, string>();
  const root = (key: string): string => {
    let top = key;
    while (parent.get(top) !== top) top = parent.get(top) as string;
    for (let at = key; at !== top; ) {
      const next = parent.get(at) as string;
      parent.set(at, top);
      at = next;
    }
    return top;
  };
  const union = (keys: readonly string[]) => {
    const first = keys[0];
    if (first === undefined) return;
    for (const key of keys) {
      const a = root(first);
      const b = root(key);
      // The smaller key is the root: a part is named after its first key.
      if (a < b) parent.set(b, a);
      else if (b < a) parent.set(a, b);
    }
  };
  for (const operation of operations) {
    validateOperation(operation);
    for (const key of operationKeys(operation)) if (!parent.has(key)) parent.set(key, key);
  }
  const allKeys = [...parent.keys()];
  for (const operation of operations) {
    // A read of unknown outcome is dropped below, so it ties no keys.
    if (!isMultiKey(operation) || isDropped(operation)) continue;
    const tied = operationKeys(operation);
    if (operation.f !== "txn") tied.push(...allKeys.filter((key) => key.startsWith(operation.key)));
    union(tied);
  }
  const parts = new Map<string, Part>();
  for (const key of allKeys) {
    const name = root(key);
    const part = parts.get(name) ?? { keys: [], operations: [] };
    part.keys.push(key);
    parts.set(name, part);
  }
  for (const operation of operations) {
    if (isDropped(operation)) continue;
    const tied = operationKeys(operation);
    if (operation.f === "keys" || operation.f === "list") {
      tied.push(...allKeys.filter((key) => key.startsWith(operation.key)));
    }
    const first = tied[0];
    // An operation that ties no key (an empty transaction, a range that found no key) is a part of its own.
    const name = first === undefined ? operation.key : root(first);
    let part = parts.get(name);
    if (part === undefined) {
      part = { keys: [], operations: [] };
      parts.set(name, part);
    }
    part.operations.push(operation);
  }
  for (const part of parts.values()) part.keys.sort();
  return parts;
}

interface KeyTask {
  readonly key: string;
  readonly keys: readonly string[];
  readonly operations: readonly Operation[];
  /** Created on the key's first slice and dropped once decided, so only running searches hold memory. */
  search: LinearizationSearch | null;
  result: KeyResult | null;
}

/** Runs one slice of a key's search; returns its result once decided. */
function runSlice(task: KeyTask): KeyResult | null {
  const { operations } = task;
  const operationCount = operations.length;
  const key = task.key;
  const named = task.keys.length > 1 ? { key, keys: task.keys } : { key };
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
    const keys = [...parts.keys()].sort().map(
      (key): KeyResult => ({
        key,
        ...((parts.get(key) as Part).keys.length > 1 ? { keys: (parts.get(key) as Part).keys } : {}),
        verdict: "unknown",
        operationCount: (parts.get(key) as Part).operations.length,
        undecided: "stopped",
      }),
    );
    return { verdict: "not-linearizable", keys, witness: revisionOrder.operations, revisionOrder };
  }
  const tasks: KeyTask[] = [...parts.keys()].sort().map((key) => {
    const part = parts.get(key) as Part;
    return { key, keys: part.keys, operations: part.operations, search: null, result: null };
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
        key: task.key,
        ...(task.keys.length > 1 ? { keys: task.keys } : {}),
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
