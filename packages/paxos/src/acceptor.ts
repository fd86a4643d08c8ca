import {
  type Headers,
  type Inbound,
  type PaxosAcceptance,
  type PaxosBallot,
  type ReceivedFrame,
  silentLogger,
} from "@quorate/core";
import type { OutboundMessage } from "@quorate/core/internal";
import type { AcceptorWrite } from "@quorate/storage";
import { type Actor, createActor } from "xstate";
import { type AcceptorMachine, acceptorMachine } from "./acceptor-machine.js";
import { AcceptorLog } from "./acceptor-protocol.js";
import { AcceptorTelemetry } from "./acceptor-telemetry.js";
import { DurableRoleHost } from "./durable-host.js";
import { checkRoleId, messageEvent, ROLE_MESSAGES, type RoleHostOptions } from "./host.js";
import { AcceptorOutbox } from "./outbox.js";
import { roleInput } from "./role-input.js";
import type { AcceptorStorage } from "./role-storage.js";
import type { PaxosRoleStatus } from "./status.js";

/** `observe` receives the acceptor's promises, votes and truncations. */
export interface AcceptorOptions extends RoleHostOptions<AcceptorMachine> {
  storage: AcceptorStorage;
}

/**
 * Hosts the acceptor machine: feeds it messages, writes its promise and votes in batches (one
 * fsync for all that accumulated while the previous write was in flight) and sends each reply
 * only once the state it reports is durable.
 */
export class Acceptor extends DurableRoleHost {
  readonly #actor: Actor<AcceptorMachine>;
  readonly #log: AcceptorLog;
  readonly #out: AcceptorOutbox;
  readonly #options: AcceptorOptions;
  readonly #telemetry: AcceptorTelemetry;

  // Changes not yet handed to storage.
  #pendingPromise: PaxosBallot | null = null;
  #pendingAccepted = new Map<number, PaxosAcceptance>();
  #pendingTruncate: number | null = null;

  private constructor(options: AcceptorOptions, log: AcceptorLog, promised: PaxosBallot) {
    super(options.id, options.transport, options.logger ?? silentLogger, "acceptor");
    this.#options = options;
    this.#log = log;
    this.#out = new AcceptorOutbox();
    this.#actor = createActor(options.machine ?? acceptorMachine, {
      input: { ...roleInput(options, log, this.#out), promised },
    });
    this.#actor.subscribe({ error: (err) => this.machineFailed(err) });
    this.#telemetry = new AcceptorTelemetry(options.transport, () => ({
      term: this.promised[0],
      applyLag: 0,
      inflight: 0,
      dropped: options.transport.stats.dropped,
    }));
  }

  /** Recovers the promise and votes from storage and starts serving. */
  static async start(options: AcceptorOptions): Promise<Acceptor> {
    checkRoleId("acceptor", options.id, options.topology);
    const state = await options.storage.load();
    const acceptor = new Acceptor(
      options,
      new AcceptorLog({ truncated: state.truncated, accepted: state.accepted }),
      state.promised,
    );
    acceptor.#actor.start();
    options.transport.listen((message, frame) => acceptor.#receive(message, frame));
    return acceptor;
  }

  /** The durable-or-pending promise the machine holds. */
  get promised(): PaxosBallot {
    return this.#actor.getSnapshot().context.promised;
  }

  /** The vote held for `slot`, if any. */
  accepted(slot: number): PaxosAcceptance | undefined {
    return this.#log.get(slot);
  }

  get truncated(): number {
    return this.#log.truncated;
  }

  status(): PaxosRoleStatus {
    const promised = this.promised;
    return {
      protocol: "paxos",
      id: this.id,
      role: "acceptor",
      term: promised[0],
      ballot: promised,
      leader: promised[1] === "" ? null : promised[1],
      commitIndex: this.#log.truncated,
      appliedIndex: this.#log.truncated,
      lastLogIndex: this.#log.highestSlot,
    };
  }

  protected halted(): void {
    this.#actor.stop();
    this.#telemetry.close();
  }

  protected sending(message: OutboundMessage): Headers | undefined {
    return this.#telemetry.sending(message);
  }

  #receive(message: Inbound, frame: ReceivedFrame | undefined): void {
    if (this.stopped || !ROLE_MESSAGES.acceptor.has(message.type)) return;
    const consumer = this.#telemetry.received(message, frame);
    this.#actor.send(messageEvent(message));
    if (this.stopped) return;
    const taken = this.#out.take();
    this.#telemetry.handled(consumer, taken.messages);
    for (const observation of taken.observations) this.#options.observe?.(observation);
    if (taken.promised !== null) this.#pendingPromise = taken.promised;
    for (const a of taken.accepted) this.#pendingAccepted.set(a.slot, a);
    if (taken.truncateThrough !== null) {
      this.#pendingTruncate = Math.max(this.#pendingTruncate ?? 0, taken.truncateThrough);
      for (const slot of this.#pendingAccepted.keys()) {
        if (slot <= taken.truncateThrough) this.#pendingAccepted.delete(slot);
      }
    }
    this.pipeline.push(taken.messages);
    this.pipeline.flush();
  }

  protected startWrite(): Promise<void> | null {
    if (this.#pendingPromise === null && this.#pendingAccepted.size === 0 && this.#pendingTruncate === null) {
      return null;
    }
    const write: AcceptorWrite = {};
    if (this.#pendingPromise !== null) write.promised = this.#pendingPromise;
    if (this.#pendingAccepted.size > 0) write.accepted = [...this.#pendingAccepted.values()];
    if (this.#pendingTruncate !== null) write.truncateThrough = this.#pendingTruncate;
    this.#pendingPromise = null;
    this.#pendingAccepted = new Map();
    this.#pendingTruncate = null;
    return this.#options.storage.write(write);
  }
}
