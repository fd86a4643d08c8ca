import {
  ErrorCode,
  type Inbound,
  type Logger,
  type MessageType,
  type NodeId,
  QuorateError,
  type Timers,
  type Transport,
} from "@quorate/core";
import { type PaxosOptions, type PaxosRoleName, type PaxosTopology, resolvePaxosOptions } from "./options.js";
import type { PaxosMessage, PaxosObservation } from "./outbox.js";

/** What the host of every role is started with; `M` is the role's machine. */
export interface RoleHostOptions<M> {
  /** This role instance's id, one of the topology's ids for its role. */
  id: NodeId;
  topology: PaxosTopology;
  transport: Transport;
  paxos?: Partial<PaxosOptions>;
  logger?: Logger;
  /** Receives the role's observations, e.g. for the simulator's invariants. */
  observe?: (observation: PaxosObservation) => void;
  /** The rules; tests and simulators substitute broken variants with `provide()`. */
  machine?: M;
}

/** The hosts that tick (proposers and learners): time reaches their machines only as ticks. */
export interface TickingHostOptions<M> extends RoleHostOptions<M> {
  /** Milliseconds per tick. */
  tickMs?: number;
  timers?: Timers;
}

/**
 * The ticks a ticking host hands its machine at most after a pause. Paxos keeps no deadline
 * that safety rests on: ticks only decide when to campaign, resend, or presume the leader gone.
 * The longest of those waits is twice the leader timeout plus the largest backoff: that many
 * ticks expire them all, and further ones would change nothing. For the same reason the Paxos
 * hosts catch up only on their interval, not before each message: a tick due a moment before
 * a heartbeat is handled would start a needless campaign, and nothing is safer for it.
 */
export function maxCatchUpTicks(options: Partial<PaxosOptions> | undefined): number {
  const { leaderTimeoutTicks, maxBackoffTicks } = resolvePaxosOptions(options);
  return 2 * leaderTimeoutTicks + maxBackoffTicks;
}

/** Refuses to start a role instance under an id the topology does not give that role. */
export function checkRoleId(role: PaxosRoleName, id: NodeId, topology: PaxosTopology): void {
  const ids = { acceptor: topology.acceptors, proposer: topology.proposers, learner: topology.learners }[role];
  if (!ids.includes(id)) {
    throw new QuorateError(ErrorCode.Config, `${role} '${id}' is not among the ${role}s (${ids.join(",")})`);
  }
}

/** The machine event for a message from the transport; every role's machine takes this one. */
export function messageEvent(message: Inbound): { type: "message"; from: NodeId; message: PaxosMessage } {
  return { type: "message", from: message.sender, message: { type: message.type, body: message.body } as PaxosMessage };
}

/**
 * The message types each role's rules act on. Every role receives every broadcast of the group
 * (a p2b reaches acceptors, a p2a proposers); its host drops the rest before the machine runs,
 * which would otherwise take a macrostep and a context copy to do nothing.
 */
export const ROLE_MESSAGES: Readonly<Record<PaxosRoleName, ReadonlySet<MessageType>>> = {
  acceptor: new Set(["paxos.p1a", "paxos.p2a", "paxos.heartbeat", "paxos.repeat", "paxos.learned"]),
  proposer: new Set([
    "paxos.heartbeat",
    "paxos.nack",
    "paxos.p1b",
    "paxos.p2b",
    "paxos.alive",
    "paxos.request",
    "paxos.read",
    "paxos.fill",
  ]),
  learner: new Set([
    "paxos.p2a",
    "paxos.p2b",
    "paxos.repeated",
    "paxos.heartbeat",
    "paxos.learned",
    "paxos.snapshot.req",
    "paxos.snapshot.chunk",
    "paxos.read.index",
  ]),
};
