import { join } from "node:path";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { type Logger, silentLogger } from "@quorate/core";
import { KvStateMachine } from "@quorate/kv";
import { createKvService, KV_SERVICE, type KvService } from "@quorate/kv/nats";
import {
  type Acceptor,
  type Learner,
  learnerStorageIn,
  type PaxosOptions,
  type PaxosRoleName,
  type PaxosRoleStatus,
  type Proposer,
  paxosRoleId,
  proposerStorageIn,
} from "@quorate/paxos";
import { serveReplicated } from "@quorate/service";
import { openLmdbAcceptorStorage, openLmdbStorage } from "@quorate/storage";
import type { NatsTransportStats } from "@quorate/transport-nats";
import { answerStatus, type MemberStatus, STATUS_SERVICE, stateDigest } from "./member.js";
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
  /** The role's consensus frame counters. */
  readonly transport: () => NatsTransportStats | undefined;
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
  const closers: (() => Promise<void>)[] = [];
  const served: ServedRole[] = [];
  const subscriptions: Subscription[] = [];
  const discoveries: Discovery[] = [];
  const endpointsOf = (self: string, servesKv: boolean) =>
    memberEndpoints({ cluster, instance: self, servesKv, statusService: STATUS_SERVICE });
  const runs = (role: PaxosRoleName) => options.roles.includes(role);
  try {
    const storage = {
      ...(runs("acceptor")
        ? { acceptor: await openStorage(closers, () => openLmdbAcceptorStorage(storageOptions("acceptor"))) }
        : {}),
      ...(runs("learner")
        ? { learner: learnerStorageIn(await openStorage(closers, () => openLmdbStorage(storageOptions("learner")))) }
        : {}),
      ...(runs("proposer")
        ? { proposer: proposerStorageIn(await openStorage(closers, () => openLmdbStorage(storageOptions("proposer")))) }
        : {}),
    };
    const store = new KvStateMachine();
    const replicated = await serveReplicated({
      protocol: "paxos",
      nats: nc,
      cluster,
      group: PAXOS_GROUP,
      service: KV_SERVICE,
      id,
      roles: options.roles,
      acceptors: options.acceptors,
      proposers: options.proposers,
      learners: options.learners,
      storage,
      stateMachine: store,
      // The KV service below serves the KV protocol on the learner instead.
      serve: false,
      ...(options.q1 === undefined ? {} : { q1: options.q1 }),
      ...(options.q2 === undefined ? {} : { q2: options.q2 }),
      ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
      ...(options.checkpointInterval === undefined ? {} : { checkpointInterval: options.checkpointInterval }),
      ...(options.paxos === undefined ? {} : { paxos: options.paxos }),
      logger,
    });
    closers.push(() => replicated.stop());
    const transportOf = (self: string) => () => replicated.metrics().transport[self];
    const { acceptor, learner, proposer } = replicated;
    if (acceptor !== null) {
      const self = acceptor.id;
      const status = () => ({ ...acceptor.status(), cluster });
      served.push({
        role: "acceptor",
        self,
        status,
        state: status,
        endpoints: endpointsOf(self, false),
        transport: transportOf(self),
      });
    }
    if (learner !== null) {
      const self = learner.id;
      const endpoints = endpointsOf(self, true);
      // The KV service subscribes through a view of the connection that counts its requests for `$SRV.STATS`.
      const counted = countingConnection(nc, endpoints.all);
      const kv: KvService = createKvService({
        nc: counted,
        cluster,
        node: learner,
        store,
        logger,
        // The learner beside the active proposer ticks the lease clock, its ballot round telling
        // one reign from the next. A member without a learner never ticks: leases need a
        // learner on every member that runs a proposer (as `quorate node --protocol paxos` has).
        leadership: replicated.leadership,
        // Clients follow the learner beside the active proposer: its requests skip a NATS hop.
        steerTo: replicated.steerTo,
      });
      closers.push(() => kv.close());
      const state = () => ({ ...learner.status(), cluster });
      const status = () => ({
        ...state(),
        stateDigest: stateDigest(replicated.sessionStateMachine.snapshot()),
      });
      served.push({ role: "learner", self, status, state, endpoints, transport: transportOf(self) });
    }
    if (proposer !== null) {
      const self = proposer.id;
      const status = () => ({ ...proposer.status(), cluster });
      served.push({
        role: "proposer",
        self,
        status,
        state: status,
        endpoints: endpointsOf(self, false),
        transport: transportOf(self),
      });
    }
    for (const { role, self, status, state, endpoints, transport } of served) {
      subscriptions.push(answerStatus(countingConnection(nc, [endpoints.status]), cluster, status));
      if (options.discovery === false) continue;
      discoveries.push(
        startDiscovery({
          nc,
          name: ServiceName[role],
          id: serviceInstanceId(cluster, self),
          description: `Quorate Multi-Paxos ${role} ${self} of cluster ${cluster}`,
          metadata: { cluster, member: id, instance: self, protocol: "paxos", role, group: PAXOS_GROUP },
          endpoints: endpoints.all,
          state: () => ({ ...state(), transport: transport() }),
          logger,
        }),
      );
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
  } catch (err) {
    await Promise.all(discoveries.map((d) => d.stop()));
    for (const s of subscriptions) s.unsubscribe();
    await closeAll(closers);
    throw err;
  }

  /** Each role keeps its files in a subdirectory of its own, under its transport identity. */
  function storageOptions(role: PaxosRoleName) {
    return { dir: join(dataDir, role), cluster, member: paxosRoleId(id, role), logger };
  }
}

/** Opens one store and registers its closing. */
async function openStorage<T extends { close(): Promise<void> }>(
  closers: (() => Promise<void>)[],
  open: () => Promise<T>,
): Promise<T> {
  const storage = await open();
  closers.push(() => storage.close());
  return storage;
}

/** Closes in reverse order of opening: services, then roles, then transports and storage. */
async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  for (const close of closers.reverse()) await close();
}
