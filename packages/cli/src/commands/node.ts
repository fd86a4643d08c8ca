import { createLogger, ErrorCode, QuorateError, validateMembers } from "@quorate/core";
import { clusterName, logLevel, memberOptions, natsConnectOptions, parse, positiveInt, required } from "../args.js";
import { rejectInapplicable, resolveSettings, serviceOptions, serviceSettings, settingValues } from "../config.js";
import type { CommandIo } from "../io.js";
import { startRaftKvMember } from "../member.js";
import { startTelemetry } from "../otel.js";
import { failureReason, replicaNotReady } from "../service/health.js";
import { runMember } from "../service/run.js";
import { PAXOS_ONLY_KEYS, paxosNodeCommand, paxosOptions } from "./paxos.js";

const USAGE =
  "quorate node --protocol raft|paxos --cluster <name> --id <id> --peers <id,id,...> --data <dir> [--nats <url>] [--config <file.json>] [--health-port <port>] [--nats-wait-ms <ms>] [--tick-ms 50] [--log-level info] (paxos: [--q1 n] [--q2 n] [--checkpoint-interval n])";

const nodeOptions = {
  ...memberOptions,
  ...serviceOptions,
  ...paxosOptions,
  protocol: { type: "string" },
  peers: { type: "string" },
} as const;

type NodeKey = keyof typeof nodeOptions;
const NODE_KEYS = Object.keys(nodeOptions) as NodeKey[];

/**
 * Runs one member until SIGINT/SIGTERM, then shuts down cleanly. Settings come from flags, then
 * QUORATE_* variables, then `--config` (see config.ts); all are checked before anything starts.
 */
export async function nodeCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const parsed = parse(args, nodeOptions, USAGE);
  const settings = await resolveSettings(NODE_KEYS, parsed.values, io.env);
  const protocol = settings.get("protocol") ?? "raft";
  if (protocol === "paxos") return paxosNodeCommand(settings, io, USAGE);
  if (protocol !== "raft") {
    throw new QuorateError(ErrorCode.Config, `--protocol ${protocol} is not supported (supported: raft, paxos)`);
  }
  rejectInapplicable(settings, PAXOS_ONLY_KEYS, "applies to --protocol paxos only");
  const values = settingValues(settings, NODE_KEYS);
  const cluster = clusterName(values.cluster, io.env);
  const id = required(values.id, "id", USAGE);
  const peers = required(values.peers, "peers", USAGE)
    .split(",")
    .map((p) => p.trim());
  validateMembers(peers, id);
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
      start: (nc) => startRaftKvMember({ nc, cluster, id, members: peers, dataDir, tickMs, logger }),
      probe: (member) => ({
        failures: () => failureReason("raft node", member.node.failure),
        notReady: () => replicaNotReady(member.node.status()),
        status: () => member.node.status(),
      }),
      stop: (member) => member.stop(),
      describe: (_member, nc) => ({ peers, dataDir, nats: nc.getServer(), telemetry: telemetry.enabled }),
    });
  } finally {
    // Flush spans and metrics even when start-up failed: the failure may be what the user looks for.
    await telemetry.shutdown();
  }
}
