import { createLogger, ErrorCode, QuorateError, validateMembers } from "@quorate/core";
import { connectNats } from "@quorate/transport-nats";
import { clusterName, logLevel, memberOptions, natsConnectOptions, parse, positiveInt, required } from "../args.js";
import { type CommandIo, Exit } from "../io.js";
import { startRaftKvMember } from "../member.js";
import { startTelemetry } from "../otel.js";
import { isPaxosNode, paxosNodeCommand } from "./paxos.js";

const USAGE =
  "quorate node --protocol raft --cluster <name> --id <id> --peers <id,id,...> --data <dir> [--nats <url>] [--tick-ms 50] [--log-level info]";

/** Runs one member until SIGINT/SIGTERM, then shuts down cleanly. */
export async function nodeCommand(args: readonly string[], io: CommandIo): Promise<number> {
  if (isPaxosNode(args)) return paxosNodeCommand(args, io);
  const { values } = parse(args, { ...memberOptions, protocol: { type: "string" }, peers: { type: "string" } }, USAGE);
  const protocol = values.protocol ?? "raft";
  if (protocol !== "raft") {
    throw new QuorateError(ErrorCode.Config, `--protocol ${protocol} is not supported (supported: raft, paxos)`);
  }
  const cluster = clusterName(values.cluster, io.env);
  const id = required(values.id, "id", USAGE);
  const peers = required(values.peers, "peers", USAGE)
    .split(",")
    .map((p) => p.trim());
  validateMembers(peers, id);
  const dataDir = required(values.data, "data", USAGE);
  const tickMs = positiveInt(values["tick-ms"], "tick-ms", 50);
  const level = logLevel(values["log-level"], io.env);
  const logger = createLogger(level, { member: id, cluster }, (line) => io.stderr(`${line}\n`));

  const telemetry = await startTelemetry(io.env, id);
  try {
    // NATS first: if it is unreachable we exit before anything is written to the data directory.
    const nc = await connectNats(natsConnectOptions(values, io.env, `quorate-${cluster}-${id}`), logger);
    let member: Awaited<ReturnType<typeof startRaftKvMember>>;
    try {
      member = await startRaftKvMember({ nc, cluster, id, members: peers, dataDir, tickMs, logger });
    } catch (err) {
      await nc.close();
      throw err;
    }
    logger.info("member running", { peers, dataDir, nats: nc.getServer(), telemetry: telemetry.enabled });
    const signal = await io.stopSignal;
    logger.info("shutting down", { signal });
    await member.stop();
    await nc.drain();
    return Exit.Ok;
  } finally {
    // Flush spans and metrics even when start-up failed: the failure may be what the user looks for.
    await telemetry.shutdown();
  }
}
