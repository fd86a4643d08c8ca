import {
  type ConsensusNode,
  ErrorCode,
  type Inbound,
  type Logger,
  type NodeId,
  PaxosValueKind,
  QuorateError,
  type ReceivedFrame,
  realTimers,
  type StateMachine,
  silentLogger,
} from "@quorate/core";
import {
  asError,
  DurablePipeline,
  type DurableWrite,
  HostLifecycle,
  invariant,
  MicrotaskFlush,
  PendingLimit,
  RequestBatches,
  rejectAll,
  requirePositiveIntegers,
  TakenRequests,
  Ticker,
} from "@quorate/core/internal";
import { activeContext, type Context } from "@quorate/telemetry";
import { type Actor, createActor } from "xstate";
import { checkRoleId, maxCatchUpTicks, messageEvent, ROLE_MESSAGES, type TickingHostOptions } from "./host.js";
import { LearnerLog } from "./learner-log.js";
import { type LearnerEvent, type LearnerMachine, learnerMachine } from "./learner-machine.js";
import type { LearnerContext } from "./learner-protocol.js";
import { ReadBarriers } from "./learner-reads.js";
import { LearnerTelemetry } from "./learner-telemetry.js";
import type { PaxosAccepted } from "./messages.js";
import { LearnerOutbox, type LearnerRequest, type PaxosObservation } from "./outbox.js";
import { roleInput } from "./role-input.js";
import type { LearnerStorage } from "./role-storage.js";
import type { PaxosRoleStatus } from "./status.js";

export interface LearnerOptions extends TickingHostOptions<LearnerMachine> {
  /** Durable checkpoints and the incarnation counter. */
  storage: LearnerStorage;
  stateMachine: StateMachine;
  /** A request not applied within this time fails as Indeterminate. */
  proposalTimeoutMs?: number;
  /** Applied slots between durable checkpoints; acceptors truncate below checkpoints. */
  checkpointInterval?: number;
  /** Commands this learner holds at once, from the call until applied or failed; one more fails with Busy. */
  maxPendingProposals?: number;
  /** Read barriers this learner holds at once; one more fails with Busy. */
  maxPendingReads?: number;
}

export const DEFAULT_MAX_PENDING_PROPOSALS = 10_000;
export const DEFAULT_MAX_PENDING_READS = 10_000;

/** Request seqs of one incarnation live in [incarnation * 2^32, (incarnation + 1) * 2^32). */
const SEQS_PER_INCARNATION = 2 ** 32;

interface Waiter {
  readonly resolve: (result: Uint8Array) => void;
  readonly reject: (err: Error) => void;
}

interface Queued extends Waiter {
  readonly request: LearnerRequest;
  /** The caller's trace context: its request carries it to the proposer's phase 2. */
  readonly context: Context;
}

/**
 * Hosts the learner machine and the replicated state machine: applies chosen values in slot
 * order, answers its clients (a ConsensusNode, so createKvService runs on it unchanged),
 * writes checkpoints, and restores snapshots received from other learners.
 *
 * Reads write nothing: readBarrier() asks the active proposer for a read index, which it gives
 * once a quorum of acceptors confirmed its ballot after the read arrived, and resolves once
 * this learner applied through it; every write acknowledged before the call is then applied
 * (the proof is in the package README).
 */
export class Learner implements ConsensusNode {
  readonly id: NodeId;
  readonly #actor: Actor<LearnerMachine>;
  readonly #log: LearnerLog;
  readonly #out = new LearnerOutbox();
  readonly #options: LearnerOptions;
  readonly #logger: Logger;
  readonly #checkpointInterval: number;
  readonly #ticker: Ticker;
  readonly #lifecycle: HostLifecycle;
  readonly #pipeline: DurablePipeline;
  readonly #proposalLimit: PendingLimit;
  readonly #readLimit: PendingLimit;
  /** Commands queued for the next batch or handed to the machine. */
  readonly #requests: RequestBatches<Queued>;
  readonly #reads: ReadBarriers;
  readonly #flush = new MicrotaskFlush(() => this.#flushRequests());
  #nextBatch = 1;
  /** Requests handed to the proposer by seq, waiting to be applied here. */
  readonly #waiting: TakenRequests<number, Waiter>;
  #checkpointRequested: number;
  /** The latest checkpoint not yet handed to storage. */
  #pendingCheckpoint: { slot: number; data: Uint8Array } | null = null;
  readonly #telemetry: LearnerTelemetry;

