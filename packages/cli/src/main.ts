import { QuorateError } from "@quorate/core";
import { checkCommand } from "./commands/check.js";
import { kvCommand } from "./commands/kv.js";
import { leaderCommand } from "./commands/leader.js";
import { memberCommand } from "./commands/member.js";
import { nodeCommand } from "./commands/node.js";
import { paxosCommand } from "./commands/paxos.js";
import { startCommand } from "./commands/start.js";
import { statusCommand } from "./commands/status.js";
import { type CommandIo, Exit } from "./io.js";

const COMMANDS: Record<string, (args: readonly string[], io: CommandIo) => Promise<number>> = {
  start: startCommand,
  node: nodeCommand,
  kv: kvCommand,
  status: statusCommand,
  check: checkCommand,
  leader: leaderCommand,
  member: memberCommand,
  paxos: paxosCommand,
};

const HELP = `quorate — consensus for NATS platforms

  quorate start                 run a local 3-member Raft KV cluster until Ctrl-C
  quorate node ...              run one member (--protocol raft|paxos --cluster --id --peers --data --nats)
  quorate paxos <role> ...      run one Multi-Paxos role: acceptor, proposer or learner
  quorate kv get|put|del|cas|ls|watch
                                use the replicated KV store
  quorate status                show every member: role, term, leader, commit and applied indexes
  quorate leader transfer       move Raft leadership (--to <id>, else the most up-to-date follower)
  quorate member list|add|promote|remove
                                change Raft membership one member at a time (new members start with --join)
  quorate check <history>       check a Jepsen-style EDN history for linearizability

Environment: NATS_URL (default nats://127.0.0.1:4222), QUORATE_CLUSTER (default "quorate").
`;

/** Runs one command; returns the exit code. Errors become a message and a non-zero exit. */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    io.stdout(HELP);
    return name === undefined ? Exit.Error : Exit.Ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr(`unknown command '${name}'\n\n${HELP}`);
    return Exit.Error;
  }
  try {
    return await command(args, io);
  } catch (err) {
    if (err instanceof QuorateError) io.stderr(`error (${err.code}): ${err.message}\n`);
    else io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return Exit.Error;
  }
}
