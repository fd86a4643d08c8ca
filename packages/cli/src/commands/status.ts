import { connectNats } from "@quorate/transport-nats";
import { clusterName, natsConnectOptions, natsOptions, parse, positiveInt } from "../args.js";
import { type CommandIo, Exit } from "../io.js";
import { collectStatus, type MemberStatus } from "../member.js";

const USAGE = "quorate status [--cluster <name>] [--nats <url>] [--json] [--wait-ms 1000]";

/** Asks every member of the cluster for its status and prints one row each. */
export async function statusCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parse(
    args,
    { ...natsOptions, cluster: { type: "string" }, json: { type: "boolean" }, "wait-ms": { type: "string" } },
    USAGE,
  );
  const cluster = clusterName(values.cluster, io.env);
  const nc = await connectNats(natsConnectOptions(values, io.env, "quorate-status-cli"));
  let members: MemberStatus[];
  try {
    members = await collectStatus(nc, cluster, positiveInt(values["wait-ms"], "wait-ms", 1000));
  } finally {
    await nc.close();
  }
  if (values.json) {
    io.stdout(`${JSON.stringify({ cluster, members })}\n`);
  } else if (members.length === 0) {
    io.stderr(`no member of cluster '${cluster}' answered\n`);
  } else {
    const header = ["ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST"];
    const rows = members.map((m) =>
      [m.id, m.role, m.term, m.leader ?? "-", m.commitIndex, m.appliedIndex, m.lastLogIndex].map(String),
    );
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const line = (cells: string[]) => `${cells.map((c, i) => c.padEnd(widths[i] as number)).join("  ")}\n`;
    io.stdout(line(header) + rows.map(line).join(""));
  }
  return members.length === 0 ? Exit.Error : Exit.Ok;
}
