import { asError, type OutboundMessage } from "./host.js";
import { markTimeline } from "./timeline.js";
import type { Headers, Transport } from "./transport.js";

/**
 * Sends a message as the machine addressed it: to one member or role instance, or to the whole
 * group; `headers` carry trace context.
 */
export function transmit(transport: Transport, message: OutboundMessage, headers?: Headers): void {
  if (message.to === null) transport.broadcast(message.type, message.body, headers);
  else transport.send(message.to, message.type, message.body, headers);
}

/** One write a host hands to its storage. */
export interface DurableWrite {
  /** Settles once the write is durable (or fails). */
  readonly done: Promise<void>;
  /** Runs once the write is durable, after the messages held for it have left. */
  readonly durable?: () => void;
}

export interface DurablePipelineOptions {
  readonly transport: Transport;
  /** Starts writing every change accumulated so far; null when there is nothing to write. */
  readonly startWrite: () => DurableWrite | null;
  /** A write failed: the pipeline has closed, and the host must stop. */
  readonly writeFailed: (err: Error) => void;
  /** Called as each message leaves; returns the trace headers it carries. */
  readonly sending: (message: OutboundMessage) => Headers | undefined;
}

/**
 * The Ready loop every host runs (Raft's node and each Paxos role): durable before visible.
 * At most one write is in flight; changes made meanwhile accumulate and go out in the next
 * write (one fsync for all of them), so writes become durable in the order they were asked
 * for. A message that depends on state not yet durable (`afterPersist`) is held until the write
 * that covers that state is durable; every other message leaves at once.
 */
export class DurablePipeline {
  #writing: Promise<void> | null = null;
  #held: OutboundMessage[] = [];
  #closed = false;

  constructor(private readonly options: DurablePipelineOptions) {}

  /** True while no write is in flight. */
  get idle(): boolean {
    return this.#writing === null;
  }

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
    const write = this.options.startWrite();
    if (write === null) {
      for (const message of held) this.#transmit(message);
      return;
    }
    markTimeline(this.options.transport.self, "write.start");
    this.#writing = write.done.then(
      () => {
        this.#writing = null;
        if (this.#closed) return;
        markTimeline(this.options.transport.self, "write.durable");
        // Durable now: the messages that depended on this state may leave.
        for (const message of held) this.#transmit(message);
        write.durable?.();
        this.flush();
      },
      (err: unknown) => {
        this.#writing = null;
        this.#closed = true;
        this.options.writeFailed(asError(err));
      },
    );
  }

  /** Settles once the write in flight, if any, has succeeded or failed: a host stops after it. */
  async writeSettled(): Promise<void> {
    await this.#writing;
  }

  /** Stops sending and writing; held messages are dropped, as a crashed process would drop them. */
  close(): void {
    this.#closed = true;
    this.#held = [];
  }

  #transmit(message: OutboundMessage): void {
    if (!this.#closed) transmit(this.options.transport, message, this.options.sending(message));
  }
}
