import { createLogger, ErrorCode, QuorateError, validateMembers } from "@quorate/core";
import { assertKvGroup, kvShardGroups } from "@quorate/kv/nats";
import { DEFAULT_SNAPSHOT_THRESHOLD, type RaftNode } from "@quorate/raft";
import {
  type CommandSpec,
  clusterName,
  logLevel,
  memberOptions,
  parse,
  positiveInt,
  required,
  settingKeys,
} from "../args.js";
import {
  booleanSetting,
  rejectInapplicable,
  resolveSettings,
  serviceOptions,
  serviceSettings,
  settingValues,
} from "../config.js";
import { natsConnectOptions } from "../connection.js";
import { durationMs } from "../duration.js";
import type { CommandIo } from "../io.js";
import { startRaftKvMember } from "../member.js";
import { type RaftKvGroupsMember, startRaftKvGroupsMember } from "../member-groups.js";
import { startTelemetry } from "../otel.js";
import { failureReason, replicaNotReady } from "../service/health.js";
import { runMember } from "../service/run.js";
import { PAXOS_ONLY_KEYS, paxosNodeCommand, paxosOptions } from "./paxos.js";

const nodeOptions = {
  protocol: { type: "string", value: "raft|paxos", help: "consensus protocol", default: "raft" },
  ...memberOptions,
  peers: {
    type: "string",
    value: "<id,id,...>",
    help: "the members of a new cluster; raft: a member not among them joins and waits to be added",
  },
  join: { type: "boolean", help: "raft: start empty and wait to be added (quorate member add); excludes --peers" },
  groups: {
    type: "string",
    value: "<N|name,...>",
    help: "raft: host N KV groups (kv-0 … kv-<N-1>) or the named ones, each with its own log and leader, on one connection and one data directory",
  },
  "lease-reads": { type: "boolean", help: "raft: serve reads under a leader lease, without a round" },
  "snapshot-threshold": {
    type: "string",
    value: "<entries>",
    help: "raft: applied entries between snapshots",
    default: String(DEFAULT_SNAPSHOT_THRESHOLD),
  },
  ...paxosOptions,
  ...serviceOptions,
} as const;

export const NODE_SPEC = {
  name: "node",
  summary:
    "Run one member until SIGINT/SIGTERM. Settings come from flags, then QUORATE_* variables, then --config; all are checked before anything starts.",
  options: nodeOptions,
} as const satisfies CommandSpec;

type NodeKey = keyof typeof nodeOptions;
const NODE_KEYS = settingKeys(nodeOptions);
const RAFT_ONLY_KEYS: NodeKey[] = ["join", "lease-reads", "snapshot-threshold", "groups"];

/**
 * Runs one member until SIGINT/SIGTERM, then shuts down cleanly. Settings come from flags, then
 * QUORATE_* variables, then `--config` (see config.ts); all are checked before anything starts.
 */
