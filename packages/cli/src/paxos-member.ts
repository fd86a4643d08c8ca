import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { type Logger, rpcSubject, SessionStateMachine, silentLogger } from "@quorate/core";
import { createKvService, type KvService, KvStateMachine } from "@quorate/kv";
import {
  Acceptor,
  Learner,
  learnerStorageIn,
  type PaxosOptions,
  type PaxosRoleName,
  type PaxosRoleStatus,
  Proposer,
  paxosRoleId,
  proposerStorageIn,
  resolveTopology,
} from "@quorate/paxos";
import { openLmdbAcceptorStorage, openLmdbStorage } from "@quorate/storage";
import { createNatsTransport, type NatsTransport } from "@quorate/transport-nats";
import { type MemberStatus, STATUS_SERVICE } from "./member.js";
import {
  type Discovery,
  type MemberEndpoints,
  memberEndpoints,
  ServiceName,
  serviceInstanceId,
  startDiscovery,
} from "./service/discovery.js";
import { countingConnection } from "./service/endpoints.js";

/** The consensus group that carries Multi-Paxos traffic between roles. */
export const PAXOS_GROUP = "paxos";

/**
 * One role's answer to `quorate status`: Raft's columns plus the ballot and, for learners, a
 * state digest. A MemberStatus, so `collectStatus` reads it like a Raft member's.
 */
export type PaxosMemberStatus = PaxosRoleStatus & MemberStatus;

export interface PaxosMemberOptions {
  nc: NatsConnection;
  cluster: string;
  /** The member id; each role instance appends its role (`n1-acceptor`). */
  id: string;
  roles: readonly PaxosRoleName[];
  /** Member ids running each role. */
  acceptors: readonly string[];
  proposers: readonly string[];
  learners: readonly string[];
  /** Each role keeps its files in a subdirectory of its own. */
  dataDir: string;
  q1?: number;
  q2?: number;
  tickMs?: number;
  checkpointInterval?: number;
  paxos?: Partial<PaxosOptions>;
  logger?: Logger;
  /** Each role answers NATS micro discovery (`$SRV.PING|INFO|STATS`) as `quorate-paxos-<role>`. Default true. */
  discovery?: boolean;
}

/** One running role, as status and discovery see it. */
interface ServedRole {
  readonly role: PaxosRoleName;
  /** The role's transport identity (`n1-acceptor`). */
  readonly self: string;
  readonly status: () => PaxosMemberStatus;
  /** The status without the learner's state digest: cheap enough for every `$SRV.STATS`. */
  readonly state: () => PaxosMemberStatus;
  readonly endpoints: MemberEndpoints;
  readonly transport: NatsTransport;
}

export interface PaxosMember {
  readonly acceptor: Acceptor | null;
  readonly proposer: Proposer | null;
  readonly learner: Learner | null;
  /** One `$SRV` responder per role, unless disabled. */
  readonly discoveries: readonly Discovery[];
  statuses(): PaxosMemberStatus[];
  /** Stops serving, waits for writes in flight, closes storage. Leaves the NATS connection open. */
  stop(): Promise<void>;
}

/**
 * Runs the given Multi-Paxos roles of one member over NATS, each with its own transport
 * identity and data directory: `quorate paxos <role>` runs one, `quorate node --protocol
 * paxos` all three. A learner also serves the KV service; every role answers status requests.
 */
