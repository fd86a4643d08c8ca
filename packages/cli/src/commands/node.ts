import { createLogger, ErrorCode, QuorateError, validateMembers } from "@quorate/core";
import { DEFAULT_SNAPSHOT_THRESHOLD } from "@quorate/raft";
import { clusterName, logLevel, memberOptions, natsConnectOptions, parse, positiveInt, required } from "../args.js";
import {
  booleanSetting,
  rejectInapplicable,
  resolveSettings,
  serviceOptions,
  serviceSettings,
  settingValues,
} from "../config.js";
import type { CommandIo } from "../io.js";
import { startRaftKvMember } from "../member.js";
import { startTelemetry } from "../otel.js";
import { failureReason, replicaNotReady } from "../service/health.js";
import { runMember } from "../service/run.js";
import { PAXOS_ONLY_KEYS, paxosNodeCommand, paxosOptions } from "./paxos.js";

const USAGE =
  "quorate node --protocol raft|paxos --cluster <name> --id <id> --peers <id,id,...>|--join --data <dir> [--lease-reads] [--snapshot-threshold 8192] [--nats <url>] [--config <file.json>] [--health-port <port>] [--nats-wait-ms <ms>] [--tick-ms 50] [--log-level info] (paxos: [--q1 n] [--q2 n] [--checkpoint-interval n])";

const nodeOptions = {
  ...memberOptions,
  ...serviceOptions,
  ...paxosOptions,
  protocol: { type: "string" },
  peers: { type: "string" },
  join: { type: "boolean" },
  "lease-reads": { type: "boolean" },
  "snapshot-threshold": { type: "string" },
} as const;

type NodeKey = keyof typeof nodeOptions;
const NODE_KEYS = Object.keys(nodeOptions) as NodeKey[];
const RAFT_ONLY_KEYS: NodeKey[] = ["join", "lease-reads", "snapshot-threshold"];

/**
 * Runs one member until SIGINT/SIGTERM, then shuts down cleanly. Settings come from flags, then
 * QUORATE_* variables, then `--config` (see config.ts); all are checked before anything starts.
 */
export async function nodeCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const parsed = parse(args, nodeOptions, USAGE);
  const settings = await resolveSettings(NODE_KEYS, parsed.values, io.env);
  const protocol = settings.get("protocol") ?? "raft";
  if (protocol === "paxos") {
    rejectInapplicable(settings, RAFT_ONLY_KEYS, "applies to --protocol raft only");
    return paxosNodeCommand(settings, io, USAGE);
  }
  if (protocol !== "raft") {
    throw new QuorateError(ErrorCode.Config, `--protocol ${protocol} is not supported (supported: raft, paxos)`);
  }
  rejectInapplicable(settings, PAXOS_ONLY_KEYS, "applies to --protocol paxos only");
  const values = settingValues(settings, NODE_KEYS);
  const cluster = clusterName(values.cluster, io.env);
  const id = required(values.id, "id", USAGE);
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
    : required(values.peers, "peers", USAGE)
        .split(",")
        .map((p) => p.trim());
  if (!join) validateMembers(peers, id);
  const leaseReads = booleanSetting(settings, "lease-reads");
  const snapshotThreshold = positiveInt(values["snapshot-threshold"], "snapshot-threshold", DEFAULT_SNAPSHOT_THRESHOLD);
  const dataDir = required(values.data, "data", USAGE);
  const tickMs = positiveInt(values["tick-ms"], "tick-ms", 50);
  const level = logLevel(values["log-level"], io.env);
  const service = serviceSettings(settings);
  const nats = natsConnectOptions(values, io.env, `quorate-${cluster}-${id}`);
  const logger = createLogger(level, { member: id, cluster }, (line) => io.stderr(`${line}\n`));

  const telemetry = await startTelemetry(io.env, id);
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
          members: peers,
          join,
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
        join,
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
