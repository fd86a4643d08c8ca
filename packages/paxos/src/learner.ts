import {
  asError,
  type ConsensusNode,
  closedError,
  ErrorCode,
  failBatches,
  type Inbound,
  type Logger,
  type NodeId,
  PaxosValueKind,
  QuorateError,
  queueRequest,
  realTimers,
  rejectAll,
  type StateMachine,
  silentLogger,
  TakenRequests,
  Ticker,
} from "@quorate/core";
import type { RaftStorage } from "@quorate/storage";
import { activeContext, type Context } from "@quorate/telemetry";
import { type Actor, createActor } from "xstate";
import { checkRoleId, maxCatchUpTicks, messageEvent, type TickingHostOptions, transmit } from "./host.js";
import { type LearnerEvent, type LearnerMachine, learnerMachine } from "./learner-machine.js";
import { type LearnerContext, LearnerLog } from "./learner-protocol.js";
import { LearnerOutbox, type LearnerRequest, type PaxosObservation } from "./outbox.js";
import { roleInput } from "./role-input.js";
import type { PaxosRoleStatus } from "./status.js";
import { LearnerTelemetry } from "./telemetry.js";

export interface LearnerOptions extends TickingHostOptions<LearnerMachine> {
  /**
   * Durable checkpoints (stored as snapshots) and the incarnation counter (stored as the hard
   * state's term); any RaftStorage serves.
   */
  storage: RaftStorage;
  stateMachine: StateMachine;
  /** A request not applied within this time fails as Indeterminate. */
  proposalTimeoutMs?: number;
  /** Applied slots between durable checkpoints; acceptors truncate below checkpoints. */
  checkpointInterval?: number;
}

/** Request seqs of one incarnation live in [incarnation * 2^32, (incarnation + 1) * 2^32). */
const SEQS_PER_INCARNATION = 2 ** 32;
const NO_CONFIG = new Uint8Array(0);

interface Waiter {
  readonly resolve: (result: Uint8Array) => void;
  readonly reject: (err: Error) => void;
}

interface Queued extends Waiter {
  readonly request: LearnerRequest;
  /** The caller's trace context: its request carries it to the proposer's phase 2. */
  readonly context: Context;
}

interface Reader extends Waiter {
  readonly context: Context;
}

