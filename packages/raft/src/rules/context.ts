/**
 * The state every Raft rule works on, and the primitives they share: terms, the commit index, the
 * election timer, and sending (nothing leaves before its term is durable).
 */
import type { MessageMap, MessageType, NodeId } from "@quorate/core";
import { checkRule, invariant, nextInt } from "@quorate/core/internal";
import type { RaftLog } from "../log.js";
import type { RaftOptions } from "../options.js";
import type { Outbox } from "../outbox.js";
import type { RaftGuard, RaftGuardParams } from "./guards.js";
import type { Progress } from "./progress.js";

/**
 * The message types the Raft machine steps. Other protocols' frames are not its business, and
 * snapshot chunks are assembled by the host, which hands the machine a whole snapshot.
 */
export type RaftMessageType = Exclude<Extract<MessageType, `raft.${string}`>, "raft.snapshot" | "raft.snapshot.resp">;

/** A message as the machine sees it: its type and validated body. */
export type RaftMessage = { [K in RaftMessageType]: { type: K; body: MessageMap[K] } }[RaftMessageType];

export function isRaftMessageType(type: MessageType): type is RaftMessageType {
  return type.startsWith("raft.") && type !== "raft.snapshot" && type !== "raft.snapshot.resp";
}

export interface PendingRead {
  readonly id: number;
  /** The commit index to wait for, or null until the leader has committed an entry of its term. */
  readonly index: number | null;
  /** Heartbeat round whose acknowledgement by a quorum confirms leadership. */
  readonly heartbeatRound: number;
}

export interface RaftContext {
  readonly id: NodeId;
  readonly options: RaftOptions;
  /**
   * The log, shared by reference with the host: never copied into context snapshots. It holds
   * the membership too (`log.config`): voters and learners change with the log.
   */
  readonly log: RaftLog;
  /** Effects for the host, shared by reference. */
  readonly out: Outbox;
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  commitIndex: number;
  /** Last index the host reported durable in local storage. */
  persistedIndex: number;
  /**
   * The term the host last reported durable (with the vote). Every message carries the term;
   * none leaves while it is above this one (the `termDurable` guard).
   */
  durableTerm: number;
  prng: number;
  electionElapsedTicks: number;
  randomizedElectionTicks: number;
  heartbeatElapsedTicks: number;
  /** Responses in the current campaign: true granted, false rejected. */
  votes: Readonly<Record<NodeId, boolean>>;
  progress: Readonly<Record<NodeId, Progress>>;
  /** Followers heard from since the last CheckQuorum round. */
  recentActive: Readonly<Record<NodeId, boolean>>;
  /**
   * The leader's heartbeat round: every AppendEntries it sends starts a new one (the wire's `seq`),
   * and followers echo it. ReadIndex counts acks of a round sent after the read.
   */
  heartbeatRound: number;
  /** The highest heartbeat round each follower acknowledged in this term. */
  ackedHeartbeatRound: Readonly<Record<NodeId, number>>;
  pendingReads: readonly PendingRead[];
  /** The member this leader is handing leadership to (thesis §3.10), while a transfer runs. */
  transferee: NodeId | null;
  transferElapsedTicks: number;
  /** Set by TimeoutNow: the next campaign skips pre-vote and tells voters it was asked for. */
  campaignTransfer: boolean;
  /** Ticks since this member became leader: the clock of its read lease. */
  leaderTicks: number;
  /**
   * Set when this leader sends a TimeoutNow: the target may win an election at any moment from
   * then on, even after the transfer aborts, so the lease is done for the rest of the term.
   */
  timeoutNowSent: boolean;
  /** The heartbeat round whose quorum acknowledgement extends the lease, while one is out. */
  leaseRound: { readonly heartbeatRound: number; readonly tick: number } | null;
  /** The lease holds while leaderTicks is below this. */
  leaseExpiresAtTick: number;
  /**
   * With lease reads, a member that just started refuses votes for an election timeout, as if
   * it had heard from a leader: it may have acknowledged a lease it no longer remembers.
   */
  restartQuiet: boolean;
}

/** Internal events the rules raise to move the machine between roles. */
export type RoleChange =
  | { type: "election.timeout" }
  | { type: "become.follower" }
  | { type: "become.candidate" }
  | { type: "become.leader" };

/** Evaluates one of the paper's rules (rules/guards.ts) as the machine implements it, `provide()` included. */
export function check<G extends RaftGuard>(guard: G, params: RaftGuardParams[G]): boolean {
  return checkRule(guard, params);
}

/** Queues a message; it waits for the host's write when it depends on state not yet durable. */
export function send<T extends RaftMessageType>(
  d: RaftContext,
  to: NodeId | null,
  type: T,
  body: MessageMap[T],
  afterPersist: boolean,
): void {
  invariant(to !== d.id, "a member sends no message to itself");
  d.out.send(to, type, body, afterPersist || !check("termDurable", { d }));
}

/** Heartbeat intervals in an election timeout: the unit stalled pipelines are judged in. */
export function heartbeatsPerElection(d: RaftContext): number {
  return Math.ceil(d.options.electionTicks / d.options.heartbeatTicks);
}

export function resetElectionTimer(d: RaftContext): void {
  d.electionElapsedTicks = 0;
  const [timeout, prng] = nextInt(d.prng, d.options.electionTicks, 2 * d.options.electionTicks - 1);
  invariant(timeout >= d.options.electionTicks, "an election timeout is at least electionTicks");
  invariant(timeout < 2 * d.options.electionTicks, "an election timeout is below twice electionTicks");
  d.randomizedElectionTicks = timeout;
  d.prng = prng;
}

/** Commit only moves forward, and never past what this member's log holds. */
export function setCommitIndex(d: RaftContext, index: number): void {
  invariant(index > d.commitIndex, `commit index must advance (${index} <= ${d.commitIndex})`);
  invariant(index <= d.log.lastIndex, `commit index ${index} beyond the last log index ${d.log.lastIndex}`);
  d.commitIndex = index;
}

export function setTerm(d: RaftContext, term: number): void {
  invariant(term >= d.term, `term must not go back (${term} < ${d.term})`);
  if (term !== d.term) {
    d.term = term;
    d.vote = null;
    d.out.hardStateChanged = true;
  }
}
