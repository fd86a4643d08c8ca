import { createLogger, ErrorCode, QuorateError, validateMembers } from "@quorate/core";
import type { PaxosRoleName } from "@quorate/paxos";
import { connectNats } from "@quorate/transport-nats";
import { clusterName, logLevel, memberOptions, natsConnectOptions, parse, positiveInt, required } from "../args.js";
import { type CommandIo, Exit } from "../io.js";
import { startPaxosMember } from "../paxos-member.js";

const ROLE_USAGE =
  "quorate paxos acceptor|proposer|learner --cluster <name> --id <id> --acceptors <ids> --proposers <ids> --learners <ids> --data <dir> [--nats <url>] [--q1 n] [--q2 n] [--tick-ms 50] [--checkpoint-interval 1000] [--log-level info]";
const NODE_USAGE =
  "quorate node --protocol paxos --cluster <name> --id <id> --peers <id,id,...> --data <dir> [--nats <url>] [--q1 n] [--q2 n] [--tick-ms 50] [--log-level info]";

const ROLES: readonly PaxosRoleName[] = ["acceptor", "proposer", "learner"];

const paxosOptions = {
  ...memberOptions,
  q1: { type: "string" },
  q2: { type: "string" },
  "checkpoint-interval": { type: "string" },
} as const;

function ids(value: string | undefined, flag: string, usage: string): string[] {
  const list = required(value, flag, usage)
    .split(",")
    .map((s) => s.trim());
  validateMembers(list);
  return list;
}

function optionalInt(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : positiveInt(value, flag, 1);
}

/** True when `quorate node` was asked for Multi-Paxos; that command then hands over to this one. */
export function isPaxosNode(args: readonly string[]): boolean {
  const i = args.indexOf("--protocol");
  return args.includes("--protocol=paxos") || (i >= 0 && args[i + 1] === "paxos");
}

/** `quorate paxos <role> ...`: one role per process. */
export async function paxosCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const [role, ...rest] = args;
  if (!ROLES.includes(role as PaxosRoleName)) {
    throw new QuorateError(ErrorCode.Config, `unknown paxos role '${role ?? ""}'\nusage: ${ROLE_USAGE}`);
  }
  const { values } = parse(
    rest,
    { ...paxosOptions, acceptors: { type: "string" }, proposers: { type: "string" }, learners: { type: "string" } },
    ROLE_USAGE,
  );
  return run(io, values, [role as PaxosRoleName], {
    acceptors: ids(values.acceptors, "acceptors", ROLE_USAGE),
    proposers: ids(values.proposers, "proposers", ROLE_USAGE),
    learners: ids(values.learners, "learners", ROLE_USAGE),
    usage: ROLE_USAGE,
  });
}

/** `quorate node --protocol paxos ...`: member X runs acceptor X, proposer X and learner X. */
export async function paxosNodeCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parse(
    args,
    { ...paxosOptions, protocol: { type: "string" }, peers: { type: "string" } },
    NODE_USAGE,
  );
  const peers = ids(values.peers, "peers", NODE_USAGE);
  return run(io, values, ROLES, { acceptors: peers, proposers: peers, learners: peers, usage: NODE_USAGE });
}

async function run(
  io: CommandIo,
  values: { [K in keyof typeof paxosOptions]?: string | undefined },
  roles: readonly PaxosRoleName[],
  members: { acceptors: string[]; proposers: string[]; learners: string[]; usage: string },
): Promise<number> {
  const cluster = clusterName(values.cluster, io.env);
  const id = required(values.id, "id", members.usage);
  const dataDir = required(values.data, "data", members.usage);
  const tickMs = positiveInt(values["tick-ms"], "tick-ms", 50);
  const level = logLevel(values["log-level"], io.env);
  const q1 = optionalInt(values.q1, "q1");
  const q2 = optionalInt(values.q2, "q2");
  const checkpointInterval = optionalInt(values["checkpoint-interval"], "checkpoint-interval");
  const logger = createLogger(level, { member: id, cluster, roles: roles.join(",") }, (line) => io.stderr(`${line}\n`));

  // NATS first: if it is unreachable we exit before anything is written to the data directory.
  const nc = await connectNats(natsConnectOptions(values, io.env, `quorate-${cluster}-${id}-paxos`), logger);
  let member: Awaited<ReturnType<typeof startPaxosMember>>;
  try {
    member = await startPaxosMember({
      nc,
      cluster,
      id,
      roles,
      acceptors: members.acceptors,
      proposers: members.proposers,
      learners: members.learners,
      dataDir,
      tickMs,
      logger,
      ...(q1 === undefined ? {} : { q1 }),
      ...(q2 === undefined ? {} : { q2 }),
      ...(checkpointInterval === undefined ? {} : { checkpointInterval }),
    });
  } catch (err) {
    await nc.close();
    throw err;
  }
  logger.info("paxos roles running", { roles, dataDir, nats: nc.getServer() });
  const signal = await io.stopSignal;
  logger.info("shutting down", { signal });
  await member.stop();
  await nc.drain();
  return Exit.Ok;
}
