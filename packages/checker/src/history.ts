import { EdnKeyword, type EdnMap, type EdnValue, formatEdnString, formatEdnValue, parseEdnMapLine } from "./edn.js";
import { CheckerError, CheckerErrorCode } from "./errors.js";
import type {
  CasInput,
  CompletionDetails,
  Operation,
  OperationInput,
  OperationKind,
  OperationRequest,
  RangeEntry,
  TickInput,
  TxnCompare,
  TxnInput,
  TxnWrite,
  UpdateInput,
  Value,
} from "./operation.js";

type EventType = "invoke" | "ok" | "fail" | "info";

/** An event's `:value`: an operation's input, or what a read returned, as EDN. */
type EventValue = EdnValue;

/** One line of a history: an invocation or a completion. */
interface HistoryEvent {
  readonly process: number;
  readonly type: EventType;
  readonly f: OperationKind;
  readonly key: string;
  readonly value: EventValue;
  /** Invocations of put, create and update only: the lease the write attaches its key to. */
  readonly lease?: number;
  /** Completions only: `:revision`, `:create-revision` and `:applied`, when recorded. */
  readonly details?: CompletionDetails;
}

const eventTypes: readonly EventType[] = ["invoke", "ok", "fail", "info"];
const operationKinds: readonly OperationKind[] = [
  "get",
  "put",
  "append",
  "cas",
  "delete",
  "create",
  "update",
  "entry",
  "txn",
  "keys",
  "list",
  "grant",
  "keepAlive",
  "revoke",
  "tick",
];

/** The operations on the lease table, which name no key: their `:key` is "". */
const leaseKinds: readonly OperationKind[] = ["grant", "keepAlive", "revoke", "tick"];
/** The writes that may attach their key to a lease. */
const leasedKinds: readonly OperationKind[] = ["put", "create", "update"];

interface Invocation {
  readonly id: number;
  readonly process: number;
  readonly key: string;
  readonly request: OperationRequest;
  readonly call: number;
  outcome: "pending" | EventType;
  output: Value;
  entries: readonly RangeEntry[] | null;
  details: CompletionDetails;
  return: number;
}

function historyError(line: number | null, position: number, message: string): CheckerError {
  const where = line === null ? `event ${position}` : `line ${line}`;
  return new CheckerError(CheckerErrorCode.History, `${where}: ${message}`, { line });
}

function isCasInput(value: unknown): value is CasInput {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    (value[0] === null || typeof value[0] === "string") &&
    typeof value[1] === "string"
  );
}

function isUpdateInput(value: unknown): value is UpdateInput {
  return Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === "string";
}

const isRevisionNumber = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/** A lease id: the revision of its grant, so at least 1. */
const isLeaseId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 1;

function isTickInput(value: unknown): value is TickInput {
  return (
    Array.isArray(value) &&
    value.length === 3 &&
    typeof value[0] === "string" &&
    isRevisionNumber(value[1]) &&
    isRevisionNumber(value[2])
  );
}

/** `[:value "k" "v"]`, `[:revision "k" 5]` or `[:absent "k"]`; null if the value is none of them. */
function toTxnCompare(value: EdnValue): TxnCompare | null {
  if (!Array.isArray(value) || !(value[0] instanceof EdnKeyword) || typeof value[1] !== "string") return null;
  const [kind, key, operand] = value as [EdnKeyword, string, EdnValue | undefined];
  if (kind.name === "value" && value.length === 3 && typeof operand === "string") return { key, value: operand };
  if (kind.name === "revision" && value.length === 3 && isRevisionNumber(operand)) return { key, revision: operand };
  if (kind.name === "absent" && value.length === 2) return { key, absent: true };
  return null;
}

/** `[:put "k" "v"]` or `[:delete "k"]`; null if the value is neither. */
function toTxnWrite(value: EdnValue): TxnWrite | null {
  if (!Array.isArray(value) || !(value[0] instanceof EdnKeyword) || typeof value[1] !== "string") return null;
  const [kind, key, operand] = value as [EdnKeyword, string, EdnValue | undefined];
  if (kind.name === "put" && value.length === 3 && typeof operand === "string") return { key, put: operand };
  if (kind.name === "delete" && value.length === 2) return { key, delete: true };
  return null;
}

