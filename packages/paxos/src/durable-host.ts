import type { Headers, Logger, NodeId, Transport } from "@quorate/core";
import {
  asError,
  DurablePipeline,
  type DurableWrite,
  HostLifecycle,
  type OutboundMessage,
} from "@quorate/core/internal";

/**
 * What the acceptor and proposer hosts share: messages that wait for their own writes (the
 * durable pipeline holds them), and the three ways they stop: on request once the write in
 * flight is done, at once as a crash, or by themselves when storage fails or their machine throws.
 */
export abstract class DurableRoleHost {
  readonly id: NodeId;
  protected readonly pipeline: DurablePipeline;
  readonly #lifecycle: HostLifecycle;

  protected constructor(
    id: NodeId,
    private readonly transport: Transport,
    logger: Logger,
    /** The role, as the failure log names it. */
    private readonly role: "acceptor" | "proposer",
  ) {
    this.id = id;
    this.#lifecycle = new HostLifecycle(role, id, logger, () => this.#halt());
    this.pipeline = new DurablePipeline({
      transport,
      startWrite: () => {
        const done = this.startWrite();
        return done === null ? null : { done };
      },
      writeFailed: (err) => this.#lifecycle.fail(err, `${this.role} storage`),
      sending: (message) => this.sending(message),
    });
  }

  /** Why the host stopped by itself (its storage failed, or its machine threw), if it did. */
  get failure(): Error | null {
    return this.#lifecycle.failure;
  }

  /** Stops receiving and waits for the write in flight. */
  async stop(): Promise<void> {
    if (!this.#lifecycle.stop("stopped")) return;
    await this.pipeline.writeSettled();
  }

  /** Halts at once, as a crash: the write in flight is left to the storage. */
  kill(): void {
    this.#lifecycle.stop("was killed");
  }

  /**
   * The machine threw (a failed invariant): the host stops at once rather than carry on after
   * half a step, and sends nothing that step queued.
   */
  protected machineFailed(err: unknown): void {
    this.#lifecycle.fail(asError(err), `${this.role} machine`);
  }

  protected get stopped(): boolean {
    return this.#lifecycle.stopped;
  }

  /** One turn of the host's loop (HostLifecycle.step). */
  protected step(send: () => void, drain: () => void): void {
    this.#lifecycle.step(send, drain);
  }

  /** Starts writing every change accumulated so far; null when there is nothing to write. */
  protected abstract startWrite(): DurableWrite["done"] | null;

  /** Stops what the host runs besides its transport and pipeline: its machine, its ticker, its telemetry. */
  protected abstract halted(): void;

  /** A message leaves: its trace headers, if it carries any. */
  protected abstract sending(message: OutboundMessage): Headers | undefined;

  #halt(): void {
    this.transport.listen(() => {});
    this.pipeline.close();
    this.halted();
  }
}
