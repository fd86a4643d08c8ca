import {
  type Headers,
  type Inbound,
  type Logger,
  type NodeId,
  type PaxosBallot,
  realTimers,
  silentLogger,
} from "@quorate/core";
import { type OutboundMessage, Ticker } from "@quorate/core/internal";
import { type Actor, createActor } from "xstate";
import { DurableRoleHost } from "./durable-host.js";
import { checkRoleId, maxCatchUpTicks, messageEvent, ROLE_MESSAGES, type TickingHostOptions } from "./host.js";
import { resolvePaxosOptions } from "./options.js";
import { type PaxosObservation, ProposerOutbox } from "./outbox.js";
import { ProposerReads } from "./proposer-leadership.js";
import { type ProposerEvent, type ProposerMachine, proposerMachine, proposerMode } from "./proposer-machine.js";
import type { ProposerContext } from "./proposer-protocol.js";
import { ProposerSlots } from "./proposer-slots.js";
import { ProposerTelemetry } from "./proposer-telemetry.js";
import type { ProposerStorage } from "./role-storage.js";
import type { PaxosRoleStatus } from "./status.js";

export interface ProposerOptions extends TickingHostOptions<ProposerMachine> {
  /** Where the highest round used is kept, so a restarted proposer never reuses a ballot. */
  storage: ProposerStorage;
  /** Seeds the randomized leader timeout; defaults to the id. */
  seed?: number | string;
}

/**
 * Hosts the proposer machine: ticks it, feeds it messages, makes each new round durable
 * before the p1a that carries it leaves, and sends everything else at once.
 */
export class Proposer extends DurableRoleHost {
  readonly #actor: Actor<ProposerMachine>;
  readonly #out = new ProposerOutbox();
  readonly #slots = new ProposerSlots();
  readonly #reads = new ProposerReads();
  readonly #options: ProposerOptions;
  readonly #logger: Logger;
  readonly #telemetry: ProposerTelemetry;
  readonly #ticker: Ticker;
  #pendingRound: number | null = null;
  #highestDecided = 0;

  private constructor(options: ProposerOptions, round: number) {
    const logger = options.logger ?? silentLogger;
    super(options.id, options.transport, logger, "proposer");
    this.#options = options;
    this.#logger = logger;
    this.#ticker = new Ticker(options.timers ?? realTimers, options.tickMs ?? 50, maxCatchUpTicks(options.paxos), () =>
      this.#event({ type: "tick" }),
    );
    this.#actor = createActor(options.machine ?? proposerMachine, {
      input: {
        id: options.id,
        topology: options.topology,
        options: resolvePaxosOptions(options.paxos),
        slots: this.#slots,
        reads: this.#reads,
        out: this.#out,
        round,
        seed: options.seed ?? options.id,
      },
    });
    this.#actor.subscribe({ error: (err) => this.machineFailed(err) });
    this.#telemetry = new ProposerTelemetry(
      options.transport,
      () => ({
        term: this.ballot[0],
        applyLag: 0,
        inflight: this.#slots.undecided,
        dropped: options.transport.stats.dropped,
      }),
      options.topology,
      () => performance.now(),
    );
  }

  static async start(options: ProposerOptions): Promise<Proposer> {
    checkRoleId("proposer", options.id, options.topology);
    const proposer = new Proposer(options, await options.storage.loadRound());
    proposer.#actor.start();
    proposer.#drain();
    options.transport.listen((message) => proposer.#receive(message));
    proposer.#ticker.start();
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

  protected halted(): void {
    this.#ticker.stop();
    this.#actor.stop();
    this.#telemetry.close();
  }

  protected sending(message: OutboundMessage): Headers | undefined {
    return this.#telemetry.sending(message);
  }

  #context(): ProposerContext {
    return this.#actor.getSnapshot().context;
  }

  #receive(message: Inbound): void {
    if (!ROLE_MESSAGES.proposer.has(message.type)) return;
    if (!this.stopped) this.#telemetry.received(message);
    this.#event(messageEvent(message));
  }

  #event(event: ProposerEvent): void {
    this.step(
      () => this.#actor.send(event),
      () => this.#drain(),
    );
  }

  #drain(): void {
    const taken = this.#out.take();
    for (const observation of taken.observations) this.#observe(observation);
    if (taken.round !== null) this.#pendingRound = taken.round;
    this.pipeline.push(taken.messages);
    this.pipeline.flush();
  }

  #observe(observation: PaxosObservation): void {
    if (observation.kind === "mode" || observation.kind === "preempted" || observation.kind === "adopted") {
      this.#logger.info(`paxos proposer ${observation.kind}`, { member: this.id, ...observation });
    }
    if (observation.kind === "decided") {
      for (const slot of observation.slots) if (slot > this.#highestDecided) this.#highestDecided = slot;
    }
    this.#telemetry.observe(observation);
    this.#options.observe?.(observation);
  }

  protected startWrite(): Promise<void> | null {
    if (this.#pendingRound === null) return null;
    const round = this.#pendingRound;
    this.#pendingRound = null;
    return this.#options.storage.writeRound(round);
  }
}
