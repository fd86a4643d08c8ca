import { ErrorCode, QuorateError } from "@quorate/core";
import { connectNats } from "@quorate/transport-nats";
import { adminRequest, findLeader } from "../admin-client.js";
import {
  type CommandSpec,
  clusterName,
  clusterOption,
  durationAlias,
  jsonOption,
  natsOptions,
  parseWithSettings,
  usageHint,
} from "../args.js";
import { natsConnectOptions } from "../connection.js";
import { durationMs } from "../duration.js";
import { type CommandIo, Exit } from "../io.js";

export const LEADER_SPEC = {
  name: "leader",
  synopsis: "transfer",
  summary: "Move Raft leadership to --to, or to the most up-to-date follower, through the current leader.",
  options: {
    ...natsOptions,
    ...clusterOption,
    ...jsonOption,
    to: { type: "string", value: "<id>", help: "the member to lead next", flagOnly: true },
    "timeout-ms": { type: "string", value: "<duration>", help: "how long to wait for the transfer", default: "10s" },
    timeout: durationAlias("timeout-ms"),
  },
} as const satisfies CommandSpec;

/** Moves leadership to `--to`, or to the most up-to-date follower, through the current leader. */
export async function leaderCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = await parseWithSettings(args, LEADER_SPEC, io.env);
  if (positionals.length !== 1 || positionals[0] !== "transfer") {
    throw new QuorateError(ErrorCode.Config, `unknown leader command\n${usageHint(LEADER_SPEC)}`);
  }
  const cluster = clusterName(values.cluster);
  const timeoutMs = durationMs(values["timeout-ms"], "timeout-ms", 10_000);
  const nc = await connectNats(await natsConnectOptions(values, io.env, "quorate-leader-cli"));
  try {
    const leader = await findLeader(nc, cluster);
    if (values.to === leader) throw new QuorateError(ErrorCode.Config, `'${values.to}' is already the leader`);
    const reply = await adminRequest(
      nc,
      cluster,
      leader,
      values.to === undefined ? { op: "transfer-leadership" } : { op: "transfer-leadership", to: values.to },
      timeoutMs,
    );
    io.stdout(
      values.json
        ? `${JSON.stringify({ from: leader, to: reply.leader })}\n`
        : `leadership moved from ${leader} to ${reply.leader}\n`,
    );
    return Exit.Ok;
  } finally {
    await nc.close();
  }
}
