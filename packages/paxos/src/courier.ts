import { asError, type Headers, type OutboundMessage, type Transport } from "@quorate/core";
import { transmit } from "./host.js";

/**
 * Sends a role's messages, holding back those that depend on state not yet durable: the
 * Ready loop of every host. At most one write is in flight; changes made meanwhile accumulate
 * and go out in the next write (one fsync for all of them), and messages held back leave once
 * the write that covers the state they depend on is durable.
 */
export class Courier {
  /** The write in flight, if any. */
  #writing: Promise<void> | null = null;
  #held: OutboundMessage[] = [];
  #closed = false;

  constructor(
    private readonly transport: Transport,
    /** Starts writing every change accumulated so far; null when there is nothing to write. */
    private readonly startWrite: () => Promise<void> | null,
    private readonly onWriteFailed: (err: Error) => void,
    /** Called as each message leaves; returns the trace headers it carries. */
    private readonly sending: (message: OutboundMessage) => Headers | undefined,
  ) {}

  /** Queues messages: those needing no durability go out now. Call `flush()` after. */
  push(messages: readonly OutboundMessage[]): void {
    for (const message of messages) {
      if (message.afterPersist) this.#held.push(message);
      else this.#transmit(message);
    }
  }

  /** Starts the next write if none is in flight; with nothing to write, releases held messages. */
  flush(): void {
    if (this.#writing !== null || this.#closed) return;
    const held = this.#held;
    this.#held = [];
    const write = this.startWrite();
    if (write === null) {
      for (const message of held) this.#transmit(message);
      return;
    }
    this.#writing = write;
    write.then(
      () => {
        this.#writing = null;
        for (const message of held) this.#transmit(message);
        this.flush();
      },
      (err: unknown) => {
        this.#writing = null;
        this.#closed = true;
        this.onWriteFailed(asError(err));
      },
    );
  }

  /** Settles once the write in flight, if any, has succeeded or failed: a host stops after it. */
  async writeSettled(): Promise<void> {
    await this.#writing?.catch(() => undefined);
  }

  /** Stops sending; held messages are dropped, as a crashed process would drop them. */
  close(): void {
    this.#closed = true;
    this.#held = [];
  }

  #transmit(message: OutboundMessage): void {
    if (!this.#closed) transmit(this.transport, message, this.sending(message));
  }
}
