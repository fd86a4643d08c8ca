import { ErrorCode, type NodeId, QuorateError, type Timers } from "@quorate/core";
import {
  type HostLifecycle,
  invariant,
  MicrotaskFlush,
  PendingLimit,
  RequestBatches,
  rejectAll,
  requirePositiveIntegers,
  TakenRequests,
} from "@quorate/core/internal";
import { activeContext, type Context } from "@quorate/telemetry";
import type { RaftEvent } from "./machine.js";
import type { ProposalOutcome, ReadOutcome } from "./outbox.js";
import type { RaftTelemetry } from "./telemetry.js";

/** A caller waiting until the entry appended at an index in `term` is applied. */
export interface PendingProposal {
  readonly term: number;
  readonly resolve: (result: Uint8Array) => void;
  readonly reject: (err: Error) => void;
}

interface QueuedProposal {
  readonly command: Uint8Array;
  /** The caller's trace context: the parent (or a link) of the round that replicates it. */
  readonly context: Context;
  readonly resolve: (result: Uint8Array) => void;
  readonly reject: (err: Error) => void;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

interface QueuedRead extends Waiter {
  /** The caller's trace context: the parent (or a link) of the leader's read round. */
  readonly context: Context;
}

export interface RaftRequestsOptions {
  readonly id: NodeId;
  readonly timers: Timers;
  readonly proposalTimeoutMs: number;
  readonly maxPendingProposals: number;
  readonly maxPendingReads: number;
  readonly telemetry: RaftTelemetry;
  /** Whether the node still serves requests. */
  readonly lifecycle: Pick<HostLifecycle, "closedError" | "stopped">;
  /** The leader as this member knows it, for NotLeader errors. */
  readonly leader: () => NodeId | null;
  /** Ids for batches handed to the machine, shared with membership changes. */
  readonly nextId: () => number;
  /** Runs before a batch is handed over: the machine learns first how much time has passed. */
  readonly catchUp: () => void;
  readonly event: (event: RaftEvent) => void;
}

/**
 * Client proposals and reads, from the call until they settle: admitted under a limit, batched
 * per microtask into one machine event, then waiting until the state machine has applied them.
 * Every request ends in resolve or reject, also when the node stops.
 */
export class RaftRequests {
  readonly #proposalLimit: PendingLimit;
  readonly #readLimit: PendingLimit;
  readonly #proposals: RequestBatches<QueuedProposal>;
  readonly #reads: RequestBatches<QueuedRead>;
  readonly #flush = new MicrotaskFlush(() => this.#flushBatches());
  /** Appended proposals (and membership changes) by log index, waiting to be applied. */
  readonly #awaitingApply: TakenRequests<number, PendingProposal>;
  /** Reads confirmed by the leader, waiting for the state machine to reach their index. */
  #readsAwaitingApply: { index: number; waiters: Waiter[] }[] = [];

  constructor(private readonly options: RaftRequestsOptions) {
    const { maxPendingProposals, maxPendingReads } = options;
    requirePositiveIntegers("raft node option", { maxPendingProposals, maxPendingReads });
    const host = `raft node ${options.id}`;
    this.#proposalLimit = new PendingLimit(host, "proposals", "maxPendingProposals", options.maxPendingProposals);
    this.#readLimit = new PendingLimit(host, "reads", "maxPendingReads", options.maxPendingReads);
    this.#proposals = new RequestBatches("proposals", options.maxPendingProposals);
    this.#reads = new RequestBatches("reads", options.maxPendingReads);
    this.#awaitingApply = new TakenRequests(options.timers, options.proposalTimeoutMs, options.maxPendingProposals);
  }

  /** Proposals appended and not yet applied. */
  get inflight(): number {
    return this.#awaitingApply.size;
  }

