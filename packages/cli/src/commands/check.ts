import { runCheckCommand } from "@quorate/checker";
import { ErrorCode, QuorateError } from "@quorate/core";
import { type CommandSpec, durationAlias, jsonOption, parse, usageHint } from "../args.js";
import { durationMs } from "../duration.js";
import type { CommandIo } from "../io.js";

export const CHECK_SPEC = {
  name: "check",
  synopsis: "<history.edn>",
  summary:
    "Check a Jepsen-style EDN history for linearizability. Exit 0 linearizable, 1 not, 2 undecided or unreadable.",
  options: {
    ...jsonOption,
    "timeout-ms": {
      type: "string",
      value: "<duration>",
      help: "give up (undecided) after this long",
      default: "60s",
      flagOnly: true,
    },
    timeout: durationAlias("timeout-ms"),
  },
} as const satisfies CommandSpec;

/** Exit 0 linearizable, 1 not linearizable, 2 undecided or unreadable. */
export async function checkCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args, CHECK_SPEC);
  const [file, ...rest] = positionals;
  if (file === undefined || rest.length > 0)
    throw new QuorateError(ErrorCode.Config, `one history file is required\n${usageHint(CHECK_SPEC)}`);
  return runCheckCommand(
    { file, json: values.json ?? false, timeoutMs: durationMs(values["timeout-ms"], "timeout-ms", 60_000) },
    { stdout: io.stdout, stderr: io.stderr },
  );
}
