import {
  DEFAULT_MAX_FRAME_BYTES,
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
  silentLogger,
  type Transport,
  type TransportStats,
} from "@quorate/core";
import { invariant, Prng } from "@quorate/core/internal";
import { MinHeap } from "./heap.js";

/** Probabilistic faults applied to every frame in flight. */
export interface NetworkFaults {
  /** Probability that a frame is lost. */
  drop: number;
  /** Probability that a frame is delivered twice. */
  duplicate: number;
  /** Delivery delay range in virtual milliseconds; a spread reorders frames. */
  minDelayMs: number;
  maxDelayMs: number;
}

export const NO_FAULTS: NetworkFaults = { drop: 0, duplicate: 0, minDelayMs: 0, maxDelayMs: 0 };

interface InFlight {
  readonly at: number;
  readonly seq: number;
  readonly from: NodeId;
  readonly to: NodeId;
  /** Published to every member, as on a NATS broadcast subject. */
  readonly broadcast: boolean;
  readonly data: Uint8Array;
  readonly headers: Headers | undefined;
}

export interface MemoryNetworkOptions {
  /** Seed for fault decisions; everything the network does derives from it. */
  seed?: number;
  /** Virtual time source; by default time stands still (auto delivery ignores delays anyway). */
  now?: () => number;
  /**
   * "auto" delivers in a later macrotask without delay (tests, demos);
   * "manual" waits for `deliverDue()` (the simulator owns time).
   */
  delivery?: "auto" | "manual";
  logger?: Logger;
  maxFrameBytes?: number;
}

/**
 * An in-process network for members of consensus groups. Frames are encoded and decoded
 * exactly as on NATS, so aliasing and validation bugs cannot hide here.
 */
export class MemoryNetwork {
  readonly #members = new Map<string, MemoryTransport>();
  readonly #queue = new MinHeap<InFlight>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
  /** Directed links that lose everything: "from->to". */
  readonly #blocked = new Set<string>();
  readonly #prng: Prng;
  readonly #now: () => number;
  readonly #delivery: "auto" | "manual";
  #faults: NetworkFaults = NO_FAULTS;
  #seq = 0;
  #scheduled = false;
  /** Counters for the simulator's summary. */
  readonly counters = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, blocked: 0 };

  constructor(private readonly options: MemoryNetworkOptions = {}) {
    this.#prng = new Prng(options.seed ?? 1);
    this.#now = options.now ?? (() => 0);
    this.#delivery = options.delivery ?? "auto";
  }

  /** Attaches a member. One transport per (cluster, group, member). */
  connect(scope: { cluster: string; group: string; self: NodeId }): MemoryTransport {
    const key = memberKey(scope.cluster, scope.group, scope.self);
    if (this.#members.has(key)) throw new Error(`member ${key} is already connected`);
    const transport = new MemoryTransport(this, scope, this.options.logger ?? silentLogger, this.#now, {
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    });
    this.#members.set(key, transport);
    return transport;
  }

  setFaults(faults: Partial<NetworkFaults>): void {
    this.#faults = { ...this.#faults, ...faults };
  }

  get faults(): NetworkFaults {
    return this.#faults;
  }

  /** Cuts the link from `from` to `to` only (asymmetric partition). */
  block(from: NodeId, to: NodeId): void {
    this.#blocked.add(`${from}->${to}`);
  }

  /** Splits members into sides that cannot reach each other in either direction. */
  partition(...sides: NodeId[][]): void {
    for (const a of sides) for (const b of sides) if (a !== b) for (const x of a) for (const y of b) this.block(x, y);
  }

  /** Isolates one member from everyone, both directions. */
  isolate(member: NodeId, others: readonly NodeId[]): void {
    for (const other of others) {
      if (other === member) continue;
      this.block(member, other);
      this.block(other, member);
    }
  }

  heal(): void {
    this.#blocked.clear();
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.#blocked.has(`${from}->${to}`);
  }

  /** Frames still in flight. */
  get inFlight(): number {
    return this.#queue.size;
  }

  /** Delivery time of the next frame, if any. */
  nextDeliveryAt(): number | undefined {
    return this.#queue.peek()?.at;
  }

  /** Delivers every frame due at or before the current time, in (time, send order). */
  deliverDue(): number {
    const now = this.#now();
    let delivered = 0;
    for (let next = this.#queue.peek(); next !== undefined && next.at <= now; next = this.#queue.peek()) {
      this.#queue.pop();
      delivered += this.#deliver(next);
    }
    return delivered;
  }

  /** Drops everything in flight (used when the simulator crashes the whole network). */
  clearInFlight(): void {
    this.#queue.clear();
  }

  /** Called by transports. Applies faults and queues the frame for each recipient. */
  enqueue(
    scope: { cluster: string; group: string; self: NodeId },
    data: Uint8Array,
    to: NodeId | null,
    headers: Headers | undefined,
  ): void {
    this.counters.sent++;
    const recipients: NodeId[] = [];
    if (to === null) {
      const prefix = `${scope.cluster}/${scope.group}/`;
      for (const [key, member] of this.#members)
        if (key.startsWith(prefix) && member.self !== scope.self) recipients.push(member.self);
    } else {
      recipients.push(to);
    }
    const faults = this.#faults;
    const broadcast = to === null;
    for (const recipient of recipients) {
      if (this.#blocked.has(`${scope.self}->${recipient}`)) {
        this.counters.blocked++;
        continue;
      }
      if (faults.drop > 0 && this.#prng.chance(faults.drop)) {
        this.counters.dropped++;
        continue;
      }
      const copies = faults.duplicate > 0 && this.#prng.chance(faults.duplicate) ? 2 : 1;
      if (copies === 2) this.counters.duplicated++;
      for (let c = 0; c < copies; c++) {
        const delay = faults.maxDelayMs > 0 ? this.#prng.int(faults.minDelayMs, faults.maxDelayMs) : faults.minDelayMs;
        this.#queue.push({
          at: this.#now() + delay,
          seq: this.#seq++,
          from: scope.self,
          to: recipient,
          broadcast,
          data,
          headers,
        });
      }
    }
    this.#scheduleAuto();
  }

  detach(transport: MemoryTransport): void {
    this.#members.delete(memberKey(transport.cluster, transport.group, transport.self));
  }

  /** Raw injection, as a plain NATS client publishing on a member's subject would do. */
  injectRaw(cluster: string, group: string, subjectSender: NodeId, data: Uint8Array, to?: NodeId): void {
    const scope = { cluster, group, self: subjectSender };
    this.enqueue(scope, data, to ?? null, undefined);
  }

  #deliver(frame: InFlight): number {
    // Links cut after sending still lose what was in flight, as a real partition does.
    if (this.#blocked.has(`${frame.from}->${frame.to}`)) {
      this.counters.blocked++;
      return 0;
    }
    for (const member of this.#members.values()) {
      if (member.self === frame.to) {
        member.receive(frame.data, frame.from, frame.headers, frame.broadcast ? null : frame.to);
        this.counters.delivered++;
        return 1;
      }
    }
    return 0;
  }

  #scheduleAuto(): void {
    if (this.#delivery !== "auto" || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      // Auto mode ignores delays: it models a fast local network.
      while (this.#queue.size > 0) {
        const frame = this.#queue.pop() as InFlight;
        this.#deliver(frame);
      }
    });
  }
}

