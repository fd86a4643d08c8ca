import { ErrorCode, QuorateError } from "./errors.js";
import type { NodeId } from "./ids.js";
import type { Logger } from "./log.js";

/** How a host stops on request: gracefully ("stopped"), or at once as a crash ("was killed"). */
export type StopKind = "stopped" | "was killed";

/**
 * The start/stop/fail lifecycle every host shares (Raft's node, each Paxos role). A host serves
 * from start until it stops, in one of three ways: on request, as a crash, or by itself when its
 * storage, its machine or its state machine fails. Each runs the host's `halt` exactly once,
 * with the error every caller still waiting is failed with.
 */
export class HostLifecycle {
  #stopped = false;
  #failure: Error | null = null;

  constructor(
    /** How the host names itself in errors and logs: "raft node", "learner", "acceptor". */
    private readonly role: string,
    private readonly id: NodeId,
    private readonly logger: Logger,
    /** Stops what the host runs (ticker, transport listener, pipeline, machine) and fails its waiters with `reason`. */
    private readonly halt: (reason: QuorateError) => void,
  ) {}

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Why the host stopped by itself, if it did. */
  get failure(): Error | null {
    return this.#failure;
  }

  /** Why the host refuses new requests, or null while it serves. */
  closedError(): QuorateError | null {
    if (this.#failure !== null) {
      return new QuorateError(ErrorCode.Closed, `${this.#name} failed: ${this.#failure.message}`, {
        cause: this.#failure,
      });
    }
    return this.#stopped ? new QuorateError(ErrorCode.Closed, `${this.#name} stopped`) : null;
  }

  /**
   * One turn of the host's loop: `send` hands an event to its machine, `drain` carries out what
   * the machine asked for. Nothing runs once the host stopped, and nothing drains after a step
   * that stopped it (a rule threw): no part of a half step is sent or applied.
   */
  step(send: () => void, drain: () => void): void {
    if (this.#stopped) return;
    send();
    if (this.#stopped) return;
    drain();
  }

  /** Stops on request; false when the host had already stopped. */
  stop(kind: StopKind): boolean {
    if (this.#stopped) return false;
    this.#stopped = true;
    this.halt(new QuorateError(ErrorCode.Closed, `${this.#name} ${kind}`));
    return true;
  }

  /**
   * Stops by itself, loudly: `what` failed (the host's role by default, or e.g. "acceptor
   * storage"). Only the first failure counts; one after a stop is recorded but halts nothing.
   */
  fail(err: Error, what: string = this.role): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.logger.error(`${what} failed; stopping`, { member: this.id, error: err.message });
    if (this.#stopped) return;
    this.#stopped = true;
    this.halt(this.closedError() as QuorateError);
  }

  get #name(): string {
    return `${this.role} ${this.id}`;
  }
}
