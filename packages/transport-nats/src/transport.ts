import { headers as createMsgHdrs, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import {
  assertToken,
  broadcastSubject,
  broadcastWildcard,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_PREFIX,
  directWildcard,
  ErrorCode,
  encodeFor,
  FrameReceiver,
  type FrameRoute,
  frameRoute,
  type Headers,
  type InboundHandler,
  type Logger,
  type MessageMap,
  type MessageType,
  type NodeId,
  QuorateError,
  type SubjectScope,
  silentLogger,
  subjectSender,
  type Transport,
  type TransportStats,
} from "@quorate/core";
import { markTimeline, RateLimiter, timelineActive } from "@quorate/core/internal";

export interface NatsTransportOptions {
  /** A connection from `connectNats` (or any @nats-io 3.x connection). */
  readonly nc: NatsConnection;
  readonly cluster: string;
  readonly group: string;
  readonly self: NodeId;
  /** First subject token(s); default "quorate". */
  readonly prefix?: string;
  readonly logger?: Logger;
  /** Inbound frames larger than this are dropped as `too_large`; larger sends are refused. Default 1 MiB. */
  readonly maxFrameBytes?: number;
  /** When true, `close()` also drains and closes `nc`. Default false. */
  readonly ownsConnection?: boolean;
  /** Upper bound on the flush/drain in `close()`, so closing never hangs on a dead server. Default 5 s. */
  readonly closeTimeoutMs?: number;
  /**
   * The other transports of this process (the Paxos roles of one member): frames sent to one of
   * them skip the server. Broadcasts still go through it.
   */
  readonly colocated?: ColocatedTransports;
}

/** The registry inside a ColocatedTransports, for transports only: it has no public surface. */
let colocatedMembers: (colocated: ColocatedTransports) => Map<string, NatsTransport>;

/**
 * Transports in one process that hand each other their directed frames without the NATS server
 * (one hop and two socket writes less, as for a member's learner handing requests to its own
 * proposer). A frame is encoded, size-checked and decoded with validation exactly as on the
 * wire, and delivered in a later microtask, never inside the sender's call, in send order.
 */
export class ColocatedTransports {
  /** Registered transports by (prefix, cluster, group, member); a transport leaves as it closes. */
  readonly #members = new Map<string, NatsTransport>();

  static {
    colocatedMembers = (colocated) => colocated.#members;
  }
}

function colocatedKey(scope: SubjectScope, member: NodeId): string {
  return `${scope.prefix} ${scope.cluster} ${scope.group} ${member}`;
}

export interface NatsTransportStats extends TransportStats {
  /** Sends that could not be handed to the client (frame too large, connection closed, bad header). */
  sendErrors: number;
}

const PREFIX = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64})*$/;

/** Validates the options and subscribes; the subscriptions are live once `flush()` resolves. */
export function createNatsTransport(options: NatsTransportOptions): NatsTransport {
  return new NatsTransport(options);
}

/**
 * Consensus frames over core NATS. Every member subscribes to its group's broadcast subjects and
 * to the subjects directed at it; the subject's last token names the sender, so the shared
 * `FrameReceiver` can reject a frame whose envelope claims someone else.
 */
export class NatsTransport implements Transport {
  readonly self: NodeId;
  readonly cluster: string;
  readonly group: string;
  /** Live counters: one object, updated in place. */
  readonly stats: NatsTransportStats;

