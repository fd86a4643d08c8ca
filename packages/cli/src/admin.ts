import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { isQuorateError, rpcSubject } from "@quorate/core";
import type { RaftNode } from "@quorate/raft";

/** Operator requests for one member, on `quorate.<cluster>.rpc.admin.<member>`. */
export const ADMIN_SERVICE = "admin";

export type AdminRequest = { op: "transfer-leadership"; to?: string };
export type AdminReply = { ok: true; leader: string } | { ok: false; code: string; message: string };

function parseRequest(data: Uint8Array): AdminRequest | null {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(data));
    if (typeof value !== "object" || value === null) return null;
    const { op, to } = value as Record<string, unknown>;
    if (op !== "transfer-leadership" || (to !== undefined && typeof to !== "string")) return null;
    return to === undefined ? { op } : { op, to };
  } catch {
    return null;
  }
}

/** Answers admin requests for `node`: today, leadership transfer. */
export function serveAdmin(nc: NatsConnection, cluster: string, node: RaftNode): Subscription {
  return nc.subscribe(rpcSubject({ cluster }, ADMIN_SERVICE, node.id), {
    callback: (err: Error | null, msg: Msg) => {
      if (err !== null || !msg.reply) return;
      const request = parseRequest(msg.data);
      const reply = (body: AdminReply) => msg.respond(JSON.stringify(body));
      if (request === null) {
        reply({ ok: false, code: "QUORATE_REJECTED", message: "unknown admin request" });
        return;
      }
      node.transferLeadership(request.to).then(
        (leader) => reply({ ok: true, leader }),
        (e: unknown) =>
          reply(
            isQuorateError(e)
              ? { ok: false, code: e.code, message: e.message }
              : { ok: false, code: "QUORATE_INVARIANT", message: String(e) },
          ),
      );
    },
  });
}
