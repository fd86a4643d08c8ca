import { ErrorCode, QuorateError } from "@quorate/core";
import { connectNats } from "@quorate/transport-nats";
import { adminRequest, findLeader } from "../admin-client.js";
import { clusterName, natsConnectOptions, natsOptions, parse } from "../args.js";
import { type CommandIo, Exit } from "../io.js";

const USAGE = "quorate leader transfer [--to <id>] [--cluster <name>] [--nats <url>] [--json]";

/** Moves leadership to `--to`, or to the most up-to-date follower, through the current leader. */
export async function leaderCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...natsOptions, cluster: { type: "string" }, to: { type: "string" }, json: { type: "boolean" } },
    USAGE,
  );
  if (positionals.length !== 1 || positionals[0] !== "transfer") {
    throw new QuorateError(ErrorCode.Config, `unknown leader command\nusage: ${USAGE}`);
  }
  const cluster = clusterName(values.cluster, io.env);
  const nc = await connectNats(natsConnectOptions(values, io.env, "quorate-leader-cli"));
  try {
    const leader = await findLeader(nc, cluster);
    if (values.to === leader) throw new QuorateError(ErrorCode.Config, `'${values.to}' is already the leader`);
    const reply = await adminRequest(
      nc,
      cluster,
      leader,
      values.to === undefined ? { op: "transfer-leadership" } : { op: "transfer-leadership", to: values.to },
      10_000,
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