function mapAll<T>(value: EdnValue | undefined, convert: (item: EdnValue) => T | null): T[] | null {
  if (!Array.isArray(value)) return null;
  const items: T[] = [];
  for (const item of value as readonly EdnValue[]) {
    const converted = convert(item);
    if (converted === null) return null;
    items.push(converted);
  }
  return items;
}

/** `[[compare ...] [write ...] [write ...]]`: a branch writes each key at most once. */
function toTxnInput(value: EdnValue): TxnInput | null {
  if (!Array.isArray(value) || value.length !== 3) return null;
  const compare = mapAll(value[0], toTxnCompare);
  const success = mapAll(value[1], toTxnWrite);
  const failure = mapAll(value[2], toTxnWrite);
  if (compare === null || success === null || failure === null) return null;
  const distinct = (writes: TxnWrite[]) => new Set(writes.map((write) => write.key)).size === writes.length;
  return distinct(success) && distinct(failure) ? { compare, success, failure } : null;
}

/** `["k" value revision create-revision]`, value nil for a `keys` range. */
function toRangeEntry(value: EdnValue): RangeEntry | null {
  if (!Array.isArray(value) || value.length !== 4) return null;
  const [key, read, revision, createRevision] = value as EdnValue[];
  if (typeof key !== "string" || (read !== null && typeof read !== "string")) return null;
  if (!isRevisionNumber(revision) || !isRevisionNumber(createRevision)) return null;
  return { key, value: read, revision, createRevision };
}

/** The EDN form of an operation's input, as its invocation's `:value`. */
export function inputToEdn(request: OperationRequest): EdnValue {
  switch (request.f) {
    case "txn": {
      const { compare, success, failure } = request.input;
      const compareToEdn = (c: TxnCompare): EdnValue =>
        "value" in c
          ? [new EdnKeyword("value"), c.key, c.value]
          : "revision" in c
            ? [new EdnKeyword("revision"), c.key, c.revision]
            : [new EdnKeyword("absent"), c.key];
      const writeToEdn = (w: TxnWrite): EdnValue =>
        "put" in w ? [new EdnKeyword("put"), w.key, w.put] : [new EdnKeyword("delete"), w.key];
      return [compare.map(compareToEdn), success.map(writeToEdn), failure.map(writeToEdn)];
    }
    case "keys":
    case "list":
      return [request.input.fromKey, request.input.limit];
    default:
      return request.input;
  }
}

/** The EDN form of the keys a range returned, as its completion's `:value`. */
export function entriesToEdn(entries: readonly RangeEntry[]): EdnValue {
  return entries.map((entry) => [entry.key, entry.value, entry.revision, entry.createRevision]);
}