export async function nodeCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const parsed = parse(args, NODE_SPEC);
  const settings = await resolveSettings(NODE_KEYS, parsed.values, io.env);
  const protocol = settings.get("protocol") ?? "raft";
  if (protocol === "paxos") {
    rejectInapplicable(settings, RAFT_ONLY_KEYS, "applies to --protocol raft only");
    return paxosNodeCommand(settings, io, NODE_SPEC);
  }
  if (protocol !== "raft") {
    throw new QuorateError(ErrorCode.Config, `--protocol ${protocol} is not supported (supported: raft, paxos)`);
  }
  rejectInapplicable(settings, PAXOS_ONLY_KEYS, "applies to --protocol paxos only");
  const values = settingValues(settings, NODE_KEYS);
  const cluster = clusterName(values.cluster);
  const id = required(values.id, "id", NODE_SPEC);
  // A joining member learns the membership from the leader; its peers are not its to decide.
  const join = booleanSetting(settings, "join");
  if (join && values.peers !== undefined) {
    throw new QuorateError(
      ErrorCode.Config,
      "--join and --peers exclude each other: a joining member is added by the leader (quorate member add)",
    );
  }
  const peers = join
    ? []
    : required(values.peers, "peers", NODE_SPEC)
        .split(",")
        .map((p) => p.trim());
  // The peers only bootstrap a new cluster. A member outside them (a StatefulSet scaled up by one
  // gets the same QUORATE_PEERS as the pods before it) joins: it starts with no configuration and
  // waits to be added, or, with data, resumes the configuration its log holds.
  const scaledOut = !join && !peers.includes(id);
  const joins = join || scaledOut;
  if (!join) validateMembers(scaledOut ? [...peers, id] : peers, id);
  const leaseReads = booleanSetting(settings, "lease-reads");
  const snapshotThreshold = positiveInt(values["snapshot-threshold"], "snapshot-threshold", DEFAULT_SNAPSHOT_THRESHOLD);
  const dataDir = required(values.data, "data", NODE_SPEC);
  const tickMs = durationMs(values["tick-ms"], "tick-ms", 50);
  const level = logLevel(values["log-level"]);
  const service = serviceSettings(settings);
  const nats = await natsConnectOptions(values, io.env, `quorate-${cluster}-${id}`);
  const logger = createLogger(level, { member: id, cluster }, (line) => io.stderr(`${line}\n`));

  if (scaledOut) {
    logger.warn(
      "id is not among the peers, which only bootstrap a new cluster: starting as a joining member; with an empty data directory it waits to be added",
      {
        peers,
        waitsFor: `quorate member add ${id} --cluster ${cluster}`,
      },
    );
  }
  const groups = groupNames(values.groups);
  if (groups !== null && joins) {
    throw new QuorateError(
      ErrorCode.Config,
      `--groups needs --peers with this member among them: members of many groups cannot join yet (peers: ${peers.join(",")})`,
    );
  }
  const telemetry = await startTelemetry(io.env, { cluster, id });
  if (groups !== null) {
    try {
      return await runMember({
        io,
        logger,
        nats,
        ...service,
        start: (nc) =>
          startRaftKvGroupsMember({
            nc,
            cluster,
            id,
            members: peers,
            groups,
            snapshotThreshold,
            dataDir,
            tickMs,
            logger,
            ...(leaseReads ? { raft: { leaseReads } } : {}),
          }),
        probe: (member) => ({
          failures: () => groups.flatMap((g) => failureReason(`raft group ${g}`, nodeOf(member, g).failure)),
          notReady: () => groups.flatMap((g) => replicaNotReady(nodeOf(member, g).status()).map((r) => `${g}: ${r}`)),
          status: () => member.status(),
        }),
        stop: (member) => member.stop(),
        describe: (_member, nc) => ({
          groups,
          members: peers,
          dataDir,
          nats: nc.getServer(),
          telemetry: telemetry.enabled,
        }),
      });
    } finally {
      await telemetry.shutdown();
    }
  }
  try {
    return await runMember({
      io,
      logger,
      nats,
      ...service,
      // NATS first (in runMember): while it is unreachable nothing is written to the data directory.
      start: (nc) =>
        startRaftKvMember({
          nc,
          cluster,
          id,
          members: joins ? [] : peers,
          join: joins,
          snapshotThreshold,
          dataDir,
          tickMs,
          logger,
          ...(leaseReads ? { raft: { leaseReads } } : {}),
        }),
      probe: (member) => ({
        failures: () => failureReason("raft node", member.node.failure),
        notReady: () => replicaNotReady(member.node.status()),
        status: () => member.node.status(),
      }),
      stop: (member) => member.stop(),
      describe: (member, nc) => ({
        ...member.node.membership(),
        join: joins,
        dataDir,
        nats: nc.getServer(),
        telemetry: telemetry.enabled,
      }),
    });
  } finally {
    // Flush spans and metrics even when start-up failed: the failure may be what the user looks for.
    await telemetry.shutdown();
  }
}

/** `--groups`: a count N names kv-0 … kv-<N-1> (kvShardGroups); otherwise a comma-separated list of names. */
function groupNames(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  if (/^\d+$/.test(value.trim())) return kvShardGroups(positiveInt(value.trim(), "groups", 1));
  const names = value.split(",").map((name) => name.trim());
  for (const name of names) assertKvGroup(name);
  return names;
}

function nodeOf(member: RaftKvGroupsMember, group: string): RaftNode {
  const node = member.groups.service(group).raft;
  if (node === null) throw new QuorateError(ErrorCode.Invariant, `group ${group} has no Raft node`);
  return node;
}
