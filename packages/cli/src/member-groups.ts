import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, type Logger, QuorateError, rpcSubject, silentLogger, validateMembers } from "@quorate/core";
import { KvStateMachine } from "@quorate/kv";
import { createKvService, type KvService } from "@quorate/kv/nats";
import type { RaftNode, RaftOptions } from "@quorate/raft";
import { queueGroupOf, type ReplicatedGroups, serveGroups } from "@quorate/service";
import { type LmdbGroups, openLmdbGroups } from "@quorate/storage";
import { answerStatus, type MemberStatus, STATUS_SERVICE, stateDigest } from "./member.js";
import { type Discovery, ServiceName, serviceInstanceId, startDiscovery } from "./service/discovery.js";
import { countingConnection, EndpointCounters } from "./service/endpoints.js";

export interface RaftKvGroupsMemberOptions {
  nc: NatsConnection;
  cluster: string;
  id: string;
  /** The voters of every group. */
  members: readonly string[];
  /** The KV groups to host; every member lists the same. */
  groups: readonly string[];
  /** One LMDB environment for every group (openLmdbGroups). */
  dataDir: string;
  snapshotThreshold?: number;
  tickMs?: number;
  raft?: Partial<RaftOptions>;
  logger?: Logger;
  /** Answer NATS micro discovery (`$SRV.PING|INFO|STATS`) as `quorate-raft`, with every group's state. Default true. */
  discovery?: boolean;
}

export interface RaftKvGroupsMember {
  readonly groups: ReplicatedGroups;
  /** The `$SRV` responder, unless disabled. */
  readonly discovery: Discovery | null;
  /** One status per group, each with its group. */
  status(): MemberStatus[];
  /** Stops every group's KV service and node, then closes storage. Leaves the NATS connection open. */
  stop(): Promise<void>;
}

/**
 * One member of many KV groups on Raft (`quorate node --groups`): every group an independent
 * Raft group with its own log and KV state, served under the group's name (KvClient's
 * `group`; ShardedKvClient spreads keys over them), all sharing this member's NATS connection, tick timer and LMDB environment, with
 * leaders spread across members. `quorate status` gets one row per group from it.
 */
export async function startRaftKvGroupsMember(options: RaftKvGroupsMemberOptions): Promise<RaftKvGroupsMember> {
  const { nc, cluster, id } = options;
  const logger = options.logger ?? silentLogger;
  validateMembers(options.members, id);
  const storage: LmdbGroups = await openLmdbGroups({ dir: options.dataDir, cluster, member: id, logger });
  const stores = new Map(options.groups.map((group) => [group, new KvStateMachine()]));
  const kvServices: KvService[] = [];
  // Every group's KV endpoints and the status endpoint, counted for `$SRV.STATS`.
  const scope = { cluster };
  const endpoints = [
    ...options.groups.flatMap((group) => [
      new EndpointCounters({ name: group, subject: rpcSubject(scope, group), queue_group: queueGroupOf(group) }),
      new EndpointCounters({ name: `${group}-direct`, subject: rpcSubject(scope, group, id) }),
    ]),
    new EndpointCounters({ name: "status", subject: rpcSubject(scope, STATUS_SERVICE) }),
  ];
  const counted = countingConnection(nc, endpoints);
  let groups: ReplicatedGroups | undefined;
  try {
    groups = await serveGroups({
      nats: nc,
      cluster,
      id,
      groups: options.groups,
      logger,
      ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
      group: (group) => ({
        protocol: "raft",
        members: options.members,
        storage: storage.storage(group),
        stateMachine: storeOf(stores, group),
        // Each group's KV service below serves the KV protocol on its node instead.
        serve: false,
        ...(options.snapshotThreshold === undefined ? {} : { snapshotThreshold: options.snapshotThreshold }),
        ...(options.raft === undefined ? {} : { raft: options.raft }),
      }),
    });
    const running = groups;
    const nodes = new Map<string, RaftNode>();
    for (const group of options.groups) {
      const service = running.service(group);
      if (service.raft === null) throw new QuorateError(ErrorCode.Invariant, "a Raft group without a Raft node");
      nodes.set(group, service.raft);
      kvServices.push(
        createKvService({
          nc: counted,
          cluster,
          node: service.raft,
          store: storeOf(stores, group),
          group,
          logger,
          leadership: service.leadership,
        }),
      );
    }
    const status = (): MemberStatus[] =>
      [...nodes].map(([group, node]) => ({
        protocol: "raft",
        cluster,
        group,
        ...node.status(),
        stateDigest: stateDigest(running.service(group).sessionStateMachine.snapshot()),
      }));
    const statusSubscription = answerStatus(counted, cluster, status);
    const discovery =
      options.discovery === false
        ? null
        : startDiscovery({
            nc,
            name: ServiceName.raft,
            id: serviceInstanceId(cluster, id),
            description: `Quorate Raft member ${id} of cluster ${cluster}: KV groups ${options.groups.join(", ")}`,
            metadata: { cluster, member: id, protocol: "raft", groups: options.groups.join(",") },
            endpoints,
            // Per group, as `quorate status` shows it, without the state digest (hashing every group's state is status's job).
            state: () => ({
              protocol: "raft",
              cluster,
              groups: Object.fromEntries([...nodes].map(([group, node]) => [group, node.status()])),
            }),
            logger,
          });
    return {
      groups: running,
      discovery,
      status,
      async stop() {
        await discovery?.stop();
        statusSubscription.unsubscribe();
        for (const kv of kvServices) await kv.close();
        await running.stop();
        await storage.close();
      },
    };
  } catch (err) {
    for (const kv of kvServices) await kv.close();
    await groups?.stop();
    await storage.close();
    throw err;
  }
}

function storeOf(stores: ReadonlyMap<string, KvStateMachine>, group: string): KvStateMachine {
  const store = stores.get(group);
  if (store === undefined) throw new QuorateError(ErrorCode.Invariant, `no KV store for group ${group}`);
  return store;
}