function memberKey(cluster: string, group: string, self: string): string {
  return `${cluster}/${group}/${self}`;
}

/** Senders whose inbound routes a transport keeps built; members of a group are far fewer. */
const MAX_CACHED_SENDERS = 1_024;

export class MemoryTransport implements Transport {
  readonly cluster: string;
  readonly group: string;
  readonly self: NodeId;
  readonly #receiver: FrameReceiver;
  /**
   * Routes by the other end, built once each (a frame is delivered for every send, so building
   * its subject per frame would cost two string concatenations on every message): outbound by
   * target ("" for a broadcast), inbound by sender (directed ones always target this member).
   */
  readonly #outboundRoutes = new Map<NodeId, FrameRoute>();
  readonly #inboundRoutes = new Map<NodeId, { readonly broadcast: FrameRoute; readonly direct: FrameRoute }>();
  #closed = false;

  constructor(
    private readonly network: MemoryNetwork,
    scope: { cluster: string; group: string; self: NodeId },
    logger: Logger,
    now: () => number,
    options: { maxFrameBytes: number },
  ) {
    this.cluster = scope.cluster;
    this.group = scope.group;
    this.self = scope.self;
    this.#receiver = new FrameReceiver(scope, logger, options.maxFrameBytes, now);
  }

  get stats(): TransportStats {
    return this.#receiver.stats;
  }

  broadcast<T extends MessageType>(type: T, body: MessageMap[T], headers?: Headers): void {
    if (this.#closed) return;
    this.#receiver.stats.sent++;
    this.network.enqueue(this, encodeFor(this, type, body), null, headers);
  }

  send<T extends MessageType>(to: NodeId, type: T, body: MessageMap[T], headers?: Headers): void {
    if (this.#closed) return;
    this.#receiver.stats.sent++;
    this.network.enqueue(this, encodeFor(this, type, body), to, headers);
  }

  listen(handler: InboundHandler): void {
    this.#receiver.listen(handler);
  }

  /** The subject the frame would take on NATS with the default prefix; there is no server. */
  routeTo(to: NodeId | null): FrameRoute {
    const key = to ?? "";
    let route = this.#outboundRoutes.get(key);
    if (route === undefined) {
      route = frameRoute(this, this.self, to);
      this.#outboundRoutes.set(key, route);
    }
    return route;
  }

  /**
   * Called by the network; the subject sender is whoever the frame was published as, and
   * `to` the member it was directed to (null: a broadcast).
   */
  receive(data: Uint8Array, subjectSender: NodeId, headers: Headers | undefined, to: NodeId | null): void {
    if (this.#closed) return;
    let routes = this.#inboundRoutes.get(subjectSender);
    if (routes === undefined) {
      routes = {
        broadcast: frameRoute(this, subjectSender, null),
        direct: frameRoute(this, subjectSender, this.self),
      };
      // Injected frames (the fuzzer's) may name any sender: only so many are remembered.
      if (this.#inboundRoutes.size < MAX_CACHED_SENDERS) this.#inboundRoutes.set(subjectSender, routes);
    }
    invariant(to === null || to === this.self, `a frame for ${to} was delivered to ${this.self}`);
    this.#receiver.receive(data, subjectSender, headers, to === null ? routes.broadcast : routes.direct);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.network.detach(this);
  }
}
