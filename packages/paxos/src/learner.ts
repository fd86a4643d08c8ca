import {
  type ConsensusNode,
  ErrorCode,
  type Inbound,
  type Logger,
  type NodeId,
  PaxosValueKind,
  QuorateError,
  type StateMachine,
  silentLogger,
  type Transport,
} from "@quorate/core";
import type { RaftStorage } from "@quorate/storage";
import { type Actor, createActor } from "xstate";
import { type LearnerEvent, type LearnerMachine, learnerMachine } from "./learner-machine.js";
import { type LearnerContext, LearnerLog } from "./learner-protocol.js";
import { type PaxosOptions, type PaxosTopology, resolvePaxosOptions } from "./options.js";
import { LearnerOutbox, type LearnerRequest, type PaxosMessage, type PaxosObservation } from "./outbox.js";
import type { PaxosRoleStatus } from "./status.js";
import { realTimers, type Timers } from "./timers.js";

export interface LearnerOptions {
  /** This learner's role id, one of `topology.learners`. */
  id: NodeId;
  topology: PaxosTopology;
  transport: Transport;
  /**
   * Durable checkpoints (stored as snapshots) and the incarnation counter (stored as the hard
   * state's term); any RaftStorage serves.
   */
  storage: RaftStorage;
  stateMachine: StateMachine;
  paxos?: Partial<PaxosOptions>;
  tickMs?: number;
  /** A request not applied within this time fails as Indeterminate. */
  proposalTimeoutMs?: number;
  /** Applied slots between durable checkpoints; acceptors truncate below checkpoints. */
  checkpointInterval?: number;
  logger?: Logger;
  timers?: Timers;
  observe?: (observation: PaxosObservation) => void;
  machine?: LearnerMachine;
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
  readonly #timers: Timers;
  readonly #proposalTimeoutMs: number;
  readonly #checkpointInterval: number;
  #ticker: unknown;
  #stopped = false;
  #failure: Error | null = null;
  #queue: Queued[] = [];
  #reads: Waiter[] = [];
  #flushScheduled = false;
  #nextBatch = 1;
  readonly #batches = new Map<number, Queued[]>();
  readonly #waiting = new Map<number, Waiter & { timer: unknown }>();
  #checkpointRequested: number;
  #writing: Promise<void> | null = null;

  private constructor(options: LearnerOptions, log: LearnerLog) {
    this.id = options.id;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#timers = options.timers ?? realTimers;
    this.#proposalTimeoutMs = options.proposalTimeoutMs ?? 10_000;
    this.#checkpointInterval = options.checkpointInterval ?? 1000;
    this.#log = log;
    this.#checkpointRequested = log.applied;
    this.#actor = createActor(options.machine ?? learnerMachine, {
      input: {
        id: options.id,
        topology: options.topology,
        options: resolvePaxosOptions(options.paxos),
        log,
        out: this.#out,
      },
    });
  }

  /** Restores the latest checkpoint, takes a new incarnation, and starts learning. */
  static async start(options: LearnerOptions): Promise<Learner> {
    if (!options.topology.learners.includes(options.id)) {
      throw new QuorateError(
        ErrorCode.Config,
        `learner '${options.id}' is not among the learners (${options.topology.learners.join(",")})`,
      );
    }
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
    learner.#ticker = learner.#timers.setInterval(() => learner.#event({ type: "tick" }), options.tickMs ?? 50);
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
    const closed = this.#closedError();
    if (closed !== null) return Promise.reject(closed);
    return new Promise((resolve, reject) => {
      this.#queue.push({ request: { kind: PaxosValueKind.Command, data: command }, resolve, reject });
      this.#scheduleFlush();
    });
  }

  readBarrier(): Promise<void> {
    const closed = this.#closedError();
    if (closed !== null) return Promise.reject(closed);
    return new Promise((resolve, reject) => {
      this.#reads.push({ resolve: () => resolve(), reject });
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
    if (this.#failure !== null) {
      return new QuorateError(ErrorCode.Closed, `learner ${this.id} failed: ${this.#failure.message}`, {
        cause: this.#failure,
      });
    }
    return this.#stopped ? new QuorateError(ErrorCode.Closed, `learner ${this.id} stopped`) : null;
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
    this.#event({
      type: "message",
      from: message.sender,
      message: { type: message.type, body: message.body } as PaxosMessage,
    });
  }

  #event(event: LearnerEvent): void {
    if (this.#stopped) return;
    this.#actor.send(event);
    this.#drain();
  }

  #drain(): void {
    const taken = this.#out.take();
    for (const observation of taken.observations) this.#options.observe?.(observation);
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
      for (const [i, q] of batch.entries()) this.#await(outcome.firstSeq + i, q);
    }
    for (const message of taken.messages) {
      const transport = this.#options.transport;
      if (message.to === null) transport.broadcast(message.type, message.body);
      else transport.send(message.to, message.type, message.body);
    }
    if (taken.restore !== null) this.#restore(taken.restore.slot, taken.restore.data);
    this.#apply();
  }

  #await(seq: number, waiter: Waiter): void {
    const timer = this.#timers.setTimeout(() => {
      if (this.#waiting.get(seq)?.resolve !== waiter.resolve) return;
      this.#waiting.delete(seq);
      waiter.reject(
        new QuorateError(ErrorCode.Indeterminate, `request ${seq} was not applied in time; it may still be chosen`),
      );
    }, this.#proposalTimeoutMs);
    this.#waiting.set(seq, { ...waiter, timer });
  }

  #settle(seq: number, result: Uint8Array): void {
    const waiter = this.#waiting.get(seq);
    if (waiter === undefined) return;
    this.#waiting.delete(seq);
    this.#timers.clearTimeout(waiter.timer);
    waiter.resolve(result);
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
          this.#fail(err instanceof Error ? err : new Error(String(err)));
          return;
        }
      }
      log.markApplied(slot);
      this.#options.observe?.({ kind: "applied", learner: this.id, slot, value });
      if (value.origin === this.id) this.#settle(value.seq, result);
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
    this.#options.observe?.({ kind: "restored", learner: this.id, slot });
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
          this.#fail(err instanceof Error ? err : new Error(String(err)));
        },
      );
    this.#writing = writing;
  }

  #halt(err: Error): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#timers.clearInterval(this.#ticker);
    this.#options.transport.listen(() => {});
    this.#actor.stop();
    for (const w of this.#waiting.values()) {
      this.#timers.clearTimeout(w.timer);
      // Handed to the proposer: the outcome is unknown.
      w.reject(new QuorateError(ErrorCode.Indeterminate, err.message, { cause: err }));
    }
    this.#waiting.clear();
    for (const batch of this.#batches.values()) for (const q of batch) q.reject(err);
    this.#batches.clear();
    for (const q of this.#queue) q.reject(err);
    this.#queue = [];
    for (const r of this.#reads) r.reject(err);
    this.#reads = [];
  }

  #fail(err: Error): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.#logger.error("learner failed; stopping", { member: this.id, error: err.message });
    this.#halt(new QuorateError(ErrorCode.Closed, `learner ${this.id} failed: ${err.message}`, { cause: err }));
  }
}
