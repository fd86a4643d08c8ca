import type { Logger, NodeId, StateMachine, Timers, Transport } from "@quorate/core";
import type { RaftStorage } from "@quorate/storage";
import type { ClusterConfig } from "./config.js";
import type { RaftMachine } from "./machine.js";
import type { RaftOptions } from "./options.js";
import type { RaftObservation, Role } from "./outbox.js";

export const DEFAULT_SNAPSHOT_THRESHOLD = 8192;
/** Proposals (commands, membership changes, leadership transfers) one member holds at once by default. */
export const DEFAULT_MAX_PENDING_PROPOSALS = 10_000;
/** Read barriers one member holds at once by default. */
export const DEFAULT_MAX_PENDING_READS = 10_000;

export interface RaftNodeOptions {
  id: NodeId;
  /**
   * The voters a new cluster starts with, this node included. Once the log or a snapshot holds a
   * configuration (after the first membership change), that one is used and this is ignored.
   */
  members: readonly NodeId[];
  /**
   * Start as a member joining a running cluster: with no configuration, so it never campaigns,
   * until the leader adds it (`addMember`) and replicates the log to it. `members` is ignored.
   */
  join?: boolean;
  transport: Transport;
  storage: RaftStorage;
  stateMachine: StateMachine;
  raft?: Partial<RaftOptions>;
  /** Milliseconds per tick; election timeouts are electionTicks × tickMs. */
  tickMs?: number;
  /** A proposal not applied within this time fails as Indeterminate. */
  proposalTimeoutMs?: number;
  logger?: Logger;
  /** Seeds randomized election timeouts; defaults to the member id. */
  seed?: number | string;
  timers?: Timers;
  /** Receives protocol observations (role changes, votes, commits) for telemetry. */
  observe?: (observation: RaftObservation) => void;
  /** The protocol machine; tests substitute deliberately broken variants with `provide()`. */
  machine?: RaftMachine;
  /**
   * Entries applied since the last snapshot that trigger a new one; the log before it is then
   * compacted. Followers behind the compaction point receive the snapshot in chunks.
   */
  snapshotThreshold?: number;
  /**
   * Proposals, membership changes and leadership transfers this member holds at once, from the
   * call until they settle; one more fails at once with Busy. Default 10,000.
   */
  maxPendingProposals?: number;
  /** Read barriers this member holds at once; one more fails at once with Busy. Default 10,000. */
  maxPendingReads?: number;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeId | null;
  commitIndex: number;
  appliedIndex: number;
  lastLogIndex: number;
  /** The last index this member's durable snapshot covers (0 without one). */
  snapshotIndex: number;
  voters: readonly NodeId[];
  learners: readonly NodeId[];
}

/** The membership as one member sees it: the latest configuration in its log. */
export interface Membership extends ClusterConfig {
  /** Log index of the configuration entry; 0 for the bootstrap configuration. */
  readonly index: number;
  /** Whether this member knows the configuration to be committed. */
  readonly committed: boolean;
}

export interface AddMemberOptions {
  /** Stop once the member is a learner: it receives the log but never votes. */
  learner?: boolean;
  /** How long the new member may take to catch up before it is promoted. Default 5 minutes. */
  catchUpTimeoutMs?: number;
}
