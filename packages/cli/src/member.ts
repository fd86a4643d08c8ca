import { createHash } from "node:crypto";
import {
  type Msg,
  type NatsConnection,
  NoRespondersError,
  RequestError,
  type Subscription,
} from "@nats-io/transport-node";
import {
  ErrorCode,
  type Logger,
  type PaxosBallot,
  QuorateError,
  rpcSubject,
  silentLogger,
  validateMembers,
} from "@quorate/core";
import { KvStateMachine } from "@quorate/kv";
import { createKvService, KV_GROUP, type KvService } from "@quorate/kv/nats";
import type { RaftNode, RaftOptions, RaftStatus } from "@quorate/raft";
import { type ReplicatedService, serveReplicated } from "@quorate/service";
import { openLmdbStorage, type RaftStorage } from "@quorate/storage";
import { serveAdmin } from "./admin.js";
import { noResponders } from "./connection.js";
import {
  type Discovery,
  memberEndpoints,
  ServiceName,
  serviceInstanceId,
  startDiscovery,
} from "./service/discovery.js";
import { countingConnection } from "./service/endpoints.js";

/** Every member answers on this subject, so `quorate status` hears from all of them. */
export const STATUS_SERVICE = "status";

/** Answers `quorate status` on `nc` with what `status` says now: a member's status, or one per group or role. */
export function answerStatus(
  nc: NatsConnection,
  cluster: string,
  status: () => MemberStatus | readonly MemberStatus[],
): Subscription {
  return nc.subscribe(rpcSubject({ cluster }, STATUS_SERVICE), {
    callback: (err: Error | null, msg: Msg) => {
      if (err === null && msg.reply) msg.respond(JSON.stringify(status()));
    },
  });
}

/** The short hash of a replicated state (its snapshot) by which `quorate status` compares members at one index. */
export function stateDigest(snapshot: Uint8Array): string {
  return createHash("sha256").update(snapshot).digest("hex").slice(0, 16);
}

/**
 * One answer to `quorate status`: a Raft member, or one role of a Paxos member (shaped alike,
 * so one table shows both; see PaxosMemberStatus).
 */
export interface MemberStatus extends Omit<RaftStatus, "role" | "voters" | "learners" | "snapshotIndex"> {
  protocol: "raft" | "paxos";
  /** Raft: the membership in this member's log, and the index its snapshot covers. */
  voters?: readonly string[];
  learners?: readonly string[];
  snapshotIndex?: number;
  /** Raft: the member's role; Paxos: "acceptor", "proposer:<mode>" or "learner". */
  role: string;
  /** Paxos: the ballot `term` is the round of. */
  ballot?: PaxosBallot;
  cluster: string;
  /** The group the row is about: a member hosting many groups (`--groups`) answers one row per group. */
  group?: string;
  /**
   * Hash of the replicated state at `appliedIndex`: members at the same index must agree.
   * Every Raft member has one; of the Paxos roles, learners.
   */
  stateDigest?: string;
}

export interface RaftKvMemberOptions {
  nc: NatsConnection;
  cluster: string;
  id: string;
  /** The voters a new cluster starts with; ignored with `join` and once the log holds a configuration. */
  members: readonly string[];
  /** Start with no configuration and wait to be added by the leader (`quorate member add`). */
  join?: boolean;
  /** Applied entries between snapshots; the log before a snapshot is compacted. */
  snapshotThreshold?: number;
  dataDir: string;
  tickMs?: number;
  raft?: Partial<RaftOptions>;
  logger?: Logger;
  /** Answer NATS micro discovery (`$SRV.PING|INFO|STATS`) as `quorate-raft`. Default true. */
  discovery?: boolean;
}

export interface RaftKvMember {
  readonly node: RaftNode;
  /** The `$SRV` responder, unless disabled. */
  readonly discovery: Discovery | null;
  status(): MemberStatus;
  /** Stops serving, waits for the write in flight, closes storage. Leaves the NATS connection open. */
  stop(): Promise<void>;
}

/**
 * One member of a replicated KV cluster on Raft: durable log in LMDB, consensus traffic on
 * NATS, the KV service for clients and a status responder. The CLI's `quorate node` runs
 * exactly this; services embedding Quorate can too.
 */
