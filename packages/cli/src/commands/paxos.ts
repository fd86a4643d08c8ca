import { createLogger, ErrorCode, QuorateError, validateMembers } from "@quorate/core";
import { type PaxosRoleName, paxosRoleId, resolveTopology } from "@quorate/paxos";
import {
  type CommandSpec,
  clusterName,
  logLevel,
  memberOptions,
  parse,
  positiveInt,
  required,
  type SettingKey,
  settingKeys,
  usageHint,
} from "../args.js";
import {
  resolveSettings,
  type ServiceKey,
  type Settings,
  serviceOptions,
  serviceSettings,
  settingValues,
} from "../config.js";
import { natsConnectOptions } from "../connection.js";
import { durationMs } from "../duration.js";
import type { CommandIo } from "../io.js";
import { startTelemetry } from "../otel.js";
import { type PaxosMember, startPaxosMember } from "../paxos-member.js";
import { failureReason, replicaNotReady } from "../service/health.js";
import { runMember } from "../service/run.js";

const ROLES: readonly PaxosRoleName[] = ["acceptor", "proposer", "learner"];

/** Options only Multi-Paxos members take; `quorate node` accepts them with `--protocol paxos`. */
export const paxosOptions = {
  q1: { type: "string", value: "<n>", help: "paxos: phase-1 quorum size", default: "a majority" },
  q2: { type: "string", value: "<n>", help: "paxos: phase-2 quorum size", default: "a majority" },
  "checkpoint-interval": {
    type: "string",
    value: "<slots>",
    help: "paxos: chosen slots between learner checkpoints",
    default: "1000",
  },
} as const;

export const PAXOS_ONLY_KEYS = Object.keys(paxosOptions) as (keyof typeof paxosOptions)[];

const roleIds = (role: string) =>
  ({ type: "string", value: "<id,id,...>", help: `ids of the ${role}`, required: true }) as const;

const roleOptions = {
  ...memberOptions,
  acceptors: roleIds("acceptors"),
  proposers: roleIds("proposers"),
  learners: roleIds("learners"),
  ...paxosOptions,
  ...serviceOptions,
} as const;

export const PAXOS_SPEC = {
  name: "paxos",
  synopsis: "acceptor|proposer|learner",
  summary: "Run one Multi-Paxos role per process until SIGINT/SIGTERM (quorate node --protocol paxos runs all three).",
  options: roleOptions,
} as const satisfies CommandSpec;

const ROLE_KEYS = settingKeys(roleOptions);

/** The settings every Paxos run reads. */
type PaxosKey = SettingKey<typeof memberOptions> | keyof typeof paxosOptions | ServiceKey;
const PAXOS_KEYS: PaxosKey[] = [...settingKeys(memberOptions), ...PAXOS_ONLY_KEYS, ...settingKeys(serviceOptions)];

function ids(value: string | undefined, flag: string, spec: CommandSpec): string[] {
  const list = required(value, flag, spec)
    .split(",")
    .map((s) => s.trim());
  validateMembers(list);
  return list;
}

function optionalInt(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : positiveInt(value, flag, 1);
}

/** `quorate paxos <role> ...`: one role per process. */
export async function paxosCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const [role, ...rest] = args;
  if (!ROLES.includes(role as PaxosRoleName)) {
    throw new QuorateError(ErrorCode.Config, `unknown paxos role '${role ?? ""}'\n${usageHint(PAXOS_SPEC)}`);
  }
  const parsed = parse(rest, PAXOS_SPEC);
  const settings = await resolveSettings(ROLE_KEYS, parsed.values, io.env);
  return run(io, settings, [role as PaxosRoleName], {
    acceptors: ids(settings.get("acceptors"), "acceptors", PAXOS_SPEC),
    proposers: ids(settings.get("proposers"), "proposers", PAXOS_SPEC),
    learners: ids(settings.get("learners"), "learners", PAXOS_SPEC),
    spec: PAXOS_SPEC,
  });
}

/** `quorate node --protocol paxos ...`: member X runs acceptor X, proposer X and learner X. */
export async function paxosNodeCommand(
  settings: Settings<PaxosKey | "peers">,
  io: CommandIo,
  spec: CommandSpec,
): Promise<number> {
  const peers = ids(settings.get("peers"), "peers", spec);
  return run(io, settings, ROLES, { acceptors: peers, proposers: peers, learners: peers, spec });
}

async function run(
  io: CommandIo,
  settings: Settings<PaxosKey>,
  roles: readonly PaxosRoleName[],
  members: { acceptors: string[]; proposers: string[]; learners: string[]; spec: CommandSpec },
): Promise<number> {
  const values = settingValues(settings, PAXOS_KEYS);
  const cluster = clusterName(values.cluster);
  const id = required(values.id, "id", members.spec);
  const dataDir = required(values.data, "data", members.spec);
  const tickMs = durationMs(values["tick-ms"], "tick-ms", 50);
  const level = logLevel(values["log-level"]);
  const q1 = optionalInt(values.q1, "q1");
  const q2 = optionalInt(values.q2, "q2");
  const checkpointInterval = optionalInt(values["checkpoint-interval"], "checkpoint-interval");
  // Checked now, before NATS or the data directory are touched: the id must run each role it
  // is asked to, and the quorums must intersect.
  for (const role of roles) validateMembers(members[`${role}s`], id);
  resolveTopology({
    acceptors: members.acceptors.map((m) => paxosRoleId(m, "acceptor")),
    proposers: members.proposers.map((m) => paxosRoleId(m, "proposer")),
    learners: members.learners.map((m) => paxosRoleId(m, "learner")),
    ...(q1 === undefined ? {} : { q1 }),
    ...(q2 === undefined ? {} : { q2 }),
  });
  const service = serviceSettings(settings);
  const nats = await natsConnectOptions(values, io.env, `quorate-${cluster}-${id}-paxos`);
  const logger = createLogger(level, { member: id, cluster, roles: roles.join(",") }, (line) => io.stderr(`${line}\n`));

  // Started as for a Raft member, so every role exports its spans and metrics; flushed even when
  // start-up failed, as the failure may be what the user looks for.
  const telemetry = await startTelemetry(io.env, { cluster, id });
  return runMember<PaxosMember>({
    io,
    logger,
    nats,
    ...service,
    start: (nc) =>
      startPaxosMember({
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
      }),
    probe: (member) => ({
      failures: () => [
        ...failureReason("acceptor", member.acceptor?.failure ?? null),
        ...failureReason("proposer", member.proposer?.failure ?? null),
        ...failureReason("learner", member.learner?.failure ?? null),
      ],
      notReady: () => paxosNotReady(member),
      status: () => member.statuses(),
    }),
    stop: (member) => member.stop(),
    describe: (_member, nc) => ({ roles, dataDir, nats: nc.getServer(), telemetry: telemetry.enabled }),
  }).finally(() => telemetry.shutdown());
}

/**
 * An acceptor is ready once it runs (it only answers proposers); a proposer once it knows the
 * active proposer (itself or another); a learner once it also applied what it knows is chosen.
 */
function paxosNotReady(member: PaxosMember): string[] {
  const reasons: string[] = [];
  if (member.proposer !== null && member.proposer.status().leader === null) {
    reasons.push("proposer: no active proposer known");
  }
  if (member.learner !== null) {
    reasons.push(...replicaNotReady(member.learner.status(), "active proposer").map((r) => `learner: ${r}`));
  }
  return reasons;
}