export async function startPaxosMember(options: PaxosMemberOptions): Promise<PaxosMember> {
  const { nc, cluster, id, dataDir } = options;
  const logger = options.logger ?? silentLogger;
  const topology = resolveTopology({
    acceptors: options.acceptors.map((m) => paxosRoleId(m, "acceptor")),
    proposers: options.proposers.map((m) => paxosRoleId(m, "proposer")),
    learners: options.learners.map((m) => paxosRoleId(m, "learner")),
    ...(options.q1 === undefined ? {} : { q1: options.q1 }),
    ...(options.q2 === undefined ? {} : { q2: options.q2 }),
  });
  const closers: (() => Promise<void>)[] = [];
  const served: ServedRole[] = [];
  const subscriptions: Subscription[] = [];
  const discoveries: Discovery[] = [];
  const endpointsOf = (self: string, servesKv: boolean) =>
    memberEndpoints({ cluster, instance: self, servesKv, statusService: STATUS_SERVICE });
  const transportFor = (self: string): NatsTransport => {
    const transport = createNatsTransport({ nc, cluster, group: PAXOS_GROUP, self, logger });
    closers.push(() => transport.close());
    return transport;
  };
  const tick = options.tickMs === undefined ? {} : { tickMs: options.tickMs };
  const paxos = options.paxos === undefined ? {} : { paxos: options.paxos };
  let acceptor: Acceptor | null = null;
  let proposer: Proposer | null = null;
  let learner: Learner | null = null;
  try {
    if (options.roles.includes("acceptor")) {
      const self = paxosRoleId(id, "acceptor");
      const storage = await openLmdbAcceptorStorage({ dir: join(dataDir, "acceptor"), cluster, member: self, logger });
      closers.push(() => storage.close());
      const transport = transportFor(self);
      const started = await Acceptor.start({ id: self, topology, transport, storage, logger, ...paxos });
      closers.push(() => started.stop());
      const status = () => ({ ...started.status(), cluster });
      served.push({ role: "acceptor", self, status, state: status, endpoints: endpointsOf(self, false), transport });
      acceptor = started;
    }
    if (options.roles.includes("learner")) {
      const self = paxosRoleId(id, "learner");
      const storage = await openLmdbStorage({ dir: join(dataDir, "learner"), cluster, member: self, logger });
      closers.push(() => storage.close());
      const transport = transportFor(self);
      const store = new KvStateMachine();
      const stateMachine = new SessionStateMachine(store);
      const started = await Learner.start({
        id: self,
        topology,
        transport,
        storage: learnerStorageIn(storage),
        stateMachine,
        logger,
        ...tick,
        ...paxos,
        ...(options.checkpointInterval === undefined ? {} : { checkpointInterval: options.checkpointInterval }),
      });
      closers.push(() => started.stop());
      const endpoints = endpointsOf(self, true);
      // The KV service subscribes through a view of the connection that counts its requests for `$SRV.STATS`.
      const counted = countingConnection(nc, endpoints.all);
      const kv: KvService = createKvService({
        nc: counted,
        cluster,
        node: started,
        store,
        logger,
        // The learner beside the active proposer ticks the lease clock, its ballot round telling
        // one reign from the next. A member without a learner never ticks: leases need a
        // learner on every member that runs a proposer (as `quorate node --protocol paxos` has).
        leadership: () => (proposer !== null && proposer.mode === "active" ? { term: proposer.ballot[0] } : null),
      });
      closers.push(() => kv.close());
      const state = () => ({ ...started.status(), cluster });
      const status = () => ({
        ...state(),
        stateDigest: createHash("sha256").update(stateMachine.snapshot()).digest("hex").slice(0, 16),
      });
      served.push({ role: "learner", self, status, state, endpoints, transport });
      learner = started;
    }
    if (options.roles.includes("proposer")) {
      const self = paxosRoleId(id, "proposer");
      const storage = await openLmdbStorage({ dir: join(dataDir, "proposer"), cluster, member: self, logger });
      closers.push(() => storage.close());
      const transport = transportFor(self);
      const started = await Proposer.start({
        id: self,
        topology,
        transport,
        storage: proposerStorageIn(storage),
        logger,
        ...tick,
        ...paxos,
      });
      closers.push(() => started.stop());
      const status = () => ({ ...started.status(), cluster });
      served.push({ role: "proposer", self, status, state: status, endpoints: endpointsOf(self, false), transport });
      proposer = started;
    }
    for (const { role, self, status, state, endpoints, transport } of served) {
      subscriptions.push(
        countingConnection(nc, [endpoints.status]).subscribe(rpcSubject({ cluster }, STATUS_SERVICE), {
          callback: (err: Error | null, msg: Msg) => {
            if (err === null && msg.reply) msg.respond(JSON.stringify(status()));
          },
        }),
      );
      if (options.discovery === false) continue;
      discoveries.push(
        startDiscovery({
          nc,
          name: ServiceName[role],
          id: serviceInstanceId(cluster, self),
          description: `Quorate Multi-Paxos ${role} ${self} of cluster ${cluster}`,
          metadata: { cluster, member: id, instance: self, protocol: "paxos", role, group: PAXOS_GROUP },
          endpoints: endpoints.all,
          state: () => ({ ...state(), transport: transport.stats }),
          logger,
        }),
      );
    }
  } catch (err) {
    await closeAll(closers);
    throw err;
  }
  return {
    acceptor,
    proposer,
    learner,
    discoveries,
    statuses: () => served.map((s) => s.status()),
    async stop() {
      await Promise.all(discoveries.map((d) => d.stop()));
      for (const s of subscriptions) s.unsubscribe();
      await closeAll(closers);
    },
  };
}

/** Closes in reverse order of opening: services, then roles, then transports and storage. */
async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  for (const close of closers.reverse()) await close();
}