export async function startRaftKvMember(options: RaftKvMemberOptions): Promise<RaftKvMember> {
  const { nc, cluster, id } = options;
  const logger = options.logger ?? silentLogger;
  if (options.join !== true) validateMembers(options.members, id);
  const storage: RaftStorage = await openLmdbStorage({ dir: options.dataDir, cluster, member: id, logger });
  let replicated: ReplicatedService | undefined;
  try {
    const store = new KvStateMachine();
    replicated = await serveReplicated({
      protocol: "raft",
      nats: nc,
      cluster,
      group: KV_GROUP,
      id,
      members: options.members,
      join: options.join === true,
      storage,
      stateMachine: store,
      // The KV service below serves the KV protocol on the node instead.
      serve: false,
      ...(options.snapshotThreshold === undefined ? {} : { snapshotThreshold: options.snapshotThreshold }),
      ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
      ...(options.raft === undefined ? {} : { raft: options.raft }),
      logger,
    });
    const running = replicated;
    const node = running.raft;
    if (node === null) throw new QuorateError(ErrorCode.Invariant, "a Raft service without a Raft node");
    // Services subscribe through a view of the connection that counts their requests for `$SRV.STATS`.
    const endpoints = memberEndpoints({ cluster, instance: id, servesKv: true, statusService: STATUS_SERVICE });
    const counted = countingConnection(nc, endpoints.all);
    const kv: KvService = createKvService({
      nc: counted,
      cluster,
      node,
      store,
      logger,
      // The leader ticks the lease clock; the term tells one reign from the next.
      leadership: running.leadership,
    });
    const status = (): MemberStatus => ({
      protocol: "raft",
      cluster,
      ...node.status(),
      stateDigest: stateDigest(running.sessionStateMachine.snapshot()),
    });
    const statusSubscription = answerStatus(counted, cluster, status);
    const admin = serveAdmin(nc, cluster, KV_GROUP, node);
    const discovery =
      options.discovery === false
        ? null
        : startDiscovery({
            nc,
            name: ServiceName.raft,
            id: serviceInstanceId(cluster, id),
            description: `Quorate Raft member ${id} of cluster ${cluster}: replicated KV store`,
            metadata: { cluster, member: id, protocol: "raft", group: KV_GROUP },
            endpoints: endpoints.all,
            // No state digest here: hashing the whole state on every STATS request is `quorate status`'s job.
            state: () => ({ protocol: "raft", cluster, ...node.status(), transport: running.metrics().transport[id] }),
            logger,
          });
    return {
      node,
      discovery,
      status,
      async stop() {
        await discovery?.stop();
        statusSubscription.unsubscribe();
        admin.unsubscribe();
        await kv.close();
        await running.stop();
        await storage.close();
      },
    };
  } catch (err) {
    await replicated?.stop();
    await storage.close();
    throw err;
  }
}

/**
 * Asks every member of `cluster` for its status; members that do not answer within `waitMs` are
 * left out. When nothing is subscribed (NATS "no responders") the answer is no members, or, with
 * `failWithoutResponders`, an Unreachable error naming the cluster and subject.
 */
export async function collectStatus(
  nc: NatsConnection,
  cluster: string,
  waitMs: number,
  options: { failWithoutResponders?: boolean } = {},
): Promise<MemberStatus[]> {
  const members: MemberStatus[] = [];
  const subject = rpcSubject({ cluster }, STATUS_SERVICE);
  try {
    const replies = await nc.requestMany(subject, "", {
      strategy: "timer",
      maxWait: waitMs,
    });
    for await (const reply of replies) {
      try {
        // A member of many groups answers with one status per group.
        const answer = reply.json<MemberStatus | MemberStatus[]>();
        members.push(...(Array.isArray(answer) ? answer : [answer]));
      } catch {
        // A reply that is not a status is not ours to show.
      }
    }
  } catch (err) {
    // No member is subscribed yet: an empty cluster, not an error.
    const nothingSubscribed = err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders());
    if (!nothingSubscribed) throw err;
    if (options.failWithoutResponders) throw noResponders(cluster, subject);
  }
  return members.sort((a, b) => (a.group ?? "").localeCompare(b.group ?? "") || a.id.localeCompare(b.id));
}
