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

/**
 * A member's transport with every delivery reported before the member handles it, and every
 * exception the member throws while handling it reported too: the transport's own receive path
 * counts and logs handler failures and carries on, which would hide them from the simulation.
 * `onSend`, when given, sees every message before it leaves.
 */
export class ObservedTransport implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly onDeliver: (message: Inbound) => void,
    private readonly onHandlerError: (err: unknown) => void,
    private readonly onSend: (type: MessageType, body: MessageMap[MessageType]) => void = () => {},
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
    this.onSend(type, body);
    this.inner.broadcast(type, body, headers);
  }

  send<T extends MessageType>(to: NodeId, type: T, body: MessageMap[T], headers?: Headers): void {
    this.onSend(type, body);
    this.inner.send(to, type, body, headers);
  }

  listen(handler: InboundHandler): void {
    this.inner.listen((message) => {
      this.onDeliver(message);
      try {
        handler(message);
      } catch (err) {
        this.onHandlerError(err);
        throw err;
      }
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
