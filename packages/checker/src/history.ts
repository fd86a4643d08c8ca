import { EdnKeyword, type EdnMap, type EdnValue, formatEdnString, formatEdnValue, parseEdnMapLine } from "./edn.js";
import { CheckerError, CheckerErrorCode } from "./errors.js";
import type { CasInput, Operation, OperationInput, OperationKind, OperationRequest, Value } from "./operation.js";

type EventType = "invoke" | "ok" | "fail" | "info";

/** One line of a history: an invocation or a completion. */
interface HistoryEvent {
  readonly process: number;
  readonly type: EventType;
  readonly f: OperationKind;
  readonly key: string;
  readonly value: Value | CasInput;
}

const eventTypes: readonly EventType[] = ["invoke", "ok", "fail", "info"];
const operationKinds: readonly OperationKind[] = ["get", "put", "append", "cas", "delete"];

interface Invocation {
  readonly id: number;
  readonly process: number;
  readonly key: string;
  readonly request: OperationRequest;
  readonly call: number;
  outcome: "pending" | EventType;
  output: Value;
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

/** Returns the request, or an error message when the value does not fit the operation kind. */
function toRequest(f: OperationKind, value: Value | CasInput): OperationRequest | string {
  switch (f) {
    case "get":
    case "delete":
      return value === null ? { f, input: null } : `a :${f} invocation must have :value nil`;
    case "put":
    case "append":
      return typeof value === "string" ? { f, input: value } : `a :${f} invocation must have a string :value`;
    case "cas":
      return isCasInput(value)
        ? { f, input: [value[0], value[1]] }
        : "a :cas invocation must have :value [expected new] (new a string, expected a string or nil)";
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
      const request = toRequest(event.f, event.value);
      if (typeof request === "string") throw error(request);
      const invocation: Invocation = {
        id: this.invocations.length,
        process: event.process,
        key: event.key,
        request,
        call: position,
        outcome: "pending",
        output: null,
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
      if (event.f === "get") {
        if (event.value !== null && typeof event.value !== "string") {
          throw error("a :get completion must have a string or nil :value");
        }
        pending.output = event.value;
      }
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

function toEventValue(value: EdnValue, line: number): Value | CasInput {
  if (value === null || typeof value === "string") return value;
  if (isCasInput(value)) return value;
  throw new CheckerError(
    CheckerErrorCode.History,
    `line ${line}: :value must be a string, nil, or a vector [expected new] of strings (expected may be nil)`,
    { line },
  );
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
  return {
    process,
    type: keywordField(map, "type", eventTypes, line),
    f: keywordField(map, "f", operationKinds, line),
    key,
    // Jepsen omits :value where it is nil.
    value: toEventValue(map.get("value") ?? null, line),
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

function formatEvent(event: HistoryEvent): string {
  return (
    `{:process ${event.process}, :type :${event.type}, :f :${event.f}, ` +
    `:key ${formatEdnString(event.key)}, :value ${formatEdnValue(event.value)}}`
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

  invoke(process: number, f: OperationKind, key: string, value: OperationInput): number {
    if (!Number.isSafeInteger(process)) {
      throw new CheckerError(CheckerErrorCode.Argument, `process must be an integer, got ${process}`);
    }
    if (typeof key !== "string") throw new CheckerError(CheckerErrorCode.Argument, "key must be a string");
    return this.record({ process, type: "invoke", f, key, value });
  }

  /** The operation completed and took effect; for a get, `value` is what it read. */
  ok(handle: number, value: Value = null): void {
    const invocation = this.inFlight(handle);
    // Like Jepsen, completions of writes repeat the invocation's value.
    const completionValue = invocation.request.f === "get" ? value : invocation.request.input;
    this.complete(invocation, "ok", completionValue);
  }

  /** The operation definitely did not take effect. */
  fail(handle: number): void {
    const invocation = this.inFlight(handle);
    this.complete(invocation, "fail", invocation.request.input);
  }

  /** The operation may or may not have taken effect. */
  info(handle: number): void {
    const invocation = this.inFlight(handle);
    this.complete(invocation, "info", invocation.request.input);
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

  private complete(invocation: Invocation, type: EventType, value: Value | CasInput): void {
    this.record({ process: invocation.process, type, f: invocation.request.f, key: invocation.key, value });
  }

  private record(event: HistoryEvent): number {
    const id = this.assembler.add(event, null);
    this.events.push(event);
    return id;
  }
}
