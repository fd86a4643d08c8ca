import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { ErrorCode, isQuorateError, isValidToken, rpcSubject, serviceErrorHeaders } from "@quorate/core";
import type { Membership, RaftNode } from "@quorate/raft";
import { toMsgHdrs } from "@quorate/transport-nats";

/** Operator requests for one member, on `quorate.<cluster>.rpc.admin.<member>`. */
export const ADMIN_SERVICE = "admin";

export type AdminRequest =
  | { op: "transfer-leadership"; to?: string }
  | { op: "add-member"; member: string; learner: boolean }
  | { op: "promote-member"; member: string }
  | { op: "remove-member"; member: string };

export type AdminReply =
  | { ok: true; leader: string | null; membership: Membership }
  | { ok: false; code: ErrorCode; message: string };

function parseRequest(data: Uint8Array): AdminRequest | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { op, to, member, learner } = value as Record<string, unknown>;
  if (op === "transfer-leadership") {
    if (to === undefined) return { op };
    return isValidToken(to) ? { op, to } : null;
  }
  if (!isValidToken(member)) return null;
  if (op === "add-member") return { op, member, learner: learner === true };
  if (op === "promote-member" || op === "remove-member") return { op, member };
  return null;
}

function perform(node: RaftNode, request: AdminRequest): Promise<unknown> {
  switch (request.op) {
    case "transfer-leadership":
      return node.transferLeadership(request.to);
    case "add-member":
      return node.addMember(request.member, { learner: request.learner });
    case "promote-member":
      return node.promoteMember(request.member);
    case "remove-member":
      return node.removeMember(request.member);
  }
}

/** Answers admin requests for `node`: leadership transfer and membership changes. */
export function serveAdmin(nc: NatsConnection, cluster: string, node: RaftNode): Subscription {
  return nc.subscribe(rpcSubject({ cluster }, ADMIN_SERVICE, node.id), {
    callback: (err: Error | null, msg: Msg) => {
      if (err !== null || !msg.reply) return;
      const request = parseRequest(msg.data);
      // A refusal also carries the NATS micro error headers, for `nats req` and other languages.
      const reply = (body: AdminReply) =>
        msg.respond(
          JSON.stringify(body),
          body.ok ? undefined : toMsgHdrs(serviceErrorHeaders(body.code, body.message)),
        );
      if (request === null) {
        reply({ ok: false, code: ErrorCode.Rejected, message: "unknown admin request" });
        return;
      }
      perform(node, request).then(
        () => reply({ ok: true, leader: node.leader(), membership: node.membership() }),
        (e: unknown) =>
          reply(
            isQuorateError(e)
              ? { ok: false, code: e.code, message: e.message }
              : { ok: false, code: ErrorCode.Invariant, message: String(e) },
          ),
      );
    },
  });
}
