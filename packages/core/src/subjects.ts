import type { NodeId } from "./ids.js";
import type { FrameRoute } from "./transport.js";

/**
 * Subject scheme. Every subject ends with the publishing member's id, so a NATS permission
 * like `publish: ["quorate.prod.*.b.n1", "quorate.prod.*.d.*.n1"]` pins member n1 to its own
 * subjects, and a receiver drops any frame whose envelope names another sender.
 *
 *   <prefix>.<cluster>.<group>.b.<sender>            broadcast: one publish, NATS fans out
 *   <prefix>.<cluster>.<group>.d.<target>.<sender>   directed to one member (replies, catch-up)
 *   <prefix>.<cluster>.rpc.<service>                 client requests, answered by any member
 *   <prefix>.<cluster>.rpc.<service>.<member>        client requests for one member (forwarding)
 */
export const DEFAULT_PREFIX = "quorate";

export interface SubjectScope {
  readonly prefix?: string;
  readonly cluster: string;
  readonly group: string;
}

function base(scope: SubjectScope): string {
  return `${scope.prefix ?? DEFAULT_PREFIX}.${scope.cluster}.${scope.group}`;
}

export function broadcastSubject(scope: SubjectScope, sender: NodeId): string {
  return `${base(scope)}.b.${sender}`;
}

export function broadcastWildcard(scope: SubjectScope): string {
  return `${base(scope)}.b.*`;
}

/** The pattern of every broadcast subject of a group, for telemetry. */
export function broadcastTemplate(scope: SubjectScope): string {
  return `${base(scope)}.b.{sender}`;
}

/** The pattern of every directed subject of a group, for telemetry. */
export function directTemplate(scope: SubjectScope): string {
  return `${base(scope)}.d.{target}.{sender}`;
}

/** The route a frame from `sender` to `to` (null: every member) takes. */
export function frameRoute(scope: SubjectScope, sender: NodeId, to: NodeId | null): FrameRoute {
  return to === null
    ? { subject: broadcastSubject(scope, sender), template: broadcastTemplate(scope) }
    : { subject: directSubject(scope, to, sender), template: directTemplate(scope) };
}

export function directSubject(scope: SubjectScope, target: NodeId, sender: NodeId): string {
  return `${base(scope)}.d.${target}.${sender}`;
}

export function directWildcard(scope: SubjectScope, self: NodeId): string {
  return `${base(scope)}.d.${self}.*`;
}

/** The sender named by a consensus subject: always its last token. */
export function subjectSender(subject: string): string {
  return subject.slice(subject.lastIndexOf(".") + 1);
}

export function rpcSubject(scope: { prefix?: string; cluster: string }, service: string, member?: NodeId): string {
  const s = `${scope.prefix ?? DEFAULT_PREFIX}.${scope.cluster}.rpc.${service}`;
  return member === undefined ? s : `${s}.${member}`;
}
