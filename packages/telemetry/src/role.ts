import type { Attributes, Context, Span } from "@opentelemetry/api";
import { Attr, extractContext } from "./conventions.js";
import { type MessageRoute, producerHeaders, startConsumerSpan } from "./messaging.js";
import { type ConsensusMetrics, consensusMetrics, type MemberGauges, observeMember } from "./metrics.js";

/** What role telemetry needs of a transport (`@quorate/core`'s Transport is one). */
export interface RoleTransport {
  readonly cluster: string;
  readonly group: string;
  readonly self: string;
  routeTo?(to: string | null): { readonly subject: string; readonly template: string };
  serverAddress?(): string | undefined;
}

/** What the transport knew of a received frame (`@quorate/core`'s ReceivedFrame). */
export interface FrameInfo {
  readonly bytes: number;
  readonly route: { readonly subject: string; readonly template: string } | undefined;
}

/** A received message, as role telemetry reads it. */
export interface ReceivedMessage {
  readonly type: string;
  readonly sender: string;
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/**
 * What the telemetry of every role of every protocol shares: the attributes naming the member,
 * the metrics, its gauges, and PRODUCER and CONSUMER spans that follow the messaging
 * conventions with the transport's subjects and server.
 */
export abstract class RoleTelemetry {
  protected readonly attributes: Attributes;
  protected readonly metrics: ConsensusMetrics = consensusMetrics();
  readonly #unobserve: () => void;

  constructor(
    private readonly transport: RoleTransport,
    gauges: () => MemberGauges,
  ) {
    this.attributes = {
      [Attr.cluster]: transport.cluster,
      [Attr.group]: transport.group,
      [Attr.member]: transport.self,
    };
    this.#unobserve = observeMember({ [Attr.cluster]: transport.cluster, [Attr.member]: transport.self }, gauges);
  }

  /** Ends every open span and stops reporting gauges: the role is stopping. */
  close(): void {
    this.#unobserve();
    this.endAll();
  }

  protected abstract endAll(): void;

  /**
   * Headers for sending a `type` message to `to` (null: every member) under a PRODUCER span of
   * `parent`; `bodyBytes` is the encoded frame's size, when the caller measured it.
   */
  protected producer(
    parent: Context,
    type: string,
    to: string | null,
    attributes: Attributes,
    bodyBytes?: number,
  ): Record<string, string> | undefined {
    return producerHeaders(
      parent,
      type,
      this.#sendRoute(to),
      { ...this.attributes, [Attr.peer]: to ?? "*", ...attributes },
      bodyBytes,
    );
  }

  /** A CONSUMER span for handling `message`, or null when it carries no trace context. */
  protected consumer(message: ReceivedMessage, frame: FrameInfo | undefined, attributes: Attributes): Span | null {
    const parent = extractContext(message.headers);
    if (parent === undefined) return null;
    const route: MessageRoute | undefined =
      frame?.route === undefined ? undefined : { ...frame.route, serverAddress: this.transport.serverAddress?.() };
    return startConsumerSpan(parent, message.type, route, frame?.bytes, {
      ...this.attributes,
      [Attr.peer]: message.sender,
      ...attributes,
    });
  }

  #sendRoute(to: string | null): MessageRoute | undefined {
    const route = this.transport.routeTo?.(to);
    return route === undefined ? undefined : { ...route, serverAddress: this.transport.serverAddress?.() };
  }
}
