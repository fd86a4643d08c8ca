import { readFile } from "node:fs/promises";
import { type CheckResult, checkHistoryText, type KeyResult } from "./check.js";
import { formatEdnString, formatEdnValue } from "./edn.js";
import { isCheckerError } from "./errors.js";
import { entriesToEdn, inputToEdn } from "./history.js";
import type { Operation } from "./operation.js";

export interface CheckCommandArgs {
  readonly file: string;
  /** Print the CheckResult as JSON instead of a text report. */
  readonly json: boolean;
  readonly timeoutMs?: number;
}

/** Where the command writes; each call gets text ending in a newline, as with process.stdout.write. */
export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const CheckExitCode = {
  Linearizable: 0,
  NotLinearizable: 1,
  /** Undecided within the time limit, or the history could not be read or parsed. */
  Undecided: 2,
} as const;

/** The revisions and outcome an operation recorded, as EDN map entries each followed by ", ". */
function formatRevisions(operation: Operation): string {
  let text = "";
  if ("lease" in operation && operation.lease !== undefined) text += `:lease ${operation.lease}, `;
  if (operation.revision !== null) text += `:revision ${operation.revision}, `;
  if (operation.createRevision !== null) text += `:create-revision ${operation.createRevision}, `;
  if (operation.applied !== null) text += `:applied ${operation.applied}, `;
  if (operation.succeeded !== undefined && operation.succeeded !== null) text += `:succeeded ${operation.succeeded}, `;
  return text;
}

/** One operation as an EDN map in the style of the history's lines: `:value` is what a get read. */
function formatOperation(operation: Operation): string {
  const value =
    operation.f === "get" || operation.f === "entry"
      ? operation.output
      : (operation.f === "keys" || operation.f === "list") && operation.entries
        ? entriesToEdn(operation.entries)
        : inputToEdn(operation);
  const completion = operation.return === Number.POSITIVE_INFINITY ? "nil" : String(operation.return);
  return (
    `{:id ${operation.id}, :process ${operation.process}, :type :${operation.status === "ok" ? "ok" : "info"}, ` +
    `:f :${operation.f}, :key ${formatEdnString(operation.key)}, :value ${formatEdnValue(value)}, ` +
    `${formatRevisions(operation)}:invoked ${operation.call}, :completed ${completion}}`
  );
}

function formatKeys(keys: readonly KeyResult[]): string {
  return keys.map((result) => formatEdnString(result.key)).join(", ");
}

function formatReport(result: CheckResult, timeoutMs: number | undefined): string {
  const operationCount = result.keys.reduce((sum, key) => sum + key.operationCount, 0);
  if (result.verdict === "linearizable") {
    const keyCount = result.keys.reduce((sum, key) => sum + (key.keys?.length ?? 1), 0);
    return `linearizable: ${operationCount} operations on ${keyCount} keys\n`;
  }
  if (result.revisionOrder !== undefined) {
    const { reason, operations } = result.revisionOrder;
    const lines = [`not linearizable: ${reason}`, ...operations.map((op) => `  ${formatOperation(op)}`)];
    return `${lines.join("\n")}\n`;
  }
  const failed = result.keys.find((key) => key.failure !== undefined);
  if (failed?.failure !== undefined) {
    const { linearized, value, candidates } = failed.failure;
    // A part of several keys (tied by transactions, ranges or leases) or of the lease table leaves its contents as JSON.
    const keys = failed.keys ?? (failed.key === "" ? [] : [failed.key]);
    const tied = `${failed.leases === true ? "the leases and " : ""}keys ${keys.map(formatEdnString).join(", ")}`;
    const lines =
      failed.keys === undefined && failed.leases === undefined
        ? [
            `not linearizable: key ${formatEdnString(failed.key)}`,
            `The deepest partial linearization orders ${linearized.length} of its ${failed.operationCount} operations ` +
              `and leaves the key ${value === null ? "absent" : `holding ${formatEdnString(value)}`}.`,
          ]
        : [
            `not linearizable: ${tied} (tied by transactions, ranges or leases)`,
            `The deepest partial linearization orders ${linearized.length} of their ${failed.operationCount} ` +
              `operations and leaves them holding ${value} (absent keys left out).`,
          ];
    const last = linearized.at(-1);
    if (last !== undefined) lines.push("Last operation ordered:", `  ${formatOperation(last)}`);
    lines.push("None of these operations can come next:", ...candidates.map((op) => `  ${formatOperation(op)}`));
    return `${lines.join("\n")}\n`;
  }
  const lines = ["unknown: the check could not decide"];
  const timedOut = result.keys.filter((key) => key.undecided === "time-limit");
  const tooLarge = result.keys.filter((key) => key.undecided === "search-too-large");
  if (timedOut.length > 0) {
    lines.push(`The time limit of ${timeoutMs} ms ran out before deciding keys ${formatKeys(timedOut)}.`);
  }
  if (tooLarge.length > 0) lines.push(`The search grew too large for keys ${formatKeys(tooLarge)}.`);
  return `${lines.join("\n")}\n`;
}

function exitCodeOf(result: CheckResult): number {
  switch (result.verdict) {
    case "linearizable":
      return CheckExitCode.Linearizable;
    case "not-linearizable":
      return CheckExitCode.NotLinearizable;
    case "unknown":
      return CheckExitCode.Undecided;
  }
}

/**
 * `quorate check <file> [--json]`: exit 0 if the history is linearizable, 1 if not (with a witness),
 * 2 if undecided within the time limit or if the file cannot be read or parsed (message on stderr).
 * With `json`, stdout gets the CheckResult as JSON, an unknown return time as null.
 */
export async function runCheckCommand(args: CheckCommandArgs, io: CommandIo): Promise<number> {
  let text: string;
  try {
    text = await readFile(args.file, "utf8");
  } catch (error) {
    io.stderr(`quorate check: cannot read ${args.file}: ${error instanceof Error ? error.message : String(error)}\n`);
    return CheckExitCode.Undecided;
  }
  let result: CheckResult;
  try {
    result = checkHistoryText(text, { timeoutMs: args.timeoutMs });
  } catch (error) {
    if (!isCheckerError(error)) throw error;
    io.stderr(`quorate check: ${args.file}: ${error.message} (${error.code})\n`);
    return CheckExitCode.Undecided;
  }
  io.stdout(args.json ? `${JSON.stringify(result)}\n` : formatReport(result, args.timeoutMs));
  return exitCodeOf(result);
}
