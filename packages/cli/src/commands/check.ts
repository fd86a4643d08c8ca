import { runCheckCommand } from "@quorate/checker";
import { ErrorCode, QuorateError } from "@quorate/core";
import { parse, positiveInt } from "../args.js";
import type { CommandIo } from "../io.js";

const USAGE = "quorate check <history.edn> [--json] [--timeout-ms 60000]";

/** Exit 0 linearizable, 1 not linearizable, 2 undecided or unreadable. */
export async function checkCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: "boolean" }, "timeout-ms": { type: "string" } }, USAGE);
  const [file, ...rest] = positionals;
  if (file === undefined || rest.length > 0)
    throw new QuorateError(ErrorCode.Config, `one history file is required\nusage: ${USAGE}`);
  return runCheckCommand(
    { file, json: values.json ?? false, timeoutMs: positiveInt(values["timeout-ms"], "timeout-ms", 60_000) },
    { stdout: io.stdout, stderr: io.stderr },
  );
}
