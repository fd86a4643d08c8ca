import type { NodeId } from "./ids.js";

/**
 * What consensus replicates. Raft and Multi-Paxos both apply committed commands, in order,
 * exactly once per replica, to an implementation of this interface.
 * `apply` must be deterministic: the same commands in the same order give the same results
 * and the same state on every replica.
 */
export interface StateMachine {
  /** Applies one committed command at log position `index` and returns its encoded result. */
  apply(command: Uint8Array, index: number): Uint8Array;
  /** Encodes the whole state, for snapshots and for learners that fall behind truncation. */
  snapshot(): Uint8Array;
  /** Replaces the whole state with a snapshot taken by `snapshot()`. */
  restore(snapshot: Uint8Array): void;
}

/**
 * What a service needs from a consensus member, whatever the protocol behind it.
 * Errors are QuorateErrors: NotLeader when this member cannot serve the call (with the leader
 * it knows, if any), Indeterminate when the outcome is unknown.
 */
export interface ConsensusNode {
  readonly id: NodeId;
  /** The member this node currently believes leads, or null. */
  leader(): NodeId | null;
  /** Replicates one command; resolves with the state machine's result once applied here. */
  propose(command: Uint8Array): Promise<Uint8Array>;
  /**
   * Resolves once the local state machine reflects every command committed before the call:
   * a linearizable read point. Reads made after it resolves are linearizable.
   */
  readBarrier(): Promise<void>;
  /**
   * The log index (Paxos: slot) of the last command applied to the local state machine: the
   * state a read made now sees. Commands apply in order, so every index up to it is applied.
   */
  readonly appliedIndex: number;
}