  private constructor(options: LearnerOptions, log: LearnerLog) {
    this.id = options.id;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    const timers = options.timers ?? realTimers;
    const maxPendingProposals = options.maxPendingProposals ?? DEFAULT_MAX_PENDING_PROPOSALS;
    const maxPendingReads = options.maxPendingReads ?? DEFAULT_MAX_PENDING_READS;
    requirePositiveIntegers("learner option", { maxPendingProposals, maxPendingReads });
    this.#lifecycle = new HostLifecycle("learner", options.id, this.#logger, (reason) => this.#halt(reason));
    this.#proposalLimit = new PendingLimit(
      `learner ${options.id}`,
      "proposals",
      "maxPendingProposals",
      maxPendingProposals,
    );
    this.#readLimit = new PendingLimit(`learner ${options.id}`, "reads", "maxPendingReads", maxPendingReads);
    this.#requests = new RequestBatches("learner requests", maxPendingProposals);
    this.#waiting = new TakenRequests(timers, options.proposalTimeoutMs ?? 10_000, maxPendingProposals);
    // A batch holds at least one read: at most as many batches as reads admitted.
    this.#reads = new ReadBarriers(timers, options.proposalTimeoutMs ?? 10_000, maxPendingReads, () =>
      this.#flush.schedule(),
    );
    this.#pipeline = new DurablePipeline({
      transport: options.transport,
      startWrite: () => this.#startWrite(),
      writeFailed: (err) => this.#lifecycle.fail(err),
      sending: (message) => this.#telemetry.sending(message),
    });
    this.#ticker = new Ticker(timers, options.tickMs ?? 50, maxCatchUpTicks(options.paxos), () =>
      this.#event({ type: "tick" }),
    );
    this.#checkpointInterval = options.checkpointInterval ?? 1000;
    this.#log = log;
    this.#checkpointRequested = log.applied;
    this.#actor = createActor(options.machine ?? learnerMachine, {
      input: roleInput(options, log, this.#out),
    });
    // A throwing rule (a failed invariant) stops the learner loudly, with nothing of that step applied.
    this.#actor.subscribe({ error: (err) => this.#lifecycle.fail(asError(err)) });
    this.#telemetry = new LearnerTelemetry(options.transport, () => ({
      term: this.#context().leaderBallot[0],
      applyLag: this.#log.highestChosen - this.#log.applied,
      inflight: this.#log.pending.size,
      dropped: options.transport.stats.dropped,
    }));
  }

  /** Restores the latest checkpoint, takes a new incarnation, and starts learning. */
  static async start(options: LearnerOptions): Promise<Learner> {
    checkRoleId("learner", options.id, options.topology);
    const state = await options.storage.load();
    // A fresh incarnation numbers its requests apart from any earlier one's, which may still
    // be decided after this restart and must not be taken for ours.
    const incarnation = state.incarnation + 1;
    await options.storage.writeIncarnation(incarnation);
    const { checkpoint } = state;
    if (checkpoint !== null) options.stateMachine.restore(checkpoint.data);
    const log = new LearnerLog({
      applied: checkpoint?.slot ?? 0,
      checkpoint,
      firstSeq: incarnation * SEQS_PER_INCARNATION + 1,
    });
    const learner = new Learner(options, log);
    learner.#actor.start();
    options.transport.listen((message, frame) => learner.#receive(message, frame));
    learner.#ticker.start();
    return learner;
  }

  leader(): NodeId | null {
    return this.#context().leader;
  }

  get appliedIndex(): number {
    return this.#log.applied;
  }

  /** The value chosen in `slot`, while it waits to be applied. */
  chosen(slot: number) {
    return this.#log.chosen.get(slot);
  }

  get failure(): Error | null {
    return this.#lifecycle.failure;
  }

  status(): PaxosRoleStatus {
    const ctx = this.#context();
    return {
      protocol: "paxos",
      id: this.id,
      role: "learner",
      term: ctx.leaderBallot[0],
      ballot: ctx.leaderBallot,
      leader: ctx.leader,
      commitIndex: this.#log.highestChosen,
      appliedIndex: this.#log.applied,
      lastLogIndex: Math.max(this.#log.highestSeen, this.#log.highestChosen),
    };
  }

  /** Fails with Busy, at once, while `maxPendingProposals` commands are pending here. */
  propose(command: Uint8Array): Promise<Uint8Array> {
    return this.#proposalLimit.admit(this.#lifecycle.closedError(), (resolve, reject) => {
      this.#requests.push({
        request: { kind: PaxosValueKind.Command, data: command },
        context: activeContext(),
        resolve,
        reject,
      });
      this.#flush.schedule();
    });
  }

  /** Fails with Busy, at once, while `maxPendingReads` read barriers are pending here. */
  readBarrier(): Promise<void> {
    return this.#readLimit.admit(this.#lifecycle.closedError(), (resolve, reject) => {
      this.#reads.queue({ resolve, reject });
      this.#flush.schedule();
    });
  }

  async stop(): Promise<void> {
    if (!this.#lifecycle.stop("stopped")) return;
    await this.#pipeline.writeSettled();
  }

  /** Halts at once, as a crash. */
  kill(): void {
    this.#lifecycle.stop("was killed");
  }

  // -------------------------------------------------------------------------------------------

  #context(): LearnerContext {
    return this.#actor.getSnapshot().context;
  }

  #flushRequests(): void {
    if (this.#lifecycle.stopped) return;
    if (this.#reads.queued > 0) {
      // Concurrent reads share one read index: it covers every write acknowledged before any of them.
      const batch = this.#nextBatch++;
      this.#reads.takeBatch(batch);
      this.#event({ type: "read", batch });
    }
    const abandoned = this.#reads.takeAbandoned();
    if (abandoned.length > 0) this.#event({ type: "forgetReads", batches: abandoned });
    if (this.#requests.queued === 0) return;
    const id = this.#nextBatch++;
    const batch = this.#requests.take(id);
    this.#event({ type: "propose", id, requests: batch.map((q) => q.request) });
  }

  #receive(message: Inbound, frame: ReceivedFrame | undefined): void {
    if (!ROLE_MESSAGES.learner.has(message.type)) return;
    // Votes for slots no longer open change nothing (`hearAccepted` counts open slots only): the
    // vote of every acceptor beyond a phase-2 quorum. Dropped before the machine takes a step.
    if (message.type === "paxos.p2b" && !(message.body as PaxosAccepted).slots.some((s) => this.#log.isOpen(s))) {
      return;
    }
    if (!this.#lifecycle.stopped) this.#telemetry.received(message, frame, (slot) => this.#log.isOpen(slot));
    this.#event(messageEvent(message));
  }

  #event(event: LearnerEvent): void {
    this.#lifecycle.step(
      () => this.#actor.send(event),
      () => this.#drain(),
    );
  }

  #drain(): void {
    const taken = this.#out.take();
    this.#telemetry.following(this.#context().leader);
    for (const observation of taken.observations) this.#observe(observation);
    for (const outcome of taken.proposals) {
      const batch = this.#requests.answered(outcome.id);
      if (!outcome.ok) {
        const err =
          outcome.busy === true
            ? new QuorateError(ErrorCode.Busy, `learner ${this.id} has too many requests not yet chosen; retry later`)
            : new QuorateError(ErrorCode.NotLeader, `learner ${this.id} knows no active proposer`, {
                leader: outcome.leader,
              });
        rejectAll(batch, err);
        continue;
      }
      for (const [i, q] of batch.entries()) {
        const seq = outcome.firstSeq + i;
        this.#telemetry.requested(seq, q.context);
        this.#waiting.add(seq, q, `request ${seq} was not applied in time; it may still be chosen`);
      }
    }
    for (const outcome of taken.reads) {
      if (outcome.ok) {
        this.#reads.indexed(outcome.batch, outcome.slot);
        continue;
      }
      const err =
        outcome.busy === true
          ? new QuorateError(ErrorCode.Busy, `learner ${this.id} has too many reads not yet confirmed; retry later`)
          : new QuorateError(ErrorCode.NotLeader, `learner ${this.id} knows no active proposer`, {
              leader: outcome.leader,
            });
      this.#reads.refused(outcome.batch, err);
    }
    // Learners make nothing durable that a message depends on: every message leaves at once.
    this.#pipeline.push(taken.messages);
    this.#pipeline.flush();
    if (taken.restore !== null) this.#restore(taken.restore.slot, taken.restore.data);
    this.#apply();
  }

  #apply(): void {
    const log = this.#log;
    for (let value = log.chosen.get(log.applied + 1); value !== undefined; value = log.chosen.get(log.applied + 1)) {
      const slot = log.applied + 1;
      let result: Uint8Array = new Uint8Array(0);
      if (value.kind === PaxosValueKind.Command) {
        try {
          result = this.#options.stateMachine.apply(value.data, slot);
        } catch (err) {
          // Learners must not diverge: a state machine that throws stops this one.
          this.#lifecycle.fail(asError(err));
          return;
        }
      }
      log.markApplied(slot);
      this.#observe({ kind: "applied", learner: this.id, slot, value });
      if (value.origin === this.id) this.#waiting.take(value.seq)?.resolve(result);
    }
    this.#reads.answer(log.applied);
    if (log.applied >= this.#checkpointRequested + this.#checkpointInterval && this.#pipeline.idle) {
      this.#checkpoint(log.applied, this.#options.stateMachine.snapshot());
    }
  }

  #restore(slot: number, data: Uint8Array): void {
    if (slot <= this.#log.applied) return;
    try {
      this.#options.stateMachine.restore(data);
    } catch (err) {
      this.#logger.warn("could not restore a learner snapshot", { member: this.id, slot, error: String(err) });
      return;
    }
    this.#log.restoredTo(slot);
    this.#observe({ kind: "restored", learner: this.id, slot });
    this.#logger.info("restored a snapshot from another learner", { member: this.id, slot });
    this.#checkpoint(slot, data);
  }

  /** Makes a checkpoint durable; only then is it reported, so acceptors may truncate below it. */
  #checkpoint(slot: number, data: Uint8Array): void {
    invariant(slot > this.#checkpointRequested, `checkpoint ${slot} after ${this.#checkpointRequested}`);
    this.#checkpointRequested = slot;
    // A checkpoint still waiting for the write in flight is superseded: this one covers more.
    this.#pendingCheckpoint = { slot, data };
    this.#pipeline.flush();
  }

  #startWrite(): DurableWrite | null {
    const checkpoint = this.#pendingCheckpoint;
    if (checkpoint === null) return null;
    this.#pendingCheckpoint = null;
    const { slot } = checkpoint;
    return {
      done: this.#options.storage.writeCheckpoint(checkpoint),
      durable: () => {
        if (slot > (this.#log.checkpoint?.slot ?? 0)) this.#log.checkpoint = checkpoint;
      },
    };
  }

  #observe(observation: PaxosObservation): void {
    this.#telemetry.observe(observation);
    this.#options.observe?.(observation);
  }

  #halt(err: Error): void {
    this.#ticker.stop();
    this.#options.transport.listen(() => {});
    this.#pipeline.close();
    this.#actor.stop();
    this.#telemetry.close();
    // Handed to the proposer: the outcome is unknown.
    this.#waiting.failAll(err);
    this.#requests.failAll(err);
    this.#reads.failAll(err);
  }
}
