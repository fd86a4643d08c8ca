import {
  ErrorCode,
  type Inbound,
  type Logger,
  type NodeId,
  type PaxosAcceptance,
  type PaxosBallot,
  QuorateError,
  silentLogger,
  type Transport,
} from "@quorate/core";
import type { AcceptorStorage, AcceptorWrite } from "@quorate/storage";
import { type Actor, createActor } from "xstate";
import { type AcceptorEvent, type AcceptorMachine, acceptorMachine } from "./acceptor-machine.js";
import { AcceptorLog } from "./acceptor-protocol.js";
import { Courier } from "./courier.js";
import { type PaxosOptions, type PaxosTopology, resolvePaxosOptions } from "./options.js";
import { AcceptorOutbox, type PaxosMessage, type PaxosObservation } from "./outbox.js";
import type { PaxosRoleStatus } from "./status.js";

export interface AcceptorOptions {
  /** This acceptor's role id, one of `topology.acceptors`. */
  id: NodeId;
  topology: PaxosTopology;
  transport: Transport;
  storage: AcceptorStorage;
  paxos?: Partial<PaxosOptions>;
  logger?: Logger;
  /** Receives promises, votes and truncations, e.g. for the simulator's invariants. */
  observe?: (observation: PaxosObservation) => void;
  /** The rules; tests and simulators substitute broken variants with `provide()`. */
  machine?: AcceptorMachine;
}

/**
 * Hosts the acceptor machine: feeds it messages, writes its promise and votes in batches (one
 * fsync for all that accumulated while the previous write was in flight) and sends each reply
 * only once the state it reports is durable.
 */
export class Acceptor {
  readonly id: NodeId;
  readonly #actor: Actor<AcceptorMachine>;
  readonly #log: AcceptorLog;
  readonly #out: AcceptorOutbox;
  readonly #options: AcceptorOptions;
  readonly #logger: Logger;
  readonly #courier: Courier;
  #stopped = false;
  #failure: Error | null = null;

  // Changes not yet handed to storage.
  #pendingPromise: PaxosBallot | null = null;
  #pendingAccepted = new Map<number, PaxosAcceptance>();
  #pendingTruncate: number | null = null;
  #writing: Promise<void> | null = null;

  private constructor(options: AcceptorOptions, log: AcceptorLog, promised: PaxosBallot) {
    this.id = options.id;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#log = log;
    this.#out = new AcceptorOutbox();
    this.#courier = new Courier(
      options.transport,
      () => this.#startWrite(),
      (err) => this.#fail(err),
    );
    this.#actor = createActor(options.machine ?? acceptorMachine, {
      input: {
        id: options.id,
        topology: options.topology,
        options: resolvePaxosOptions(options.paxos),
        log,
        out: this.#out,
        promised,
      },
    });
  }

  /** Recovers the promise and votes from storage and starts serving. */
  static async start(options: AcceptorOptions): Promise<Acceptor> {
    if (!options.topology.acceptors.includes(options.id)) {
      throw new QuorateError(
        ErrorCode.Config,
        `acceptor '${options.id}' is not among the acceptors (${options.topology.acceptors.join(",")})`,
      );
    }
    const state = await options.storage.load();
    const acceptor = new Acceptor(
      options,
      new AcceptorLog({ truncated: state.truncated, accepted: state.accepted }),
      state.promised,
    );
    acceptor.#actor.start();
    options.transport.listen((message) => acceptor.#receive(message));
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

  get failure(): Error | null {
    return this.#failure;
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

  /** Stops receiving and waits for the write in flight. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#halt();
    await this.#writing?.catch(() => undefined);
  }

  /** Halts at once, as a crash: the write in flight is left to the storage. */
  kill(): void {
    this.#halt();
  }

  #halt(): void {
    this.#stopped = true;
    this.#options.transport.listen(() => {});
    this.#courier.close();
    this.#actor.stop();
  }

  #receive(message: Inbound): void {
    if (this.#stopped) return;
    const event: AcceptorEvent = {
      type: "message",
      from: message.sender,
      message: { type: message.type, body: message.body } as PaxosMessage,
    };
    this.#actor.send(event);
    const taken = this.#out.take();
    for (const observation of taken.observations) this.#options.observe?.(observation);
    if (taken.promised !== null) this.#pendingPromise = taken.promised;
    for (const a of taken.accepted) this.#pendingAccepted.set(a.slot, a);
    if (taken.truncateThrough !== null) {
      this.#pendingTruncate = Math.max(this.#pendingTruncate ?? 0, taken.truncateThrough);
      for (const slot of this.#pendingAccepted.keys()) {
        if (slot <= taken.truncateThrough) this.#pendingAccepted.delete(slot);
      }
    }
    this.#courier.push(taken.messages);
    this.#courier.flush();
  }

  #startWrite(): Promise<void> | null {
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
    const writing = this.#options.storage.write(write).finally(() => {
      if (this.#writing === writing) this.#writing = null;
    });
    this.#writing = writing;
    return writing;
  }

  #fail(err: Error): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.#logger.error("acceptor storage failed; stopping", { member: this.id, error: err.message });
    this.#halt();
  }
}
