import { CheckerError, CheckerErrorCode } from "./errors.js";
import { parseHistory } from "./history.js";
import type { Operation, Value } from "./operation.js";
import { checkRevisionOrder, type RevisionOrderFailure } from "./revision-order.js";
import { LinearizationSearch, type SearchOutcome } from "./search.js";

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
  /** The key's value after `linearized`; null when absent or never written. */
  readonly value: Value;
  /** The operations that could be linearized next after `linearized` (by id); none of them leads to a full linearization. */
  readonly candidates: readonly Operation[];
}

export interface KeyResult {
  readonly key: string;
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

/** Splits the history per key (keys are independent: P-compositionality), leaving out unknown reads. */
function partitionByKey(operations: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const operation of operations) {
    validateOperation(operation);
    let ops = byKey.get(operation.key);
    if (ops === undefined) {
      ops = [];
      byKey.set(operation.key, ops);
    }
    if ((operation.f === "get" || operation.f === "entry") && operation.status === "unknown") continue;
    ops.push(operation);
  }
  return byKey;
}

interface KeyTask {
  readonly key: string;
  readonly operations: readonly Operation[];
  /** Created on the key's first slice and dropped once decided, so only running searches hold memory. */
  search: LinearizationSearch | null;
  result: KeyResult | null;
}

/** Runs one slice of a key's search; returns its result once decided. */
function runSlice(task: KeyTask): KeyResult | null {
  const { key, operations } = task;
  const operationCount = operations.length;
  let outcome: SearchOutcome | null;
  try {
    task.search ??= new LinearizationSearch(operations);
    outcome = task.search.run(stepsPerSlice);
  } catch (error) {
    // Thrown when a Map or typed array of the search outgrows what the engine can allocate.
    if (!(error instanceof RangeError)) throw error;
    task.search = null;
    return { key, verdict: "unknown", operationCount, undecided: "search-too-large" };
  }
  if (outcome === null) return null;
  task.search = null;
  if (outcome.verdict === "linearizable") return { key, verdict: "linearizable", operationCount };
  const operationAt = (index: number) => operations[index] as Operation;
  const failure: KeyFailure = {
    linearized: outcome.linearized.map(operationAt),
    value: outcome.value,
    candidates: outcome.candidates.map(operationAt).sort((a, b) => a.id - b.id),
  };
  return { key, verdict: "not-linearizable", operationCount, failure };
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
  const byKey = partitionByKey(operations);
  const revisionOrder = checkRevisionOrder(operations);
  if (revisionOrder !== null) {
    const keys = [...byKey.keys()].sort().map(
      (key): KeyResult => ({
        key,
        verdict: "unknown",
        operationCount: (byKey.get(key) as Operation[]).length,
        undecided: "stopped",
      }),
    );
    return { verdict: "not-linearizable", keys, witness: revisionOrder.operations, revisionOrder };
  }
  const tasks: KeyTask[] = [...byKey.keys()].sort().map((key) => {
    const keyOperations = byKey.get(key) as Operation[];
    return { key, operations: keyOperations, search: null, result: null };
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
      task.result ?? { key: task.key, verdict: "unknown", operationCount: task.operations.length, undecided },
  );
  if (failed?.failure !== undefined) return { verdict: "not-linearizable", keys, witness: failed.failure.candidates };
  return { verdict: keys.some((result) => result.verdict === "unknown") ? "unknown" : "linearizable", keys };
}

/** Parses an EDN history (see parseHistory) and checks it. */
export function checkHistoryText(text: string, options: CheckOptions = {}): CheckResult {
  return checkOperations(parseHistory(text), options);
}
