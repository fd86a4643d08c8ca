import { QuorateError } from "@quorate/core";
import { type CommandSpec, DEFAULT_CLUSTER, helpText, wantsHelp } from "./args.js";
import { CHECK_SPEC, checkCommand } from "./commands/check.js";
import { ELECT_SPEC, electCommand } from "./commands/elect.js";
import { KV_SPEC, kvCommand } from "./commands/kv.js";
import { LEADER_SPEC, leaderCommand } from "./commands/leader.js";
import { LOCK_SPEC, lockCommand } from "./commands/lock.js";
import { MEMBER_SPEC, memberCommand } from "./commands/member.js";
import { NODE_SPEC, nodeCommand } from "./commands/node.js";
import { PAXOS_SPEC, paxosCommand } from "./commands/paxos.js";
import { SNAPSHOT_SPEC, snapshotCommand } from "./commands/snapshot.js";
import { START_SPEC, startCommand } from "./commands/start.js";
import { STATUS_SPEC, statusCommand } from "./commands/status.js";
import { VIEWER_SPEC, viewerCommand } from "./commands/viewer.js";
import { DEFAULT_NATS_URL } from "./connection.js";
import { type CommandIo, Exit } from "./io.js";
import { QUORATE_VERSION } from "./service/version.js";

interface Command {
  readonly spec: CommandSpec;
  run(args: readonly string[], io: CommandIo): Promise<number>;
}

/** Every command, by name, with the table its flags, usage and help come from. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  start: { spec: START_SPEC, run: startCommand },
  node: { spec: NODE_SPEC, run: nodeCommand },
  paxos: { spec: PAXOS_SPEC, run: paxosCommand },
  kv: { spec: KV_SPEC, run: kvCommand },
  lock: { spec: LOCK_SPEC, run: lockCommand },
  elect: { spec: ELECT_SPEC, run: electCommand },
  status: { spec: STATUS_SPEC, run: statusCommand },
  leader: { spec: LEADER_SPEC, run: leaderCommand },
  member: { spec: MEMBER_SPEC, run: memberCommand },
  snapshot: { spec: SNAPSHOT_SPEC, run: snapshotCommand },
  check: { spec: CHECK_SPEC, run: checkCommand },
  viewer: { spec: VIEWER_SPEC, run: viewerCommand },
};

function overview(): string {
  const rows = Object.values(COMMANDS).map(({ spec }) => [
    ["quorate", spec.name, spec.synopsis].filter((s) => s !== undefined).join(" "),
    spec.summary,
  ]);
  return [
    `quorate ${QUORATE_VERSION} — consensus for NATS platforms`,
    "",
    ...rows.flatMap(([usage, summary]) => [`  ${usage}`, `      ${summary}`]),
    "",
    "  quorate <command> --help    every flag of a command, its default and environment variable",
    "  quorate --version",
    "",
    `Environment: NATS_URL (default ${DEFAULT_NATS_URL}), QUORATE_CLUSTER (default "${DEFAULT_CLUSTER}").`,
    "",
  ].join("\n");
}

/** Runs one command; returns the exit code. Errors become a message and a non-zero exit. */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    io.stdout(overview());
    return name === undefined ? Exit.Error : Exit.Ok;
  }
  if (name === "--version" || name === "version") {
    io.stdout(`quorate ${QUORATE_VERSION}\n`);
    return Exit.Ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr(`unknown command '${name}'\n\n${overview()}`);
    return Exit.Error;
  }
  if (wantsHelp(args)) {
    io.stdout(helpText(command.spec));
    return Exit.Ok;
  }
  try {
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof QuorateError) io.stderr(`error (${err.code}): ${err.message}\n`);
    else io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return Exit.Error;
  }
}
