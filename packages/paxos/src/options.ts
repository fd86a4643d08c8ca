import { assertToken, ErrorCode, type NodeId, QuorateError, validateMembers } from "@quorate/core";
import { requireBelow, requirePositiveIntegers } from "@quorate/core/internal";

/** The three roles; a member runs one or more of them. */
export type PaxosRoleName = "acceptor" | "proposer" | "learner";

/**
 * The id of one role instance: the member id with the role appended, since every instance
 * needs a transport identity of its own and ids are subject tokens (no ':').
 */
export function paxosRoleId(member: NodeId, role: PaxosRoleName): NodeId {
  const id = `${member}-${role}`;
  assertToken(`${role} id`, id);
  return id;
}

/** Who takes part, by role instance id, and the quorum sizes. */
export interface PaxosTopology {
  readonly acceptors: readonly NodeId[];
  readonly proposers: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Acceptors whose promises adopt a ballot (phase 1). */
  readonly q1: number;
  /** Acceptors whose acceptances choose a value (phase 2). */
  readonly q2: number;
  /** Learners whose durable checkpoints must cover a slot before acceptors drop it. */
  readonly truncationQuorum: number;
}

export interface PaxosTopologyInput {
  acceptors: readonly NodeId[];
  proposers: readonly NodeId[];
  learners: readonly NodeId[];
  q1?: number;
  q2?: number;
  truncationQuorum?: number;
}

function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * Validates the role lists and quorums. Flexible Paxos needs only every phase-1 quorum to meet
 * every phase-2 quorum: with counted quorums that is |Q1| + |Q2| > N. Majorities by default.
 */
export function resolveTopology(input: PaxosTopologyInput): PaxosTopology {
  validateMembers(input.acceptors);
  validateMembers(input.proposers);
  validateMembers(input.learners);
  const n = input.acceptors.length;
  const q1 = input.q1 ?? majority(n);
  const q2 = input.q2 ?? majority(n);
  for (const [name, q] of [
    ["phase-1 quorum", q1],
    ["phase-2 quorum", q2],
  ] as const) {
    if (!Number.isSafeInteger(q) || q < 1 || q > n) {
      throw new QuorateError(ErrorCode.Config, `the ${name} must be an integer from 1 to ${n} (got ${q})`);
    }
  }
  if (q1 + q2 <= n) {
    throw new QuorateError(
      ErrorCode.Config,
      `phase-1 quorum (${q1}) + phase-2 quorum (${q2}) must exceed the number of acceptors (${n}): ` +
        "otherwise a new leader's phase 1 can miss a chosen value",
    );
  }
  const learners = input.learners.length;
  const truncationQuorum = input.truncationQuorum ?? majority(learners);
  if (!Number.isSafeInteger(truncationQuorum) || truncationQuorum < 1 || truncationQuorum > learners) {
    throw new QuorateError(
      ErrorCode.Config,
      `the truncation quorum must be an integer from 1 to ${learners} learners (got ${truncationQuorum})`,
    );
  }
  return {
    acceptors: [...input.acceptors],
    proposers: [...input.proposers],
    learners: [...input.learners],
    q1,
    q2,
    truncationQuorum,
  };
}

/** Protocol timing and limits, in ticks and bytes. */
export interface PaxosOptions {
  /** Ticks between an active proposer's heartbeats. */
  heartbeatTicks: number;
  /** A passive proposer campaigns after a random [n, 2n) ticks without a heartbeat. */
  leaderTimeoutTicks: number;
  /** Upper bound of the extra wait added after each preemption (AIMD backoff). */
  maxBackoffTicks: number;
  /** Ticks before a request without an answer is sent again: core NATS is at-most-once. */
  retransmitTicks: number;
  /** Ticks between a learner's progress broadcasts. */
  learnerHeartbeatTicks: number;
  /** Ticks a learner waits without progress before it asks acceptors to repeat. */
  catchupTicks: number;
  /** Value bytes in one message; NATS max_payload is 1 MiB by default. */
  maxMessageBytes: number;
  /** Slots one repeat request asks for. */
  maxRepeatSlots: number;
  /** Undecided slots an active proposer holds before it refuses requests (learners retry). */
  maxPendingSlots: number;
  /**
   * Phase-2 batches (commanders) an active proposer keeps in flight for new requests; requests
   * arriving while that many are undecided wait and leave together in one batch (one p2a, one
   * fsync per acceptor) as soon as one of them is decided.
   */
  maxInflightAccepts: number;
  /** Requests a learner has sent and not yet seen chosen; beyond it, new ones fail with Busy. */
  maxPendingRequests: number;
}

export const DEFAULT_PAXOS_OPTIONS: PaxosOptions = {
  heartbeatTicks: 2,
  leaderTimeoutTicks: 10,
  maxBackoffTicks: 80,
  retransmitTicks: 6,
  learnerHeartbeatTicks: 4,
  catchupTicks: 4,
  maxMessageBytes: 256 * 1024,
  maxRepeatSlots: 512,
  maxPendingSlots: 50_000,
  maxInflightAccepts: 4,
  maxPendingRequests: 50_000,
};

export function resolvePaxosOptions(options: Partial<PaxosOptions> = {}): PaxosOptions {
  const resolved = { ...DEFAULT_PAXOS_OPTIONS, ...options };
  requirePositiveIntegers("paxos option", resolved);
  requireBelow("heartbeatTicks", resolved.heartbeatTicks, "leaderTimeoutTicks", resolved.leaderTimeoutTicks);
  return resolved;
}