/** Returns the request, or an error message when the value (or the lease) does not fit the operation kind. */
function toRequest(f: OperationKind, value: EventValue, lease: number | undefined): OperationRequest | string {
  if (lease !== undefined) {
    if (!leasedKinds.includes(f)) return `only :put, :create and :update take a :lease, not :${f}`;
    if (!isLeaseId(lease)) return "a :lease must be an integer >= 1 (the revision of its grant)";
    const request = toRequest(f, value, undefined);
    return typeof request === "string" ? request : ({ ...request, lease } as OperationRequest);
  }
  switch (f) {
    case "get":
    case "entry":
      return value === null ? { f, input: null } : `a :${f} invocation must have :value nil`;
    case "delete":
      return value === null || typeof value === "number"
        ? { f, input: value }
        : "a :delete invocation must have :value nil or the revision it is conditioned on";
    case "update":
      return isUpdateInput(value)
        ? { f, input: [value[0], value[1]] }
        : "an :update invocation must have :value [revision new] (revision an integer, new a string)";
    case "put":
    case "create":
    case "append":
      return typeof value === "string" ? { f, input: value } : `a :${f} invocation must have a string :value`;
    case "cas":
      return isCasInput(value)
        ? { f, input: [value[0], value[1]] }
        : "a :cas invocation must have :value [expected new] (new a string, expected a string or nil)";
    case "txn": {
      const input = toTxnInput(value);
      return input !== null
        ? { f, input }
        : "a :txn invocation must have :value [[compare ...] [write ...] [write ...]], compares " +
            '[:value "k" "v"], [:revision "k" r] or [:absent "k"], writes [:put "k" "v"] or [:delete "k"], ' +
            "each key at most once per branch";
    }
    case "keys":
    case "list": {
      const [fromKey, limit] = Array.isArray(value) ? (value as EdnValue[]) : [];
      return Array.isArray(value) &&
        value.length === 2 &&
        (fromKey === null || typeof fromKey === "string") &&
        Number.isSafeInteger(limit) &&
        (limit as number) >= 1
        ? { f, input: { fromKey: fromKey as string | null, limit: limit as number } }
        : `a :${f} invocation must have :value [from-key limit] (from-key a string or nil, limit an integer >= 1)`;
    }
    case "grant":
      return isLeaseId(value) ? { f, input: value } : "a :grant invocation must have :value ttl-ms (an integer >= 1)";
    case "keepAlive":
    case "revoke":
      return isLeaseId(value) ? { f, input: value } : `a :${f} invocation must have :value lease-id (an integer >= 1)`;
    case "tick":
      return isTickInput(value)
        ? { f, input: [value[0], value[1], value[2]] }
        : "a :tick invocation must have :value [by term elapsed-ms] (by a string, term and elapsed-ms integers >= 0)";
  }
}

/**
 * Pairs invocations with completions by process, as Jepsen histories do: a process has at most one
 * operation in flight. Times are event positions.
 */
class HistoryAssembler {
  private readonly invocations: Invocation[] = [];
  private readonly inFlight = new Map<number, Invocation>();
  private position = 0;

  /** Adds an event; `line` locates errors in history text, null for recorded histories. Returns the operation id. */
  add(event: HistoryEvent, line: number | null): number {
    const position = this.position;
    const error = (message: string) => historyError(line, position, message);
    const pending = this.inFlight.get(event.process);
    if (event.type === "invoke") {
      if (pending !== undefined) {
        throw error(`process ${event.process} invoked an operation before operation ${pending.id} completed`);
      }
      if (leaseKinds.includes(event.f) && event.key !== "") {
        throw error(`a :${event.f} names no key: its :key must be ""`);
      }
      const request = toRequest(event.f, event.value, event.lease);
      if (typeof request === "string") throw error(request);
      const invocation: Invocation = {
        id: this.invocations.length,
        process: event.process,
        key: event.key,
        request,
        call: position,
        outcome: "pending",
        output: null,
        entries: null,
        details: {},
        return: Number.POSITIVE_INFINITY,
      };
      this.invocations.push(invocation);
      this.inFlight.set(event.process, invocation);
      this.position++;
      return invocation.id;
    }
    if (pending === undefined) throw error(`process ${event.process} completed an operation it never invoked`);
    if (pending.request.f !== event.f || pending.key !== event.key) {
      throw error(
        `completion (:${event.f} of key ${formatEdnString(event.key)}) does not match the invocation ` +
          `(:${pending.request.f} of key ${formatEdnString(pending.key)})`,
      );
    }
    if (event.type === "ok") {
      if (event.f === "get" || event.f === "entry") {
        if (event.value !== null && typeof event.value !== "string") {
          throw error(`a :${event.f} completion must have a string or nil :value`);
        }
        pending.output = event.value;
      }
      if (event.f === "keys" || event.f === "list") {
        const entries = mapAll(event.value, toRangeEntry);
        if (entries === null) {
          throw error(`a :${event.f} completion must have :value [[key value revision create-revision] ...]`);
        }
        pending.entries = entries;
      }
      pending.details = event.details ?? {};
      pending.return = position;
    }
    pending.outcome = event.type;
    this.inFlight.delete(event.process);
    this.position++;
    return pending.id;
  }

  find(id: number): Invocation | undefined {
    return this.invocations[id];
  }

