import type {
  Msg,
  MsgHdrs,
  NatsConnection,
  Payload,
  PublishOptions,
  ReviverFn,
  Subscription,
  SubscriptionOptions,
} from "@nats-io/transport-node";
import { SERVICE_ERROR_HEADER } from "@quorate/core";

/** An endpoint as `$SRV.INFO` describes it (NATS micro v1). */
export interface EndpointInfo {
  name: string;
  subject: string;
  /** Absent for endpoints every instance answers (no queue group). */
  queue_group?: string;
  metadata?: Record<string, string>;
}

/** An endpoint as `$SRV.STATS` describes it: its info plus request counters (times in nanoseconds). */
export interface EndpointStats extends EndpointInfo {
  num_requests: number;
  num_errors: number;
  last_error: string;
  processing_time: number;
  average_processing_time: number;
  data?: unknown;
}

/**
 * The counters of one request/reply endpoint: requests received, replies that were errors (those
 * with a `Nats-Service-Error` header, as in NATS micro; its text becomes `last_error`), and
 * the time from receiving a request to sending its reply. Services answer asynchronously (a
 * KV write waits for a consensus round), so the time is measured up to `respond`, not to the
 * return of the subscription callback.
 */
export class EndpointCounters {
  readonly info: EndpointInfo;
  #requests = 0;
  #errors = 0;
  #lastError = "";
  #processingNs = 0;

  constructor(info: EndpointInfo) {
    this.info = info;
  }

  /** Counts a request now; the returned function records its reply. */
  received(): (headers: MsgHdrs | undefined) => void {
    this.#requests++;
    const started = process.hrtime.bigint();
    let answered = false;
    return (headers) => {
      if (answered) return;
      answered = true;
      this.#processingNs += Number(process.hrtime.bigint() - started);
      const error = headers?.get(SERVICE_ERROR_HEADER) ?? "";
      if (error !== "") {
        this.#errors++;
        this.#lastError = error;
      }
    };
  }

  stats(data?: unknown): EndpointStats {
    return {
      ...this.info,
      num_requests: this.#requests,
      num_errors: this.#errors,
      last_error: this.#lastError,
      processing_time: this.#processingNs,
      average_processing_time: this.#requests === 0 ? 0 : Math.round(this.#processingNs / this.#requests),
      ...(data === undefined ? {} : { data }),
    };
  }
}

/** A received message whose reply is reported to its endpoint's counters. */
class CountedMsg implements Msg {
  constructor(
    private readonly inner: Msg,
    private readonly replied: (headers: MsgHdrs | undefined) => void,
  ) {}
  get subject(): string {
    return this.inner.subject;
  }
  get sid(): number {
    return this.inner.sid;
  }
  get reply(): string | undefined {
    return this.inner.reply;
  }
  get data(): Uint8Array {
    return this.inner.data;
  }
  get headers(): MsgHdrs | undefined {
    return this.inner.headers;
  }
  respond(payload?: Payload, opts?: PublishOptions): boolean {
    this.replied(opts?.headers);
    return this.inner.respond(payload, opts);
  }
  json<T>(reviver?: ReviverFn): T {
    return this.inner.json<T>(reviver);
  }
  string(): string {
    return this.inner.string();
  }
}

/**
 * The NATS connection as a service sees it, with the subscriptions it makes on the given
 * endpoints' subjects counted. Services own their subscriptions (the KV service subscribes
 * itself); handing them this view is how a member learns its per-endpoint request counts
 * without the services knowing about discovery. Everything else goes to the real connection.
 */
export function countingConnection(nc: NatsConnection, endpoints: readonly EndpointCounters[]): NatsConnection {
  const bySubject = new Map(endpoints.map((e) => [e.info.subject, e]));
  const subscribe = (subject: string, opts?: SubscriptionOptions): Subscription => {
    const counters = bySubject.get(subject);
    const callback = opts?.callback;
    if (counters === undefined || callback === undefined) return nc.subscribe(subject, opts);
    return nc.subscribe(subject, {
      ...opts,
      callback: (err, msg) => {
        // Only requests with somewhere to reply are requests; the rest are not answered.
        if (err !== null || msg.reply === undefined || msg.reply === "") return callback(err, msg);
        return callback(err, new CountedMsg(msg, counters.received()));
      },
    });
  };
  return new Proxy(nc, {
    get(target, property) {
      if (property === "subscribe") return subscribe;
      const value: unknown = Reflect.get(target, property);
      // Methods run on the real connection: its implementation keeps state the proxy lacks.
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
