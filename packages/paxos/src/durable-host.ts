import { asError, type Headers, type Logger, type NodeId, type OutboundMessage, type Transport } from "@quorate/core";
import { Courier } from "./courier.js";

/**
 * What the acceptor and proposer hosts share: messages that wait for their own writes (a
 * Courier sends them), and the three ways they stop: on request once the write in flight is
 * done, at once as a crash, or by themselves when storage fails or their machine throws.
 */
export abstract class DurableRoleHost {
  readonly id: NodeId;
  protected readonly courier: Courier;
  #stopped = false;
  #failure: Error | null = null;

  protected constructor(
    id: NodeId,
    private readonly transport: Transport,
    private readonly logger: Logger,
    /** The role, as the failure log names it. */
    private readonly role: "acceptor" | "proposer",
  ) {
    this.id = id;
    this.courier = new Courier(
      transport,
      () => this.startWrite(),
      (err) => this.#fail("storage", err),
      (message) => this.sending(message),
    );
  }

  /** Why the host stopped by itself (its storage failed, or its machine threw), if it did. */
  get failure(): Error | null {
    return this.#failure;
  }

  /** Stops receiving and waits for the write in flight. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#halt();
    await this.courier.writeSettled();
  }

  /** Halts at once, as a crash: the write in flight is left to the storage. */
  kill(): void {
    this.#halt();
  }

  /**
   * The machine threw (a failed invariant): the host stops at once rather than carry on after
   * half a step, and sends nothing that step queued.
   */
  protected machineFailed(err: unknown): void {
    this.#fail("machine", asError(err));
  }

  protected get stopped(): boolean {
    return this.#stopped;
  }

  /** Starts writing every change accumulated so far; null when there is nothing to write. */
  protected abstract startWrite(): Promise<void> | null;

  /** Stops what the host runs besides its transport and courier: its machine, its ticker, its telemetry. */
  protected abstract halted(): void;

  /** A message leaves: its trace headers, if it carries any. */
  protected abstract sending(message: OutboundMessage): Headers | undefined;

  #halt(): void {
    this.#stopped = true;
    this.transport.listen(() => {});
    this.courier.close();
    this.halted();
  }

  #fail(what: "storage" | "machine", err: Error): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.logger.error(`${this.role} ${what} failed; stopping`, { member: this.id, error: err.message });
    this.#halt();
  }
}
