import { ErrorCode, QuorateError } from "@quorate/core";
import { requireBelow, requirePositiveIntegers } from "@quorate/core/internal";

export interface RaftOptions {
  /** Ticks without hearing from a leader before campaigning; the real timeout is randomized in [n, 2n). */
  electionTicks: number;
  /** Ticks between leader heartbeats. Must be well below electionTicks. */
  heartbeatTicks: number;
  /** A leader that has not heard from a quorum for electionTicks steps down; voters ignore campaigns while a leader is live. */
  checkQuorum: boolean;
  /** Campaign with a pre-vote first, so a partitioned node rejoining does not disrupt the cluster (thesis §9.6). */
  preVote: boolean;
  /** Pipelined AppendEntries in flight to one follower. */
  maxInflightMessages: number;
  /** Entry bytes in flight to one follower. */
  maxInflightBytes: number;
  /** Entry bytes in one AppendEntries (NATS max_payload is 1 MiB by default). */
  maxMessageBytes: number;
  /** Proposals beyond this many uncommitted entries are refused with Busy. */
  maxUncommittedEntries: number;
  /** A learner is promoted to voter only once it trails the leader's log by at most this many entries. */
  maxPromotionLag: number;
  /**
   * Serve linearizable reads from the leader's lease instead of a heartbeat round (ReadIndex).
   * Safe only while clocks run at rates within `maxClockDriftPercent` of each other; needs checkQuorum.
   */
  leaseReads: boolean;
  /** How much faster one member's clock may run than another's; the lease is shortened by it. */
  maxClockDriftPercent: number;
}

export const DEFAULT_RAFT_OPTIONS: RaftOptions = {
  electionTicks: 10,
  heartbeatTicks: 1,
  checkQuorum: true,
  preVote: true,
  maxInflightMessages: 64,
  maxInflightBytes: 8 * 1024 * 1024,
  maxMessageBytes: 512 * 1024,
  maxUncommittedEntries: 50_000,
  maxPromotionLag: 1024,
  leaseReads: false,
  maxClockDriftPercent: 10,
};

export function resolveRaftOptions(options: Partial<RaftOptions> = {}): RaftOptions {
  const resolved = { ...DEFAULT_RAFT_OPTIONS, ...options };
  requirePositiveIntegers("raft option", resolved);
  requireBelow("heartbeatTicks", resolved.heartbeatTicks, "electionTicks", resolved.electionTicks);
  if (resolved.maxClockDriftPercent >= 100) {
    throw new QuorateError(
      ErrorCode.Config,
      `maxClockDriftPercent must be below 100 (got ${resolved.maxClockDriftPercent})`,
    );
  }
  if (resolved.leaseReads && !resolved.checkQuorum) {
    // Without CheckQuorum a deposed leader keeps serving from its lease while another leads.
    throw new QuorateError(ErrorCode.Config, "leaseReads requires checkQuorum");
  }
  return resolved;
}
