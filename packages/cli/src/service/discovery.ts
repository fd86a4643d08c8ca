import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { ErrorCode, type Logger, QuorateError, rpcSubject, silentLogger } from "@quorate/core";
import { KV_QUEUE_GROUP, KV_SERVICE } from "@quorate/kv/nats";
import { EndpointCounters, type EndpointInfo, type EndpointStats } from "./endpoints.js";
import { QUORATE_VERSION } from "./version.js";

/**
 * NATS-native discovery: every running role answers the NATS micro services protocol (ADR-32)
 * on `$SRV.PING|INFO|STATS`, `$SRV.<verb>.<name>` and `$SRV.<verb>.<name>.<id>`, so `nats micro
 * ls`, `nats micro stats quorate-raft` or any client's `requestMany("$SRV.PING")` finds members
 * without knowing the cluster's subjects. `@nats-io/services` is not published for our NATS
 * client version, so the responses are built here, field for field as it builds them.
 */
export const SERVICE_API_PREFIX = "$SRV";

export const ServiceResponseType = {
  ping: "io.nats.micro.v1.ping_response",
  info: "io.nats.micro.v1.info_response",
  stats: "io.nats.micro.v1.stats_response",
} as const;

export type ServiceVerb = "PING" | "INFO" | "STATS";
const VERBS: readonly ServiceVerb[] = ["PING", "INFO", "STATS"];

/** Service names of the roles: one name per kind, shared by all its instances. */
export const ServiceName = {
  raft: "quorate-raft",
  acceptor: "quorate-paxos-acceptor",
  proposer: "quorate-paxos-proposer",
  learner: "quorate-paxos-learner",
} as const;

export interface ServiceIdentity {
  type: string;
  name: string;
  id: string;
  version: string;
  metadata: Record<string, string>;
}

export interface ServiceInfo extends ServiceIdentity {
  description: string;
  endpoints: EndpointInfo[];
}

export interface ServiceStats extends ServiceIdentity {
  /** ISO time the instance started. */
  started: string;
  endpoints: EndpointStats[];
}

export interface DiscoveryOptions {
  nc: NatsConnection;
  /** The kind of service (`quorate-raft`); every instance of a kind shares it. */
  name: string;
  /** This instance, unique among the instances of `name` on the NATS system: see `serviceInstanceId`. */
  id: string;
  description: string;
  /** Static facts about the instance (cluster, member, protocol); values are strings, as micro requires. */
  metadata: Readonly<Record<string, string>>;
  /** The request/reply endpoints this instance serves, with their counters. */
  endpoints: readonly EndpointCounters[];
  /** Live consensus state (role, term or ballot, leader, indexes), reported as each endpoint's `data`. */
  state: () => unknown;
  logger?: Logger;
}

export interface Discovery {
  readonly name: string;
  readonly id: string;
  ping(): ServiceIdentity;
  info(): ServiceInfo;
  stats(): ServiceStats;
  /** Stops answering. Leaves the connection open. */
  stop(): Promise<void>;
}

/** `$SRV.<verb>`, `$SRV.<verb>.<name>` or `$SRV.<verb>.<name>.<id>`. */
export function serviceControlSubject(verb: ServiceVerb, name?: string, id?: string): string {
  if (name === undefined) return `${SERVICE_API_PREFIX}.${verb}`;
  return id === undefined ? `${SERVICE_API_PREFIX}.${verb}.${name}` : `${SERVICE_API_PREFIX}.${verb}.${name}.${id}`;
}

/**
 * A role instance's service id: `<cluster>-<instance>` (`prod-n1`, `prod-a1-acceptor`). Stable
 * across restarts, unlike micro's random ids, so `$SRV.STATS.quorate-raft.prod-n1` always asks
 * the same member; the cluster keeps members of two clusters on one NATS system apart.
 */
export function serviceInstanceId(cluster: string, instance: string): string {
  return `${cluster}-${instance}`;
}

const NAME = /^[A-Za-z0-9_-]+$/;

function assertServiceToken(kind: string, value: string): void {
  if (!NAME.test(value)) {
    throw new QuorateError(ErrorCode.Config, `service ${kind} must be letters, digits, '_' or '-' (got '${value}')`);
  }
}

/** Answers `$SRV` requests for one role instance until stopped. */
export function startDiscovery(options: DiscoveryOptions): Discovery {
  const { nc, name, id, description, endpoints } = options;
  const logger = options.logger ?? silentLogger;
  assertServiceToken("name", name);
  assertServiceToken("id", id);
  const metadata = { ...options.metadata };
  const started = new Date().toISOString();

  const identity = (type: string): ServiceIdentity => ({ type, name, id, version: QUORATE_VERSION, metadata });
  const discovery: Discovery = {
    name,
    id,
    ping: () => identity(ServiceResponseType.ping),
    info: () => ({
      ...identity(ServiceResponseType.info),
      description,
      endpoints: endpoints.map((e) => ({ ...e.info })),
    }),
    stats: () => {
      const data = options.state();
      return { ...identity(ServiceResponseType.stats), started, endpoints: endpoints.map((e) => e.stats(data)) };
    },
    async stop() {
      if (nc.isClosed()) return;
      await Promise.allSettled(subscriptions.filter((s) => !s.isClosed()).map((s) => s.drain()));
    },
  };

  const answer: Record<ServiceVerb, () => unknown> = {
    PING: discovery.ping,
    INFO: discovery.info,
    STATS: discovery.stats,
  };
  const subscriptions: Subscription[] = [];
  for (const verb of VERBS) {
    const callback = (err: Error | null, msg: Msg): void => {
      if (err !== null) {
        logger.warn("discovery subscription error", { verb, error: err.message });
        return;
      }
      if (!msg.reply) return;
      try {
        msg.respond(JSON.stringify(answer[verb]()));
      } catch (error) {
        logger.warn("could not answer a discovery request", { verb, error: String(error) });
      }
    };
    // No queue group: every instance answers, as micro services do.
    for (const subject of [
      serviceControlSubject(verb),
      serviceControlSubject(verb, name),
      serviceControlSubject(verb, name, id),
    ]) {
      subscriptions.push(nc.subscribe(subject, { callback }));
    }
  }
  return discovery;
}

/** The endpoints a role instance serves, with counters to hand to `countingConnection`. */
export interface MemberEndpoints {
  /** KV requests from clients, in the queue group. Members that serve KV (Raft members, Paxos learners). */
  readonly kv: EndpointCounters | null;
  /** KV requests forwarded to this instance (by members that know it leads, or by clients that it served). */
  readonly kvDirect: EndpointCounters | null;
  /** `quorate status` requests. */
  readonly status: EndpointCounters;
  readonly all: readonly EndpointCounters[];
}

export function memberEndpoints(options: {
  cluster: string;
  /** The transport identity: the member id for Raft, the role id (`a1-acceptor`) for Paxos. */
  instance: string;
  servesKv: boolean;
  statusService: string;
}): MemberEndpoints {
  const scope = { cluster: options.cluster };
  const kv = options.servesKv
    ? new EndpointCounters({ name: "kv", subject: rpcSubject(scope, KV_SERVICE), queue_group: KV_QUEUE_GROUP })
    : null;
  const kvDirect = options.servesKv
    ? new EndpointCounters({ name: "kv-direct", subject: rpcSubject(scope, KV_SERVICE, options.instance) })
    : null;
  const status = new EndpointCounters({ name: "status", subject: rpcSubject(scope, options.statusService) });
  return { kv, kvDirect, status, all: [kv, kvDirect, status].filter((e): e is EndpointCounters => e !== null) };
}