/**
 * Hosts the learner machine and the replicated state machine: applies chosen values in slot
 * order, answers its clients (a ConsensusNode, so createKvService runs on it unchanged),
 * writes checkpoints, and restores snapshots received from other learners.
 *
 * Reads go through the log: readBarrier() proposes a read marker and resolves once it is
 * applied here, so every write acknowledged before the call is applied too.
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
  #stopped = false;
  #failure: Error | null = null;
  #queue: Queued[] = [];
  #reads: Reader[] = [];
  #flushScheduled = false;
  #nextBatch = 1;
  readonly #batches = new Map<number, Queued[]>();
  /** Requests handed to the proposer by seq, waiting to be applied here. */
  readonly #waiting: TakenRequests<number, Waiter>;
  #checkpointRequested: number;
  #writing: Promise<void> | null = null;
  readonly #telemetry: LearnerTelemetry;

  private constructor(options: LearnerOptions, log: LearnerLog) {
    this.id = options.id;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    const timers = options.timers ?? realTimers;
    this.#waiting = new TakenRequests(timers, options.proposalTimeoutMs ?? 10_000);
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
    this.#actor.subscribe({ error: (err) => this.#fail(asError(err)) });
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
    const incarnation = state.hardState.term + 1;
    await options.storage.write({ hardState: { term: incarnation, vote: null, commit: 0 } });
    const snapshot = state.snapshot;
    if (snapshot !== null) options.stateMachine.restore(snapshot.data);
    const log = new LearnerLog({
      applied: snapshot?.index ?? 0,
      checkpoint: snapshot === null ? null : { slot: snapshot.index, data: snapshot.data },
      firstSeq: incarnation * SEQS_PER_INCARNATION + 1,
    });
    const learner = new Learner(options, log);
    learner.#actor.start();
    options.transport.listen((message) => learner.#receive(message));
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
    return this.#failure;
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

  propose(command: Uint8Array): Promise<Uint8Array> {
    return queueRequest(this.#closedError(), (resolve, reject) => {
      this.#queue.push({
        request: { kind: PaxosValueKind.Command, data: command },
        context: activeContext(),
        resolve,
        reject,
      });
      this.#scheduleFlush();
    });
  }

  readBarrier(): Promise<void> {
    return queueRequest(this.#closedError(), (resolve, reject) => {
      this.#reads.push({ resolve: () => resolve(), reject, context: activeContext() });
      this.#scheduleFlush();
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#halt(new QuorateError(ErrorCode.Closed, `learner ${this.id} stopped`));
    await this.#writing?.catch(() => undefined);
  }

  /** Halts at once, as a crash. */
  kill(): void {
    this.#halt(new QuorateError(ErrorCode.Closed, `learner ${this.id} was killed`));
  }

  // -------------------------------------------------------------------------------------------

  #context(): LearnerContext {
    return this.#actor.getSnapshot().context;
  }

  #closedError(): QuorateError | null {
    return closedError(`learner ${this.id}`, this.#failure, this.#stopped);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      if (this.#stopped) return;
      const batch = this.#queue;
      this.#queue = [];
      if (this.#reads.length > 0) {
        // Concurrent reads share one marker: it is ordered after every write acknowledged before any of them.
        const reads = this.#reads;
        this.#reads = [];
        batch.push({
          request: { kind: PaxosValueKind.Read, data: new Uint8Array(0) },
          // The marker is traced as the first reader's; the others share its round.
          context: (reads[0] as Reader).context,
          resolve: () => {
            for (const r of reads) r.resolve(new Uint8Array(0));
          },
          reject: (err) => {
            for (const r of reads) r.reject(err);
          },
        });
      }
      if (batch.length === 0) return;
      const id = this.#nextBatch++;
      this.#batches.set(id, batch);
      this.#event({ type: "propose", id, requests: batch.map((q) => q.request) });
    });
  }

  #receive(message: Inbound): void {
    if (!this.#stopped) this.#telemetry.received(message, (slot) => this.#log.isOpen(slot));
    this.#event(messageEvent(message));
  }

  #event(event: LearnerEvent): void {
    if (this.#stopped) return;
    this.#actor.send(event);
    if (this.#stopped) return;
    this.#drain();
  }

  #drain(): void {
    const taken = this.#out.take();
    this.#telemetry.following(this.#context().leader);
    for (const observation of taken.observations) this.#observe(observation);
    for (const outcome of taken.proposals) {
      const batch = this.#batches.get(outcome.id) ?? [];
      this.#batches.delete(outcome.id);
      if (!outcome.ok) {
        const err = new QuorateError(ErrorCode.NotLeader, `learner ${this.id} knows no active proposer`, {
          leader: outcome.leader,
        });
        for (const q of batch) q.reject(err);
        continue;
      }
      for (const [i, q] of batch.entries()) {
        const seq = outcome.firstSeq + i;
        this.#telemetry.requested(seq, q.context);
        this.#waiting.add(seq, q, `request ${seq} was not applied in time; it may still be chosen`);
      }
    }
    // Learners make nothing durable that a message depends on: every message leaves at once.
    for (const message of taken.messages) {
      transmit(this.#options.transport, message, this.#telemetry.sending(message));
    }
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
          this.#fail(asError(err));
          return;
        }
      }
      log.markApplied(slot);
      this.#observe({ kind: "applied", learner: this.id, slot, value });
      if (value.origin === this.id) this.#waiting.take(value.seq)?.resolve(result);
    }
    if (log.applied >= this.#checkpointRequested + this.#checkpointInterval && this.#writing === null) {
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
    this.#checkpointRequested = slot;
    const previous = this.#writing ?? Promise.resolve();
    const writing = previous
      .then(() => this.#options.storage.write({ snapshot: { index: slot, term: 0, config: NO_CONFIG, data } }))
      .then(
        () => {
          if (this.#writing === writing) this.#writing = null;
          if (slot > (this.#log.checkpoint?.slot ?? 0)) this.#log.checkpoint = { slot, data };
        },
        (err: unknown) => {
          if (this.#writing === writing) this.#writing = null;
          this.#fail(asError(err));
        },
      );
    this.#writing = writing;
  }

  #observe(observation: PaxosObservation): void {
    this.#telemetry.observe(observation);
    this.#options.observe?.(observation);
  }

  #halt(err: Error): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#ticker.stop();
    this.#options.transport.listen(() => {});
    this.#actor.stop();
    this.#telemetry.close();
    // Handed to the proposer: the outcome is unknown.
    this.#waiting.failAll(err);
    failBatches(this.#batches, err);
    rejectAll(this.#queue, err);
    this.#queue = [];
    rejectAll(this.#reads, err);
    this.#reads = [];
  }

  #fail(err: Error): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.#logger.error("learner failed; stopping", { member: this.id, error: err.message });
    this.#halt(new QuorateError(ErrorCode.Closed, `learner ${this.id} failed: ${err.message}`, { cause: err }));
  }
}