  operations(): Operation[] {
    const operations: Operation[] = [];
    for (const invocation of this.invocations) {
      if (invocation.outcome === "fail") continue;
      const ok = invocation.outcome === "ok";
      operations.push({
        id: invocation.id,
        process: invocation.process,
        key: invocation.key,
        ...invocation.request,
        call: invocation.call,
        return: invocation.return,
        status: ok ? "ok" : "unknown",
        output: invocation.output,
        revision: ok ? (invocation.details.revision ?? null) : null,
        createRevision: ok ? (invocation.details.createRevision ?? null) : null,
        applied: ok ? (invocation.details.applied ?? null) : null,
        ...(invocation.request.f === "txn" ? { succeeded: ok ? (invocation.details.succeeded ?? null) : null } : {}),
        ...(invocation.request.f === "keys" || invocation.request.f === "list"
          ? { entries: ok ? invocation.entries : null }
          : {}),
      });
    }
    return operations;
  }
}

function keywordField<T extends string>(map: EdnMap, name: string, allowed: readonly T[], line: number): T {
  const value = map.get(name);
  const found = value instanceof EdnKeyword ? allowed.find((candidate) => candidate === value.name) : undefined;
  if (found === undefined) {
    throw new CheckerError(CheckerErrorCode.History, `line ${line}: :${name} must be one of :${allowed.join(", :")}`, {
      line,
    });
  }
  return found;
}

function optionalField<T>(
  map: EdnMap,
  name: string,
  valid: (value: unknown) => value is T,
  line: number,
): T | undefined {
  const value = map.get(name);
  if (value === undefined) return undefined;
  if (!valid(value))
    throw new CheckerError(CheckerErrorCode.History, `line ${line}: :${name} has the wrong type`, { line });
  return value;
}

const isRevision = (value: unknown): value is number | null =>
  value === null || (typeof value === "number" && Number.isSafeInteger(value) && value >= 0);
const isBoolean = (value: unknown): value is boolean => typeof value === "boolean";

function toDetails(map: EdnMap, line: number): CompletionDetails | undefined {
  const revision = optionalField(map, "revision", isRevision, line);
  const createRevision = optionalField(map, "create-revision", isRevision, line);
  const applied = optionalField(map, "applied", isBoolean, line);
  const succeeded = optionalField(map, "succeeded", isBoolean, line);
  if (revision === undefined && createRevision === undefined && applied === undefined && succeeded === undefined) {
    return undefined;
  }
  return { revision, createRevision, applied, succeeded };
}

function toEvent(map: EdnMap, line: number): HistoryEvent {
  const process = map.get("process");
  if (typeof process !== "number") {
    throw new CheckerError(CheckerErrorCode.History, `line ${line}: :process must be an integer`, { line });
  }
  const key = map.get("key");
  if (typeof key !== "string") {
    throw new CheckerError(CheckerErrorCode.History, `line ${line}: :key must be a string`, { line });
  }
  const lease = map.get("lease");
  if (lease !== undefined && typeof lease !== "number") {
    throw new CheckerError(CheckerErrorCode.History, `line ${line}: :lease must be an integer`, { line });
  }
  return {
    process,
    type: keywordField(map, "type", eventTypes, line),
    f: keywordField(map, "f", operationKinds, line),
    key,
    ...(lease === undefined ? {} : { lease }),
    // Jepsen omits :value where it is nil.
    value: map.get("value") ?? null,
    details: toDetails(map, line),
  };
}

/**
 * Parses a Jepsen-style EDN history, one event map per line (blank lines are skipped), and pairs
 * invocations with their completions. `:fail` operations are dropped; `:info` and unmatched
 * invocations become operations of unknown outcome. Throws CheckerError (CHECKER_PARSE or
 * CHECKER_HISTORY) carrying the 1-based line number.
 */
export function parseHistory(text: string): Operation[] {
  const assembler = new HistoryAssembler();
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string;
    if (line.trim() === "") continue;
    const lineNumber = index + 1;
    assembler.add(toEvent(parseEdnMapLine(line, lineNumber), lineNumber), lineNumber);
  }
  return assembler.operations();
}