  readonly #nc: NatsConnection;
  readonly #scope: SubjectScope & { self: NodeId };
  readonly #receiver: FrameReceiver;
  readonly #logger: Logger;
  readonly #errorLog: RateLimiter;
  readonly #maxFrameBytes: number;
  readonly #ownsConnection: boolean;
  readonly #closeTimeoutMs: number;
  readonly #broadcastRoute: FrameRoute;
  readonly #directRoutes = new Map<NodeId, FrameRoute>();
  /** Inbound subjects: broadcasts start with this, directed frames do not. */
  readonly #broadcastStem: string;
  readonly #subscriptions: { unsubscribe(): void }[] = [];
  readonly #colocated: ColocatedTransports | undefined;
  /** Inbound routes of frames colocated senders hand over, by sender. */
  readonly #colocatedRoutes = new Map<NodeId, FrameRoute>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: NatsTransportOptions) {
    assertToken("cluster", options.cluster);
    assertToken("group", options.group);
    assertToken("member id", options.self);
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (!PREFIX.test(prefix)) {
      throw new QuorateError(
        ErrorCode.Config,
        `subject prefix must be dot-separated tokens of letters, digits, '_' or '-' (got ${JSON.stringify(prefix)})`,
      );
    }
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes <= 0) {
      throw new QuorateError(ErrorCode.Config, `maxFrameBytes must be a positive integer (got ${maxFrameBytes})`);
    }
    this.self = options.self;
    this.cluster = options.cluster;
    this.group = options.group;
    this.#nc = options.nc;
    this.#scope = { prefix, cluster: options.cluster, group: options.group, self: options.self };
    this.#logger = options.logger ?? silentLogger;
    this.#maxFrameBytes = maxFrameBytes;
    this.#ownsConnection = options.ownsConnection ?? false;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
    this.#errorLog = new RateLimiter(10, 10_000, Date.now);
    this.#receiver = new FrameReceiver(this.#scope, this.#logger, maxFrameBytes, Date.now);
    // One object for all counters (the receiver counts inbound ones), so `stats` is always live.
    this.stats = Object.assign(this.#receiver.stats, { sendErrors: 0 });
    this.#broadcastRoute = frameRoute(this.#scope, this.self, null);
    this.#broadcastStem = broadcastSubject(this.#scope, "");
    this.#colocated = options.colocated;

    try {
      for (const subject of [broadcastWildcard(this.#scope), directWildcard(this.#scope, this.self)]) {
        this.#subscriptions.push(this.#nc.subscribe(subject, { callback: this.#onMessage }));
      }
    } catch (err) {
      for (const sub of this.#subscriptions) sub.unsubscribe();
      throw new QuorateError(ErrorCode.Closed, "cannot subscribe: the NATS connection is closed or draining", {
        cause: err,
      });
    }
    if (this.#colocated !== undefined) {
      const members = colocatedMembers(this.#colocated);
      const key = colocatedKey(this.#scope, this.self);
      if (members.has(key)) {
        for (const sub of this.#subscriptions) sub.unsubscribe();
        throw new QuorateError(
          ErrorCode.Config,
          `a transport for ${options.self} is already colocated in this process`,
        );
      }
      members.set(key, this);
    }
  }

  broadcast<T extends MessageType>(type: T, body: MessageMap[T], headers?: Headers): void {
    this.#publish(this.#broadcastRoute.subject, type, body, headers);
  }

  send<T extends MessageType>(to: NodeId, type: T, body: MessageMap[T], headers?: Headers): void {
    const route = this.routeTo(to);
    const local =
      this.#colocated === undefined ? undefined : colocatedMembers(this.#colocated).get(colocatedKey(this.#scope, to));
    if (local === undefined) this.#publish(route.subject, type, body, headers);
    else this.#handOver(local, type, body, headers);
  }

  routeTo(to: NodeId | null): FrameRoute {
    if (to === null) return this.#broadcastRoute;
    let route = this.#directRoutes.get(to);
    if (route === undefined) {
      // An id with '.', '*' or '>' would silently address other subjects.
      assertToken("member id", to);
      route = frameRoute(this.#scope, this.self, to);
      this.#directRoutes.set(to, route);
    }
    return route;
  }

  serverAddress(): string | undefined {
    return this.#nc.isClosed() ? undefined : this.#nc.getServer();
  }

  listen(handler: InboundHandler): void {
    this.#receiver.listen(handler);
  }

  /** Resolves once the server has processed this transport's subscriptions and every send so far. */
  async flush(): Promise<void> {
    if (!this.#nc.isClosed()) await this.#nc.flush();
  }

  /**
   * Stops delivery at once (frames already in the socket are discarded; consensus retransmits),
   * unsubscribes, flushes what was sent, and drains the connection if this transport owns it.
   * Idempotent; bounded by `closeTimeoutMs`.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    if (this.#colocated !== undefined) {
      const members = colocatedMembers(this.#colocated);
      const key = colocatedKey(this.#scope, this.self);
      if (members.get(key) === this) members.delete(key);
    }
    const nc = this.#nc;
    for (const sub of this.#subscriptions) {
      try {
        sub.unsubscribe();
      } catch {
        // Already gone with its connection.
      }
    }
    if (nc.isClosed()) return;
    try {
      await withTimeout(this.#ownsConnection ? nc.drain() : nc.flush(), this.#closeTimeoutMs);
    } catch (err) {
      this.#logger.warn("NATS flush on close did not complete", { error: String(err), self: this.self });
      if (this.#ownsConnection && !nc.isClosed()) await nc.close();
    }
  }

  /** A frame for a colocated transport: encoded and checked as for the wire, received in a later microtask. */
  #handOver<T extends MessageType>(
    to: NatsTransport,
    type: T,
    body: MessageMap[T],
    headers: Headers | undefined,
  ): void {
    const frame = this.#encode(type, body);
    if (frame === null) return;
    this.stats.sent++;
    if (timelineActive()) markTimeline(this.self, `send ${type}`);
    const sender = this.self;
    queueMicrotask(() => to.#receiveColocated(frame, sender, headers));
  }

  #receiveColocated(frame: Uint8Array, sender: NodeId, headers: Headers | undefined): void {
    if (this.#closed) return;
    let route = this.#colocatedRoutes.get(sender);
    if (route === undefined) {
      route = frameRoute(this.#scope, sender, this.self);
      this.#colocatedRoutes.set(sender, route);
    }
    this.#receiver.receive(frame, sender, headers, route);
  }

  /** The frame, or null (counted and logged) when there is none to send. */
  #encode<T extends MessageType>(type: T, body: MessageMap[T]): Uint8Array | null {
    // Sends after close are late timers of a stopping member: nothing to report.
    if (this.#closed) return null;
    const frame = encodeFor(this.#scope, type, body);
    if (frame.length > this.#maxFrameBytes) {
      this.#sendFailed(type, `frame of ${frame.length} bytes exceeds maxFrameBytes ${this.#maxFrameBytes}`);
      return null;
    }
    return frame;
  }

  #publish<T extends MessageType>(subject: string, type: T, body: MessageMap[T], headers: Headers | undefined): void {
    const frame = this.#encode(type, body);
    if (frame === null) return;
    try {
      // Headers cost about a third of throughput, so MsgHdrs exist only when asked for.
      if (headers === undefined) this.#nc.publish(subject, frame);
      else this.#nc.publish(subject, frame, toMsgHdrs(headers));
      this.stats.sent++;
      if (timelineActive()) markTimeline(this.self, `send ${type}`);
    } catch (err) {
      this.#sendFailed(type, err instanceof Error ? err.message : String(err));
    }
  }

  #sendFailed(type: MessageType, detail: string): void {
    this.stats.sendErrors++;
    const suppressed = this.#errorLog.take();
    if (suppressed !== null) this.#logger.warn("send failed", { type, detail, suppressed, self: this.self });
  }

  // An arrow property: the client calls it unbound, in its socket-read turn. It must never throw,
  // or the client's parser would stop reading this connection. The receiver already contains
  // handler failures; this catch is the last line for anything else (a host's onHandlerError).
  readonly #onMessage = (err: Error | null, msg: Msg): void => {
    if (err !== null) {
      this.#logger.error("NATS subscription ended", { error: err.message, self: this.self });
      return;
    }
    if (this.#closed) return;
    try {
      const hdrs = msg.headers;
      const sender = subjectSender(msg.subject);
      const template = msg.subject.startsWith(this.#broadcastStem)
        ? this.#broadcastRoute.template
        : this.routeTo(this.self).template;
      this.#receiver.receive(msg.data, sender, hdrs === undefined ? undefined : fromMsgHdrs(hdrs), {
        subject: msg.subject,
        template,
      });
    } catch (error) {
      this.stats.handlerErrors++;
      const suppressed = this.#errorLog.take();
      if (suppressed !== null) {
        this.#logger.error("inbound frame processing threw", {
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          suppressed,
          self: this.self,
        });
      }
    }
  };
}

/** NATS publish/request options carrying `headers`, or undefined when there are none. */
export function toMsgHdrs(headers: Headers): { headers: MsgHdrs } | undefined {
  let hdrs: MsgHdrs | undefined;
  for (const key in headers) {
    hdrs ??= createMsgHdrs();
    hdrs.set(key, headers[key] as string);
  }
  return hdrs === undefined ? undefined : { headers: hdrs };
}

/** Received NATS headers as a plain record, or undefined when there are none. */
export function fromMsgHdrs(hdrs: MsgHdrs): Headers | undefined {
  const keys = hdrs.keys();
  if (keys.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const key of keys) out[key] = hdrs.get(key);
  return out;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
