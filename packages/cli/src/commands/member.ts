import { ErrorCode, QuorateError } from "@quorate/core";
import { connectNats } from "@quorate/transport-nats";
import type { AdminRequest } from "../admin.js";
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
import { collectStatus, type MemberStatus } from "../member.js";

export const MEMBER_SPEC = {
  name: "member",
  synopsis: "list | add <id> [--learner] | promote <id> | remove <id>",
  summary:
    "Change Raft membership through the leader, one member at a time. Start a new member with `quorate node --join` first.",
  details: [
    "list     the leader's configuration, and how far each member has applied",
    "add      add as a learner, wait until it has caught up, then make it a voter (--learner: stay a learner)",
    "promote  make a caught-up learner a voter",
    "remove   remove a voter or a learner",
  ].join("\n"),
  options: {
    ...natsOptions,
    ...clusterOption,
    ...jsonOption,
    learner: { type: "boolean", help: "add: keep the new member a learner", flagOnly: true },
    "timeout-ms": {
      type: "string",
      value: "<duration>",
      help: "how long to wait for the change",
      default: "5m for add, 30s otherwise",
    },
    timeout: durationAlias("timeout-ms"),
  },
} as const satisfies CommandSpec;

/** Adding waits for the new member to catch up (possibly from a large snapshot) before it votes. */
const ADD_TIMEOUT_MS = 300_000;
const CHANGE_TIMEOUT_MS = 30_000;

/**
 * Raft membership through the leader, one change at a time. A new member is started first with
 * `quorate node --join`; `add` makes it a learner, waits until it has caught up, then a voter.
 */
export async function memberCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = await parseWithSettings(args, MEMBER_SPEC, io.env);
  const [action, member, ...rest] = positionals;
  const request = toRequest(action, member, values.learner === true);
  if (rest.length > 0 || (request === null && !(action === "list" && member === undefined))) {
    throw new QuorateError(ErrorCode.Config, `unknown member command\n${usageHint(MEMBER_SPEC)}`);
  }
  const cluster = clusterName(values.cluster);
  const nc = await connectNats(await natsConnectOptions(values, io.env, "quorate-member-cli"));
  try {
    if (request === null) {
      const members = await collectStatus(nc, cluster, 1000, { failWithoutResponders: true });
      return list(io, members, values.json === true, cluster);
    }
    const timeoutMs = durationMs(
      values["timeout-ms"],
      "timeout-ms",
      request.op === "add-member" ? ADD_TIMEOUT_MS : CHANGE_TIMEOUT_MS,
    );
    const leader = await findLeader(nc, cluster);
    const { membership } = await adminRequest(nc, cluster, leader, request, timeoutMs);
    if (values.json) {
      io.stdout(`${JSON.stringify({ leader, voters: membership.voters, learners: membership.learners })}\n`);
    } else {
      io.stdout(
        `${describe(request)}; voters: ${membership.voters.join(", ")}` +
          `; learners: ${membership.learners.join(", ") || "none"}\n`,
      );
    }
    return Exit.Ok;
  } finally {
    await nc.close();
  }
}

/** The admin requests this command sends. */
type MembershipRequest = Extract<AdminRequest, { op: "add-member" | "promote-member" | "remove-member" }>;

function toRequest(action: string | undefined, member: string | undefined, learner: boolean): MembershipRequest | null {
  if (member === undefined) return null;
  switch (action) {
    case "add":
      return { op: "add-member", member, learner };
    case "promote":
      return { op: "promote-member", member };
    case "remove":
      return { op: "remove-member", member };
    default:
      return null;
  }
}

function describe(request: MembershipRequest): string {
  switch (request.op) {
    case "add-member":
      return `${request.member} added as ${request.learner ? "a learner" : "a voter"}`;
    case "promote-member":
      return `${request.member} is now a voter`;
    case "remove-member":
      return `${request.member} removed`;
  }
}

/** The leader's configuration, and how far each answering member has got. */
function list(io: CommandIo, members: readonly MemberStatus[], json: boolean, cluster: string): number {
  const raft = members.filter((m) => m.protocol === "raft");
  const view = raft.find((m) => m.role === "leader") ?? raft[0];
  if (view === undefined) {
    io.stderr(`no Raft member of cluster '${cluster}' answered\n`);
    return Exit.Error;
  }
  const voters = view.voters ?? [];
  const learners = view.learners ?? [];
  const ids = [
    ...voters,
    ...learners,
    ...raft.map((m) => m.id).filter((id) => !voters.includes(id) && !learners.includes(id)),
  ];
  const rows = ids.map((id) => {
    const status = raft.find((m) => m.id === id);
    const kind = voters.includes(id) ? "voter" : learners.includes(id) ? "learner" : "not a member";
    return { id, kind, role: status?.role ?? "no answer", applied: status?.appliedIndex ?? null };
  });
  if (json) {
    io.stdout(
      `${JSON.stringify({ cluster, leader: view.role === "leader" ? view.id : view.leader, voters, learners, members: rows })}\n`,
    );
    return Exit.Ok;
  }
  const header = ["ID", "MEMBERSHIP", "ROLE", "APPLIED"];
  const cells = rows.map((r) => [r.id, r.kind, r.role, r.applied === null ? "-" : String(r.applied)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]) => `${c.map((x, i) => x.padEnd(widths[i] as number)).join("  ")}\n`;
  io.stdout(line(header) + cells.map(line).join(""));
  return Exit.Ok;
}
