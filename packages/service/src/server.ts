import { type Msg, type MsgHdrs, type NatsConnection, RequestError, type Subscription } from "@nats-io/transport-node";
import {
  assertToken,
  ErrorCode,
  isQuorateError,
  type Logger,
  type NodeId,
  packValue,
  QuorateError,
  rpcSubject,
  SERVICE_ERROR_CODE_HEADER,
  SERVICE_ERROR_HEADER,
  serviceErrorHeaders,
  silentLogger,
  unpackValue,
  type Validator,
} from "@quorate/core";
import { markTimeline } from "@quorate/core/internal";
import {
  Attr,
  context,
  extractContext,
  injectHeaders,
  messagingAttributes,
  ROOT_CONTEXT,
  SpanKind,
  SpanName,
  trace,
  traced,
} from "@quorate/telemetry";
import { fromMsgHdrs, toMsgHdrs } from "@quorate/transport-nats";
import {
  MAX_FORWARD_HOPS,
  queueGroupOf,
  type ServiceReply,
  type ServiceReplyCode,
  type ServiceRequest,
} from "./protocol.js";

const DEFAULT_FORWARD_TIMEOUT_MS = 5_000;

/** The header that names a request's encoding, and so its reply's. */
export const CONTENT_TYPE_HEADER = "Content-Type";
/** Requests with this `Content-Type` are JSON, and so are their replies (which carry the header too). */
export const JSON_CONTENT_TYPE = "application/json";

/** How a service writes requests and replies in JSON, for clients that speak no msgpack. */
export interface JsonCodec {
  /** Decodes a request body; the result is validated like a msgpack one. Throws on bad JSON. */
  decode(data: Uint8Array): unknown;
  encode(message: object): Uint8Array;
}

export interface RequestServerOptions<R extends ServiceRequest> {
  readonly nc: NatsConnection;
  readonly cluster: string;
  readonly prefix?: string | undefined;
  /** The service's subject token: requests arrive on rpcSubject(scope, service[, member]). */
  readonly service: string;
  /** This member: it answers on its own subject too, where other members forward requests. */
  readonly member: NodeId;
  /** Validates a decoded request; invalid ones get a Rejected reply. */
  readonly accepts: Validator<R>;
  /**
   * Runs one request. Throws QuorateErrors: NotLeader with a leader hint makes the request go on
   * to that leader; any other error becomes the reply.
   */
  readonly execute: (request: R) => Promise<ServiceReply>;
  /** Answers requests whose Content-Type is JSON in JSON; without it they are refused as undecodable. */
  readonly json?: JsonCodec;
  /** How long a request forwarded to the leader waits for its reply. Default 5000 ms. */
  readonly forwardTimeoutMs?: number;
  /**
   * The member a successful reply tells clients to send their next requests to (its `servedBy`).
   * Default: this member. A Paxos learner names the learner beside the active proposer, which
   * hands requests to that proposer without a NATS hop.
   */
  readonly steerTo?: () => NodeId;
  readonly logger?: Logger;
}

export interface RequestServer {
  /** Stops answering requests; waits for those under way. Does not close the NATS connection. */
  close(): Promise<void>;
}

/** A reply's body, and its headers: the NATS micro error headers on errors, the content type for JSON. */
interface Answer {
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs;
}

/** How a request is encoded, and so its reply: msgpack, or JSON when the request says so. */
interface Encoding {
  decode(data: Uint8Array): unknown;
  encode(message: object): Uint8Array;
  /** Headers every reply (and a forwarded request) carries. */
  readonly headers: Readonly<Record<string, string>>;
}

const MSGPACK: Encoding = { decode: unpackValue, encode: packValue, headers: {} };

function answer(encoding: Encoding, reply: ServiceReply): Answer {
  const headers = reply.ok
    ? encoding.headers
    : { ...encoding.headers, ...serviceErrorHeaders(reply.code, reply.message) };
  return { data: encoding.encode(reply), ...toMsgHdrs(headers) };
}

function errorReply(encoding: Encoding, code: ServiceReplyCode, message: string, leader: string | null = null): Answer {
  return answer(encoding, { ok: false, code, message, leader });
}

/** A forwarded reply's error and content-type headers, relayed with its body; trace headers stay behind. */
function relayedHeaders(headers: MsgHdrs | undefined): MsgHdrs | undefined {
  const relayed: Record<string, string> = {};
  for (const key of [SERVICE_ERROR_HEADER, SERVICE_ERROR_CODE_HEADER, CONTENT_TYPE_HEADER]) {
    const value = headers?.get(key) ?? "";
    if (value !== "") relayed[key] = value;
  }
  return toMsgHdrs(relayed)?.headers;
}

/**
 * Serves one replicated service's requests on one consensus member: on the cluster's subject,
 * in a queue group so that one member answers each request, and on this member's own subject,
 * where other members forward requests when they know this member leads. Each request is a
 * SERVER span, child of the caller's, so the consensus round it starts joins the caller's trace.
 */
