import { ErrorCode, QuorateError } from "@quorate/core";
import { connectNats } from "@quorate/transport-nats";
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
import { collectStatus, type MemberStatus } from "../member.js";

export const STATUS_SPEC = {
  name: "status",
  summary:
    "Show every member (of every group, for members started with --groups): role, term, leader, commit and applied indexes. Exit 2 when none answers.",
  options: {
    ...natsOptions,
    ...clusterOption,
    ...jsonOption,
    "wait-ms": { type: "string", value: "<duration>", help: "how long to collect answers", default: "1s" },
    wait: durationAlias("wait-ms"),
  },
} as const satisfies CommandSpec;

/** Asks every member of the cluster for its status and prints one row each. */
export async function statusCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = await parseWithSettings(args, STATUS_SPEC, io.env);
  if (positionals.length > 0)
    throw new QuorateError(ErrorCode.Config, `unexpected '${positionals[0]}'\n${usageHint(STATUS_SPEC)}`);
  const cluster = clusterName(values.cluster);
  const waitMs = durationMs(values["wait-ms"], "wait-ms", 1000);
  const nc = await connectNats(await natsConnectOptions(values, io.env, "quorate-status-cli"));
  let members: MemberStatus[];
  try {
    members = await collectStatus(nc, cluster, waitMs, { failWithoutResponders: true });
  } finally {
    await nc.close();
  }
  if (members.length === 0) {
    throw new QuorateError(ErrorCode.Unreachable, `no member of cluster '${cluster}' answered within ${waitMs} ms`);
  }
  if (values.json) {
    io.stdout(`${JSON.stringify({ cluster, members })}\n`);
  } else {
    // Members hosting many groups answer a row per group: a GROUP column then leads.
    const grouped = members.some((m) => m.group !== undefined);
    const header = [...(grouped ? ["GROUP"] : []), "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST"];
    const rows = members.map((m) =>
      [
        ...(grouped ? [m.group ?? "-"] : []),
        ...[m.id, m.role, m.term, m.leader ?? "-", m.commitIndex, m.appliedIndex, m.lastLogIndex],
      ].map(String),
    );
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const line = (cells: string[]) => `${cells.map((c, i) => c.padEnd(widths[i] as number)).join("  ")}\n`;
    io.stdout(line(header) + rows.map(line).join(""));
  }
  return Exit.Ok;
}
