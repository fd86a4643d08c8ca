import { createHash } from "node:crypto";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { ErrorCode, type Logger, QuorateError, rpcSubject, silentLogger, validateMembers } from "@quorate/core";
import { KvStateMachine } from "@quorate/kv";
import { createKvService, type KvService } from "@quorate/kv/nats";
import type { RaftNode, RaftOptions } from "@quorate/raft";
import { type ReplicatedGroups, serveGroups } from "@quorate/service";
import { type LmdbGroups, openLmdbGroups } from "@quorate/storage";
import { type MemberStatus, STATUS_SERVICE } from "./member.js";

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
}

export interface RaftKvGroupsMember {
  readonly groups: ReplicatedGroups;
  /** One status per group, each with its group. */
  status(): MemberStatus[];
  /** Stops every group's KV service and node, then closes storage. Leaves the NATS connection open. */
  stop(): Promise<void>;
}

/**
 * One member of many KV groups on Raft (`quorate node --groups`): every group an independent
 * Raft group with its own log and KV state, served under the group's name (KvClient's
 * `service`), all sharing this member's NATS connection, tick timer and LMDB environment, with
 * leaders spread across members. `quorate status` gets one row per group from it.
 */
export async function startRaftKvGroupsMember(options: RaftKvGroupsMemberOptions): Promise<RaftKvGroupsMember> {
  const { nc, cluster, id } = options;
  const logger = options.logger ?? silentLogger;
  validateMembers(options.members, id);
  const storage: LmdbGroups = await openLmdbGroups({ dir: options.dataDir, cluster, member: id, logger });
  const stores = new Map(options.groups.map((group) => [group, new KvStateMachine()]));
  const kvServices: KvService[] = [];
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
          nc,
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
        stateDigest: createHash("sha256")
          .update(running.service(group).sessionStateMachine.snapshot())
          .digest("hex")
          .slice(0, 16),
      }));
    const statusSubscription: Subscription = nc.subscribe(rpcSubject({ cluster }, STATUS_SERVICE), {
      callback: (err: Error | null, msg: Msg) => {
        if (err === null && msg.reply) msg.respond(JSON.stringify(status()));
      },
    });
    return {
      groups: running,
      status,
      async stop() {
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
