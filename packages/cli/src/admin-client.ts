import { type NatsConnection, RequestError } from "@nats-io/transport-node";
import { ErrorCode, QuorateError, rpcSubject } from "@quorate/core";
import { ADMIN_SERVICE, type AdminReply, type AdminRequest } from "./admin.js";
import { noResponders } from "./connection.js";
import { collectStatus } from "./member.js";

/** The leader's id, asked of every member: the one whose own status says it leads. */
export async function findLeader(nc: NatsConnection, cluster: string): Promise<string> {
  const members = await collectStatus(nc, cluster, 1000, { failWithoutResponders: true });
  const leader = members.find((m) => m.protocol === "raft" && m.role === "leader");
  if (leader === undefined) {
    throw new QuorateError(
      ErrorCode.NoQuorum,
      members.length === 0 ? `no member of cluster '${cluster}' answered` : `cluster '${cluster}' has no leader now`,
    );
  }
  return leader.id;
}

/** Sends `request` to member `to`'s admin subject; a refusal becomes the QuorateError it was. */
export async function adminRequest(
  nc: NatsConnection,
  cluster: string,
  to: string,
  request: AdminRequest,
  timeoutMs: number,
): Promise<Extract<AdminReply, { ok: true }>> {
  let reply: AdminReply;
  const subject = rpcSubject({ cluster }, ADMIN_SERVICE, to);
  try {
    const msg = await nc.request(subject, JSON.stringify(request), { timeout: timeoutMs });
    reply = msg.json<AdminReply>();
  } catch (err) {
    // Nothing was delivered, so nothing can take effect: a definite failure, not an unknown outcome.
    if (err instanceof RequestError && err.isNoResponders()) throw noResponders(cluster, subject);
    throw new QuorateError(
      ErrorCode.Indeterminate,
      `no answer from ${to} within ${timeoutMs} ms; the request may still take effect (check with quorate member list)`,
      { cause: err },
    );
  }
  if (!reply.ok) throw new QuorateError(reply.code as ErrorCode, reply.message);
  return reply;
}