  propose(command: Uint8Array): Promise<Uint8Array> {
    return this.#proposalLimit.admit(this.options.lifecycle.closedError(), (resolve, reject) => {
      this.#proposals.push({ command, context: activeContext(), resolve, reject });
      this.#flush.schedule();
    });
  }

  readBarrier(): Promise<void> {
    return this.#readLimit.admit(this.options.lifecycle.closedError(), (resolve, reject) => {
      this.#reads.push({ resolve, reject, context: activeContext() });
      this.#flush.schedule();
    });
  }

  /** A request that counts against the proposal limit without passing through its queue (a membership change, a transfer). */
  admit<T>(enqueue: (resolve: (result: T) => void, reject: (err: Error) => void) => void): Promise<T> {
    return this.#proposalLimit.admit(this.options.lifecycle.closedError(), enqueue);
  }

  /** The machine answered for a batch of proposals: refused, or appended from `firstIndex` on. */
  proposalsAnswered(outcome: ProposalOutcome): void {
    const batch = this.#proposals.answered(outcome.id);
    if (!outcome.ok) {
      const err =
        outcome.reason === "busy"
          ? new QuorateError(ErrorCode.Busy, "too many uncommitted proposals; retry later")
          : notLeader(this.options.id, outcome.leader);
      rejectAll(batch, err);
      return;
    }
    this.options.telemetry.proposed(
      outcome.firstIndex,
      outcome.term,
      batch.map((p) => p.context),
    );
    batch.forEach((p, i) => {
      const index = outcome.firstIndex + i;
      this.awaitApplied(
        index,
        { term: outcome.term, resolve: p.resolve, reject: p.reject },
        `proposal at index ${index} was not applied in time; it may still commit`,
      );
    });
  }

  /**
   * The machine answered for a batch of reads: refused, or confirmed at an index; they resolve
   * once the state machine (now at `applied`) reaches it.
   */
  readsAnswered(outcome: ReadOutcome, applied: number): void {
    const waiters = this.#reads.answered(outcome.id);
    this.options.telemetry.readAnswered(outcome, applied);
    if (!outcome.ok) {
      rejectAll(waiters, notLeader(this.options.id, outcome.leader));
      return;
    }
    if (outcome.index <= applied) {
      for (const w of waiters) w.resolve();
      return;
    }
    this.#readsAwaitingApply.push({ index: outcome.index, waiters });
  }

  /**
   * Waits for the entry appended at `index` in `pending.term` to be applied. A waiter still at
   * that index is for an entry of an earlier term that was replaced there: it can never commit
   * (a leader of a later term holds another entry at its index), so its caller may safely retry.
   */
  awaitApplied(index: number, pending: PendingProposal, timeoutMessage: string): void {
    const replaced = this.#awaitingApply.take(index);
    if (replaced !== undefined) {
      invariant(
        replaced.term < pending.term,
        `index ${index} appended in term ${pending.term} is awaited from term ${replaced.term}`,
      );
      replaced.reject(notLeader(this.options.id, this.options.leader()));
    }
    this.#awaitingApply.add(index, pending, timeoutMessage);
  }

  /** The entry at `index`, of `term`, was applied with `result` (null: it has none for a caller). */
  applied(index: number, term: number, result: Uint8Array | null): void {
    const pending = this.#awaitingApply.take(index);
    if (pending === undefined) return;
    if (pending.term === term && result !== null) pending.resolve(result);
    // Another leader's entry took this index: ours can never commit; a retry is safe.
    else pending.reject(notLeader(this.options.id, this.options.leader()));
  }

  /** The state machine reached `applied`: confirmed reads at or below it resolve. */
  appliedThrough(applied: number): void {
    if (this.#readsAwaitingApply.length === 0) return;
    const ready = this.#readsAwaitingApply.filter((w) => w.index <= applied);
    this.#readsAwaitingApply = this.#readsAwaitingApply.filter((w) => w.index > applied);
    for (const r of ready) for (const w of r.waiters) w.resolve();
  }

  /** Fails every request, because the node stops with `err`. */
  failAll(err: Error): void {
    // Already appended: the outcome is unknown, the entry may still commit elsewhere.
    this.#awaitingApply.failAll(err);
    this.#proposals.failAll(err);
    this.#reads.failAll(err);
    for (const r of this.#readsAwaitingApply) rejectAll(r.waiters, err);
    this.#readsAwaitingApply = [];
  }

  #flushBatches(): void {
    if (this.options.lifecycle.stopped) return;
    this.options.catchUp();
    if (this.#proposals.queued > 0) {
      const id = this.options.nextId();
      const batch = this.#proposals.take(id);
      this.options.event({ type: "propose", id, commands: batch.map((p) => p.command) });
    }
    if (this.#reads.queued > 0) {
      const id = this.options.nextId();
      this.options.telemetry.readStarted(id, this.#reads.take(id));
      this.options.event({ type: "read", id });
    }
  }
}

/** This member is not the leader: the caller may retry at `leader`, if one is known. */
export function notLeader(self: NodeId, leader: NodeId | null): QuorateError {
  return new QuorateError(
    ErrorCode.NotLeader,
    leader === null ? `${self} is not the leader and knows no leader` : `${self} is not the leader; ${leader} is`,
    { leader },
  );
}
