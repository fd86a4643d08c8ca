import { ErrorCode, QuorateError, rpcSubject } from "@quorate/core";
import { connectNats } from "@quorate/transport-nats";
import { ADMIN_SERVICE, type AdminReply } from "../admin.js";
import { clusterName, natsConnectOptions, natsOptions, parse } from "../args.js";
import { type CommandIo, Exit } from "../io.js";
import { collectStatus } from "../member.js";

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
    const members = await collectStatus(nc, cluster, 1000);
    const leader = members.find((m) => m.role === "leader");
    if (leader === undefined)
      throw new QuorateError(ErrorCode.NoQuorum, `cluster '${cluster}' has no leader to transfer from`);
    if (values.to === leader.id) throw new QuorateError(ErrorCode.Config, `'${values.to}' is already the leader`);
    if (values.to !== undefined && !members.some((m) => m.id === values.to)) {
      throw new QuorateError(
        ErrorCode.Config,
        `'${values.to}' is not a member that answers (${members.map((m) => m.id).join(", ")})`,
      );
    }
    const request = JSON.stringify(
      values.to === undefined ? { op: "transfer-leadership" } : { op: "transfer-leadership", to: values.to },
    );
    const reply = (
      await nc.request(rpcSubject({ cluster }, ADMIN_SERVICE, leader.id), request, { timeout: 10_000 })
    ).json<AdminReply>();
    if (!reply.ok) throw new QuorateError(reply.code as ErrorCode, reply.message);
    io.stdout(
      values.json
        ? `${JSON.stringify({ from: leader.id, to: reply.leader })}\n`
        : `leadership moved from ${leader.id} to ${reply.leader}\n`,
    );
    return Exit.Ok;
  } finally {
    await nc.close();
  }
}