function formatDetails(details: CompletionDetails | undefined): string {
  if (details === undefined) return "";
  const revision = (value: number | null) => (value === null ? "nil" : `${value}`);
  let text = "";
  if (details.revision !== undefined) text += `, :revision ${revision(details.revision)}`;
  if (details.createRevision !== undefined) text += `, :create-revision ${revision(details.createRevision)}`;
  if (details.applied !== undefined && details.applied !== null) text += `, :applied ${details.applied}`;
  if (details.succeeded !== undefined && details.succeeded !== null) text += `, :succeeded ${details.succeeded}`;
  return text;
}

function formatEvent(event: HistoryEvent): string {
  return (
    `{:process ${event.process}, :type :${event.type}, :f :${event.f}, ` +
    `:key ${formatEdnString(event.key)}, :value ${formatEdnValue(event.value)}` +
    `${event.lease === undefined ? "" : `, :lease ${event.lease}`}${formatDetails(event.details)}}`
  );
}

/**
 * Records a history as it happens, e.g. in a simulation, with the same rules as parsed histories:
 * a process has at most one operation in flight. `invoke` returns the operation's handle, which is
 * also its id in `operations()`.
 */
export class HistoryRecorder {
  private readonly assembler = new HistoryAssembler();
  private readonly events: HistoryEvent[] = [];

  /**
   * An operation is invoked; `lease` (put, create and update only) is the lease its write attaches
   * the key to. Lease operations (grant, keepAlive, revoke, tick) name no key: `key` is "".
   */
  invoke(process: number, f: OperationKind, key: string, value: OperationInput, lease?: number): number {
    if (!Number.isSafeInteger(process)) {
      throw new CheckerError(CheckerErrorCode.Argument, `process must be an integer, got ${process}`);
    }
    if (typeof key !== "string") throw new CheckerError(CheckerErrorCode.Argument, "key must be a string");
    const edn = inputToEdn({ f, input: value } as OperationRequest);
    return this.record({ process, type: "invoke", f, key, value: edn, ...(lease === undefined ? {} : { lease }) });
  }

  /**
   * The operation completed; for a get or an entry, `value` is what it read. `details`: the
   * revision a write got or an entry read, an entry's createRevision, and whether a create,
   * update or delete wrote (false: it completed and changed nothing), whether a txn's compares
   * held, the keys a range returned.
   */
  ok(handle: number, value: Value = null, details?: CompletionDetails): void {
    const invocation = this.inFlight(handle);
    const { f } = invocation.request;
    const { entries, ...rest } = details ?? {};
    if ((f === "keys" || f === "list") !== (entries !== undefined && entries !== null)) {
      throw new CheckerError(CheckerErrorCode.Argument, `operation ${handle}: only a range completes with entries`);
    }
    // Like Jepsen, completions of writes repeat the invocation's value.
    const completionValue =
      f === "get" || f === "entry"
        ? value
        : entries !== undefined && entries !== null
          ? entriesToEdn(entries)
          : inputToEdn(invocation.request);
    this.complete(invocation, "ok", completionValue, details === undefined ? undefined : rest);
  }

  /** The operation definitely did not take effect. */
  fail(handle: number): void {
    const invocation = this.inFlight(handle);
    this.complete(invocation, "fail", inputToEdn(invocation.request));
  }

  /** The operation may or may not have taken effect. */
  info(handle: number): void {
    const invocation = this.inFlight(handle);
    this.complete(invocation, "info", inputToEdn(invocation.request));
  }

  /** The history as EDN, one event per line, in the format `parseHistory` reads. */
  toEdn(): string {
    return this.events.map((event) => `${formatEvent(event)}\n`).join("");
  }

  operations(): Operation[] {
    return this.assembler.operations();
  }

  private inFlight(handle: number): Invocation {
    const invocation = this.assembler.find(handle);
    if (invocation === undefined || invocation.outcome !== "pending") {
      throw new CheckerError(CheckerErrorCode.Argument, `operation ${handle} is not in flight`);
    }
    return invocation;
  }

  private complete(invocation: Invocation, type: EventType, value: EventValue, details?: CompletionDetails): void {
    const { process, key } = invocation;
    this.record({ process, type, f: invocation.request.f, key, value, ...(details === undefined ? {} : { details }) });
  }

  private record(event: HistoryEvent): number {
    const id = this.assembler.add(event, null);
    this.events.push(event);
    return id;
  }
}
