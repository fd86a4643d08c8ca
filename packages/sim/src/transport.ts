import type {
  Headers,
  Inbound,
  InboundHandler,
  MessageMap,
  MessageType,
  NodeId,
  Transport,
  TransportStats,
} from "@quorate/core";

/** Messages a paused member's socket buffers; later ones are lost, as a full buffer drops them. */
const MAX_HELD_MESSAGES = 10_000;

/**
 * A member's transport with every delivery reported before the member handles it, and every
 * exception the member throws while handling it reported too: the transport's own receive path
 * counts and logs handler failures and carries on, which would hide them from the simulation.
 * `onSend`, when given, sees every message before it leaves, with its destination (null: to all).
 */
export class ObservedTransport implements Transport {
  /** Messages that arrived while the member was paused, or null while it runs. */
  #held: Inbound[] | null = null;
  #handler: InboundHandler = () => {};

  constructor(
    private readonly inner: Transport,
    private readonly onDeliver: (message: Inbound) => void,
    private readonly onHandlerError: (err: unknown) => void,
    private readonly onSend: (type: MessageType, body: MessageMap[MessageType], to: NodeId | null) => void = () => {},
  ) {}

  get self(): NodeId {
    return this.inner.self;
  }

  get cluster(): string {
    return this.inner.cluster;
  }

  get group(): string {
    return this.inner.group;
  }

  get stats(): TransportStats {
    return this.inner.stats;
  }

  broadcast<T extends MessageType>(type: T, body: MessageMap[T], headers?: Headers): void {
    this.onSend(type, body, null);
    this.inner.broadcast(type, body, headers);
  }

  send<T extends MessageType>(to: NodeId, type: T, body: MessageMap[T], headers?: Headers): void {
    this.onSend(type, body, to);
    this.inner.send(to, type, body, headers);
  }

  listen(handler: InboundHandler): void {
    this.#handler = handler;
    this.inner.listen((message) => {
      if (this.#held === null) {
        this.#handle(message);
      } else if (this.#held.length < MAX_HELD_MESSAGES) {
        this.#held.push(message);
      }
    });
  }

  /** The member is paused: messages wait in its socket buffer (up to a limit; then they are lost). */
  hold(): void {
    this.#held ??= [];
  }

  /** The member runs again: hands back the messages that waited, for the simulator to deliver one step each. */
  release(): Inbound[] {
    const held = this.#held ?? [];
    this.#held = null;
    return held;
  }

  /** Delivers one message to the member's handler. */
  deliver(message: Inbound): void {
    this.#handle(message);
  }

  #handle(message: Inbound): void {
    this.onDeliver(message);
    try {
      this.#handler(message);
    } catch (err) {
      this.onHandlerError(err);
      throw err;
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
