import {
  ErrorCode,
  type Inbound,
  type Logger,
  type NodeId,
  type PaxosBallot,
  QuorateError,
  silentLogger,
  type Transport,
} from "@quorate/core";
import type { RaftStorage } from "@quorate/storage";
import { type Actor, createActor } from "xstate";
import { Courier } from "./courier.js";
import { type PaxosOptions, type PaxosTopology, resolvePaxosOptions } from "./options.js";
import { type PaxosMessage, type PaxosObservation, ProposerOutbox } from "./outbox.js";
import { type ProposerEvent, type ProposerMachine, proposerMachine, proposerMode } from "./proposer-machine.js";
import { type ProposerContext, ProposerSlots } from "./proposer-protocol.js";
import type { PaxosRoleStatus } from "./status.js";
import { realTimers, type Timers } from "./timers.js";

export interface ProposerOptions {
  /** This proposer's role id, one of `topology.proposers`. */
  id: NodeId;
  topology: PaxosTopology;
  transport: Transport;
  /**
   * Where the highest round used is kept, so a restarted proposer never reuses a ballot. Any
   * RaftStorage serves: the round is stored as the hard state's term, which is what it is.
   */
  storage: RaftStorage;
  paxos?: Partial<PaxosOptions>;
  /** Milliseconds per tick. */
  tickMs?: number;
  logger?: Logger;
  /** Seeds the randomized leader timeout; defaults to the id. */
  seed?: number | string;
  timers?: Timers;
  observe?: (observation: PaxosObservation) => void;
  /** The protocol machine; tests and simulators substitute broken variants with `provide()`. */
  machine?: ProposerMachine;
}

/**
 * Hosts the proposer machine: ticks it, feeds it messages, makes each new round durable
 * before the p1a that carries it leaves, and sends everything else at once.
 */
export class Proposer {
  readonly id: NodeId;
  readonly #actor: Actor<ProposerMachine>;
  readonly #out = new ProposerOutbox();
  readonly #slots = new ProposerSlots();
  readonly #options: ProposerOptions;
  readonly #logger: Logger;
  readonly #timers: Timers;
  readonly #courier: Courier;
  #ticker: unknown;
  #stopped = false;
  #failure: Error | null = null;
  #pendingRound: number | null = null;
  #writing: Promise<void> | null = null;
  #highestDecided = 0;

  private constructor(options: ProposerOptions, round: number) {
    this.id = options.id;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#timers = options.timers ?? realTimers;
    this.#courier = new Courier(
      options.transport,
      () => this.#startWrite(),
      (err) => this.#fail(err),
    );
    this.#actor = createActor(options.machine ?? proposerMachine, {
      input: {
        id: options.id,
        topology: options.topology,
        options: resolvePaxosOptions(options.paxos),
        slots: this.#slots,
        out: this.#out,
        round,
        seed: options.seed ?? options.id,
      },
    });
  }

  static async start(options: ProposerOptions): Promise<Proposer> {
    if (!options.topology.proposers.includes(options.id)) {
      throw new QuorateError(
        ErrorCode.Config,
        `proposer '${options.id}' is not among the proposers (${options.topology.proposers.join(",")})`,
      );
    }
    const state = await options.storage.load();
    const proposer = new Proposer(options, state.hardState.term);
    proposer.#actor.start();
    proposer.#drain();
    options.transport.listen((message) => proposer.#receive(message));
    proposer.#ticker = proposer.#timers.setInterval(() => proposer.#event({ type: "tick" }), options.tickMs ?? 50);
    return proposer;
  }

  get mode(): "passive" | "scouting" | "active" {
    return proposerMode(this.#actor.getSnapshot().value);
  }

  /** Its own ballot while scouting or active; otherwise the highest ballot it knows in use. */
  get ballot(): PaxosBallot {
    const ctx = this.#context();
    return this.mode === "passive" ? ctx.leaderBallot : ctx.ballot;
  }

  leader(): NodeId | null {
    return this.#context().leader;
  }

  get failure(): Error | null {
    return this.#failure;
  }

  status(): PaxosRoleStatus {
    const ctx = this.#context();
    const ballot = this.ballot;
    return {
      protocol: "paxos",
      id: this.id,
      role: `proposer:${this.mode}`,
      term: ballot[0],
      ballot,
      leader: ctx.leader,
      commitIndex: this.#highestDecided,
      appliedIndex: ctx.truncated,
      lastLogIndex: ctx.nextSlot - 1,
    };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#halt();
    await this.#writing?.catch(() => undefined);
  }

  /** Halts at once, as a crash. */
  kill(): void {
    this.#halt();
  }

  #halt(): void {
    this.#stopped = true;
    this.#timers.clearInterval(this.#ticker);
    this.#options.transport.listen(() => {});
    this.#courier.close();
    this.#actor.stop();
  }

  #context(): ProposerContext {
    return this.#actor.getSnapshot().context;
  }

  #receive(message: Inbound): void {
    this.#event({
      type: "message",
      from: message.sender,
      message: { type: message.type, body: message.body } as PaxosMessage,
    });
  }

  #event(event: ProposerEvent): void {
    if (this.#stopped) return;
    this.#actor.send(event);
    this.#drain();
  }

  #drain(): void {
    const taken = this.#out.take();
    for (const observation of taken.observations) this.#observe(observation);
    if (taken.round !== null) this.#pendingRound = taken.round;
    this.#courier.push(taken.messages);
    this.#courier.flush();
  }

  #observe(observation: PaxosObservation): void {
    if (observation.kind === "mode" || observation.kind === "preempted" || observation.kind === "adopted") {
      this.#logger.info(`paxos proposer ${observation.kind}`, { member: this.id, ...observation });
    }
    if (observation.kind === "decided") {
      for (const slot of observation.slots) if (slot > this.#highestDecided) this.#highestDecided = slot;
    }
    this.#options.observe?.(observation);
  }

  #startWrite(): Promise<void> | null {
    if (this.#pendingRound === null) return null;
    const round = this.#pendingRound;
    this.#pendingRound = null;
    const writing = this.#options.storage.write({ hardState: { term: round, vote: null, commit: 0 } });
    this.#writing = writing;
    return writing;
  }

  #fail(err: Error): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.#logger.error("proposer storage failed; stopping", { member: this.id, error: err.message });
    this.#halt();
  }
}
