/**
 * Who counts: voters, learners, quorums (a leader being removed leads on without counting itself).
 */
import type { NodeId } from "@quorate/core";
import type { RaftContext } from "./context.js";

export function voters(ctx: RaftContext): readonly NodeId[] {
  return ctx.log.config.voters;
}

export function isVoter(ctx: RaftContext, id: NodeId): boolean {
  return ctx.log.config.voters.includes(id);
}

export function quorum(ctx: RaftContext): number {
  return Math.floor(voters(ctx).length / 2) + 1;
}

/** Voters other than this member: those whose answers count towards a quorum. */
export function peerVoters(ctx: RaftContext): NodeId[] {
  return voters(ctx).filter((v) => v !== ctx.id);
}

/** Everyone the leader replicates to: voters and learners other than itself. */
export function replicas(ctx: RaftContext): NodeId[] {
  const { voters, learners } = ctx.log.config;
  return [...voters, ...learners].filter((m) => m !== ctx.id);
}

/** This member's own vote towards a quorum: a leader being removed leads on without counting itself. */
export function selfVote(ctx: RaftContext): number {
  return isVoter(ctx, ctx.id) ? 1 : 0;
}

/** The highest index a quorum of voters holds: the leader's own counts once durable. */
export function quorumMatch(d: RaftContext): number {
  const matches = voters(d)
    .map((v) => (v === d.id ? d.persistedIndex : (d.progress[v]?.match ?? 0)))
    .sort((a, b) => b - a);
  return matches[quorum(d) - 1] ?? 0;
}

/** Whether a quorum of voters acknowledged leader round `round` or a later one. */
export function quorumAcked(d: RaftContext, round: number): boolean {
  return selfVote(d) + peerVoters(d).filter((p) => (d.ackedHeartbeatRound[p] ?? 0) >= round).length >= quorum(d);
}

/** Of `members`, the one whose log matches the leader's furthest: the best next leader. */
export function mostCaughtUp(d: RaftContext, members: readonly NodeId[]): NodeId | null {
  let best: NodeId | null = null;
  for (const m of members) if (best === null || (d.progress[m]?.match ?? 0) > (d.progress[best]?.match ?? 0)) best = m;
  return best;
}