export function serveRequests<R extends ServiceRequest>(options: RequestServerOptions<R>): RequestServer {
  const { nc, cluster, service, member, accepts, execute } = options;
  const logger = options.logger ?? silentLogger;
  const steerTo = options.steerTo ?? (() => member);
  const forwardTimeoutMs = options.forwardTimeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
  assertToken("cluster", cluster);
  assertToken("service", service);
  if (!Number.isSafeInteger(forwardTimeoutMs) || forwardTimeoutMs < 1) {
    throw new QuorateError(ErrorCode.Config, `forwardTimeoutMs must be a positive integer (got ${forwardTimeoutMs})`);
  }
  const scope = { cluster, prefix: options.prefix };
  const json: Encoding | null =
    options.json === undefined ? null : { ...options.json, headers: { [CONTENT_TYPE_HEADER]: JSON_CONTENT_TYPE } };

  /** msgpack unless the request names JSON: one header lookup, on headers NATS has already parsed. */
  function encodingOf(headers: MsgHdrs | undefined): Encoding {
    return json !== null && headers?.get(CONTENT_TYPE_HEADER) === JSON_CONTENT_TYPE ? json : MSGPACK;
  }

  /** Sends the request on to the leader and relays its reply bytes unchanged. */
  async function forward(request: R, leader: string, hops: number, encoding: Encoding): Promise<Answer> {
    logger.debug("forwarding a request to the leader", { service, op: request.op, leader, hops });
    try {
      // In the client's encoding, so the leader's reply can be relayed as it is.
      const headers = { ...injectHeaders(context.active()), ...encoding.headers };
      const reply = await nc.request(rpcSubject(scope, service, leader), encoding.encode({ ...request, hops }), {
        timeout: forwardTimeoutMs,
        ...toMsgHdrs(headers),
      });
      const relayed = relayedHeaders(reply.headers);
      return relayed === undefined ? { data: reply.data } : { data: reply.data, headers: relayed };
    } catch (err) {
      if (err instanceof RequestError && err.isNoResponders()) {
        // Nothing was delivered: a definite failure, and the hint may be stale.
        return errorReply(encoding, ErrorCode.NotLeader, `leader '${leader}' serves no ${service} requests`, leader);
      }
      const detail = err instanceof Error ? err.message : String(err);
      return errorReply(
        encoding,
        ErrorCode.Indeterminate,
        `request forwarded to leader '${leader}' got no reply: ${detail}`,
      );
    }
  }

  async function serve(data: Uint8Array, encoding: Encoding): Promise<Answer> {
    let raw: unknown;
    try {
      raw = encoding.decode(data);
    } catch {
      return errorReply(encoding, ErrorCode.Rejected, `undecodable ${service} request`);
    }
    if (!accepts(raw)) return errorReply(encoding, ErrorCode.Rejected, `invalid ${service} request`);
    const request = raw;
    trace.getActiveSpan()?.updateName(SpanName.serviceServer(service, request.op));
    try {
      const reply = await execute(request);
      return answer(encoding, reply.ok ? { ...reply, servedBy: steerTo() } : reply);
    } catch (err) {
      const hops = request.hops ?? 0;
      if (isQuorateError(err, ErrorCode.NotLeader) && err.leader !== null && err.leader !== member) {
        if (hops < MAX_FORWARD_HOPS) return forward(request, err.leader, hops + 1, encoding);
      }
      if (isQuorateError(err)) {
        return errorReply(encoding, err.code, err.message, err.leader);
      }
      // Not one of ours: a bug somewhere below. A write may have been applied regardless.
      logger.error("request failed", { service, op: request.op, error: String(err) });
      const detail = err instanceof Error ? err.message : String(err);
      return errorReply(encoding, ErrorCode.Indeterminate, `internal error: ${detail}`);
    }
  }

  const clusterSubject = rpcSubject(scope, service);
  /** For telemetry: the pattern of every member's own subject. */
  const memberTemplate = `${clusterSubject}.{member}`;
  const callback = (err: Error | null, msg: Msg): void => {
    if (err !== null) {
      logger.warn("service subscription error", { service, error: err.message });
      return;
    }
    // Without a reply subject nobody could learn the outcome, so the request is not run.
    if (msg.reply === undefined || msg.reply === "") return;
    markTimeline(member, `receive ${service}.request`);
    const parent = extractContext(msg.headers === undefined ? undefined : fromMsgHdrs(msg.headers)) ?? ROOT_CONTEXT;
    // A SERVER span per request, active while it runs: the consensus round it starts becomes its child.
    traced(
      SpanName.serviceServer(service, "request"),
      SpanKind.SERVER,
      {
        [Attr.member]: member,
        ...messagingAttributes(
          "process",
          {
            subject: msg.subject,
            template: msg.subject === clusterSubject ? clusterSubject : memberTemplate,
            serverAddress: nc.getServer(),
          },
          msg.data.length,
        ),
      },
      () => serve(msg.data, encodingOf(msg.headers)),
      parent,
    )
      .then((reply) => {
        msg.respond(reply.data, reply.headers === undefined ? undefined : { headers: reply.headers });
        markTimeline(member, `send ${service}.reply`);
      })
      .catch((error: unknown) => logger.warn("could not answer a request", { service, error: String(error) }));
  };

  const subscriptions: Subscription[] = [
    nc.subscribe(clusterSubject, { queue: queueGroupOf(service), callback }),
    nc.subscribe(rpcSubject(scope, service, member), { callback }),
  ];

  return {
    async close() {
      if (nc.isClosed()) return;
      await Promise.all(subscriptions.filter((s) => !s.isClosed()).map((s) => s.drain()));
    },
  };
}
