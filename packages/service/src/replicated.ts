import type { NatsConnection } from "@nats-io/transport-node";
import {
  assertToken,
  type ConsensusNode,
  ErrorCode,
  type Logger,
  type NodeId,
  type PaxosBallot,
  QuorateError,
  type StateMachine,
  silentLogger,
  type Timers,
} from "@quorate/core";
import {
  Acceptor,
  type AcceptorStorage,
  Learner,
  type LearnerStorage,
  type PaxosOptions,
  type PaxosRoleName,
  type PaxosRoleStatus,
  Proposer,
  type ProposerStorage,
  paxosRoleId,
  resolveTopology,
} from "@quorate/paxos";
import { RaftNode, type RaftOptions, type RaftStatus } from "@quorate/raft";
import type { RaftStorage } from "@quorate/storage";
import {
  ColocatedTransports,
  createNatsTransport,
  type NatsTransport,
  type NatsTransportStats,
} from "@quorate/transport-nats";
import { type ReplicatedRequest, replicatedRequest, type ServiceReply } from "./protocol.js";
import { type RequestServer, serveRequests } from "./server.js";
import {
  decodeOpenedClient,
  decodeSessionResult,
  encodeOpenSession,
  encodeSessionCommand,
  type SessionLimits,
  type SessionResult,
  SessionStateMachine,
  type SessionTag,
} from "./sessions.js";

/** A state machine that also answers queries: read-only, on the state applied so far. */
export interface QueryableStateMachine extends StateMachine {
  /**
   * Answers an encoded query from the local state. Throws a QuorateError (Rejected) on a query it
   * does not understand; it must not change the state.
   */
  query(query: Uint8Array): Uint8Array;
  /**
   * Whether an encoded command is one `apply` understands. The service refuses (Rejected) a
   * command that is not before proposing it, so a malformed command never reaches the log.
   */
  accepts?(command: Uint8Array): boolean;
}

interface CommonOptions {
  /** A connection the application already has: consensus traffic and requests share it. */
  readonly nats: NatsConnection;
  readonly cluster: string;
  /** The consensus group: its traffic goes on the group's subjects. */
  readonly group: string;
  /** The subject token clients address (rpcSubject(scope, service)). Default: the group. */
  readonly service?: string;
  /** First subject token(s); default "quorate". */
  readonly prefix?: string;
  /** This member's id. */
  readonly id: NodeId;
  readonly stateMachine: StateMachine | QueryableStateMachine;
  /** Limits of the replicated session table (see SessionStateMachine). */
  readonly sessions?: Partial<SessionLimits>;
  /**
   * Serve the command/query/open protocol of ReplicatedClient on the service subject. Default
   * true; false when the application serves a protocol of its own on `node` (as the KV does).
   */
  readonly serve?: boolean;
  readonly tickMs?: number;
  /** The clock and timers consensus ticks on; serveGroups shares one interval among its groups. Default: the process's. */
  readonly timers?: Timers;
  /** How long a request forwarded to the leader waits for its reply. Default 5000 ms. */
  readonly forwardTimeoutMs?: number;
  readonly logger?: Logger;
}

export interface RaftServiceOptions extends CommonOptions {
  readonly protocol: "raft";
  /** The voters a new cluster starts with; ignored with `join` and once the log holds a configuration. */
  readonly members: readonly NodeId[];
  /** Start with no configuration and wait to be added by the leader. */
  readonly join?: boolean;
  /** The member's durable log (openLmdbStorage); the caller opens it and closes it after stop(). */
  readonly storage: RaftStorage;
  /** Applied entries between snapshots; the log before a snapshot is compacted. */
  readonly snapshotThreshold?: number;
  readonly raft?: Partial<RaftOptions>;
}

export interface PaxosServiceOptions extends CommonOptions {
  readonly protocol: "paxos";
  /** The roles this member runs. Default: all three. */
  readonly roles?: readonly PaxosRoleName[];
  /** Member ids running each role; each role's transport identity is `<member>-<role>`. */
  readonly acceptors: readonly NodeId[];
  readonly proposers: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** One store per role this member runs; the caller opens them and closes them after stop(). */
  readonly storage: {
    readonly acceptor?: AcceptorStorage;
    readonly proposer?: ProposerStorage;
    readonly learner?: LearnerStorage;
  };
  readonly q1?: number;
  readonly q2?: number;
  readonly checkpointInterval?: number;
  readonly paxos?: Partial<PaxosOptions>;
}

export type ServeReplicatedOptions = RaftServiceOptions | PaxosServiceOptions;

/** One consensus role as status shows it: a Raft member, or one Paxos role. */
export type ReplicatedRoleStatus = (RaftStatus & { readonly protocol: "raft" }) | PaxosRoleStatus;

export interface ReplicatedStatus {
  readonly protocol: "raft" | "paxos";
  readonly cluster: string;
  readonly group: string;
  readonly id: NodeId;
  /** One entry per Raft member or Paxos role this member runs. */
  readonly roles: readonly ReplicatedRoleStatus[];
}

export interface ReplicatedMetrics {
  /** Open sessions in this member's session table (0 without a state machine here). */
  readonly sessions: number;
  /** Consensus frames by role identity. */
  readonly transport: Readonly<Record<string, NatsTransportStats>>;
}

/** A running member of a replicated service. */
export interface ReplicatedService {
  readonly protocol: "raft" | "paxos";
  readonly id: NodeId;
  /**
   * The consensus node that applies the state machine here: the Raft node, or the Paxos
   * learner (null on a Paxos member without one).
   */
  readonly node: ConsensusNode | null;
  /** The session table wrapping the application's state machine (what the node applies). */
  readonly sessionStateMachine: SessionStateMachine;
  readonly raft: RaftNode | null;
  readonly acceptor: Acceptor | null;
  readonly proposer: Proposer | null;
  readonly learner: Learner | null;
  /**
   * Whether this member leads now, with its term (Raft) or ballot round (Paxos): the member
   * that should run leader-only chores (a lease clock, for one).
   */
  leadership(): { readonly term: number; readonly ballot?: PaxosBallot } | null;
  /**
   * Where this member's service tells clients to send their next requests. Raft: this member (a
   * follower forwards to the leader, whose reply names itself). Paxos: the learner beside the
   * active proposer when there is one, whose requests reach that proposer without a NATS hop;
   * else this member's learner.
   */
  steerTo(): NodeId;
  status(): ReplicatedStatus;
  metrics(): ReplicatedMetrics;
  /** Stops serving, waits for writes in flight, stops consensus. Leaves the connection and storage open. */
  stop(): Promise<void>;
}

/** Proposes a session-open command and returns the session's client id. */
export async function openSession(node: ConsensusNode, name: string): Promise<ServiceReply<string>> {
  const result = decodeSessionResult(await node.propose(encodeOpenSession(name)));
  return result.ok ? { ok: true, value: decodeOpenedClient(result.result) } : sessionFailure(result);
}

/** Proposes a command in a session (null: no deduplication) and returns the state machine's result. */
export async function proposeInSession(
  node: ConsensusNode,
  session: SessionTag | null,
  command: Uint8Array,
): Promise<SessionResult> {
  return decodeSessionResult(await node.propose(encodeSessionCommand(session, command)));
}

/** The reply of a command the session table refused. */
export function sessionFailure(result: SessionResult & { ok: false }): ServiceReply<never> {
  return { ok: false, code: result.code, message: result.message, leader: null };
}

/**
 * Hosts a state machine as a replicated service on a NATS connection the application already
 * has: starts this member's Raft node (or Paxos roles) applying the state machine inside a
 * session table, and serves ReplicatedClient's requests on rpcSubject(scope, service). Every
 * member runs it with the same cluster, group and members.
 */
export async function serveReplicated(options: ServeReplicatedOptions): Promise<ReplicatedService> {
  const { nats, cluster, group, id } = options;
  const service = options.service ?? group;
  const logger = options.logger ?? silentLogger;
  assertToken("cluster", cluster);
  assertToken("group", group);
  assertToken("service", service);
  const sessionStateMachine = new SessionStateMachine(options.stateMachine, options.sessions);
  const transports = new Map<string, NatsTransport>();
  const closers: (() => Promise<void>)[] = [];
  // The Paxos roles of this member hand each other their directed frames without the server
  // (the learner's requests to its own proposer, its acceptor's votes to both).
  const colocated = new ColocatedTransports();
  const transportFor = (self: string): NatsTransport => {
    const transport = createNatsTransport({
      nc: nats,
      cluster,
      group,
      self,
      logger,
      prefix: options.prefix,
      colocated,
    });
    transports.set(self, transport);
    closers.push(() => transport.close());
    return transport;
  };
  const tick = {
    ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
    ...(options.timers === undefined ? {} : { timers: options.timers }),
  };
  let raft: RaftNode | null = null;
  let acceptor: Acceptor | null = null;
  let proposer: Proposer | null = null;
  let learner: Learner | null = null;
  try {
    if (options.protocol === "raft") {
      raft = await RaftNode.start({
        id,
        members: options.members,
        join: options.join === true,
        ...(options.snapshotThreshold === undefined ? {} : { snapshotThreshold: options.snapshotThreshold }),
        transport: transportFor(id),
        storage: options.storage,
        stateMachine: sessionStateMachine,
        ...tick,
        ...(options.raft === undefined ? {} : { raft: options.raft }),
        logger,
      });
      const started = raft;
      closers.push(() => started.stop());
    } else {
      const roles = options.roles ?? ["acceptor", "learner", "proposer"];
      const topology = resolveTopology({
        acceptors: options.acceptors.map((m) => paxosRoleId(m, "acceptor")),
        proposers: options.proposers.map((m) => paxosRoleId(m, "proposer")),
        learners: options.learners.map((m) => paxosRoleId(m, "learner")),
        ...(options.q1 === undefined ? {} : { q1: options.q1 }),
        ...(options.q2 === undefined ? {} : { q2: options.q2 }),
      });
      const paxos = options.paxos === undefined ? {} : { paxos: options.paxos };
      const storageOf = <T>(role: PaxosRoleName, storage: T | undefined): T => {
        if (storage === undefined) throw new QuorateError(ErrorCode.Config, `the ${role} role needs storage.${role}`);
        return storage;
      };
      if (roles.includes("acceptor")) {
        const self = paxosRoleId(id, "acceptor");
        const storage = storageOf("acceptor", options.storage.acceptor);
        const started = await Acceptor.start({
          id: self,
          topology,
          transport: transportFor(self),
          storage,
          logger,
          ...paxos,
        });
        closers.push(() => started.stop());
        acceptor = started;
      }
      if (roles.includes("learner")) {
        const self = paxosRoleId(id, "learner");
        const started = await Learner.start({
          id: self,
          topology,
          transport: transportFor(self),
          storage: storageOf("learner", options.storage.learner),
          stateMachine: sessionStateMachine,
          logger,
          ...tick,
          ...paxos,
          ...(options.checkpointInterval === undefined ? {} : { checkpointInterval: options.checkpointInterval }),
        });
        closers.push(() => started.stop());
        learner = started;
      }
      if (roles.includes("proposer")) {
        const self = paxosRoleId(id, "proposer");
        const storage = storageOf("proposer", options.storage.proposer);
        const started = await Proposer.start({
          id: self,
          topology,
          transport: transportFor(self),
          storage,
          logger,
          ...tick,
          ...paxos,
        });
        closers.push(() => started.stop());
        proposer = started;
      }
    }
  } catch (err) {
    await closeAll(closers);
    throw err;
  }
  const node: ConsensusNode | null = raft ?? learner;
  const leadership = (): { term: number; ballot?: PaxosBallot } | null => {
    if (raft !== null) return raft.role() === "leader" ? { term: raft.status().term } : null;
    // Paxos: the member whose proposer is active leads, its ballot's round telling one reign from the next.
    if (proposer === null || proposer.mode !== "active") return null;
    return { term: proposer.ballot[0], ballot: proposer.ballot };
  };

  const steerTo = (): NodeId => {
    if (options.protocol !== "paxos" || learner === null) return node?.id ?? id;
    const leader = learner.leader();
    const member = options.proposers.find((m) => paxosRoleId(m, "proposer") === leader);
    return member !== undefined && options.learners.includes(member) ? paxosRoleId(member, "learner") : learner.id;
  };

  // A Paxos member without a learner has no state to serve requests from: the others answer them.
  if (options.serve !== false && node !== null) {
    const server = serveReplicatedRequests(options, service, node, steerTo, logger);
    closers.push(() => server.close());
  }

  return {
    protocol: options.protocol,
    id,
    node,
    sessionStateMachine,
    raft,
    acceptor,
    proposer,
    learner,
    leadership,
    steerTo,
    status() {
      const roles: ReplicatedRoleStatus[] = [];
      if (raft !== null) roles.push({ ...raft.status(), protocol: "raft" });
      for (const role of [acceptor, learner, proposer]) if (role !== null) roles.push(role.status());
      return { protocol: options.protocol, cluster, group, id, roles };
    },
    metrics() {
      return {
        sessions: node === null ? 0 : sessionStateMachine.sessionCount,
        transport: Object.fromEntries([...transports].map(([self, t]) => [self, t.stats])),
      };
    },
    async stop() {
      await closeAll(closers);
    },
  };
}

/** Serves ReplicatedClient's open/command/query requests on the member that applies `stateMachine`. */
function serveReplicatedRequests(
  options: ServeReplicatedOptions,
  service: string,
  node: ConsensusNode,
  steerTo: () => NodeId,
  logger: Logger,
): RequestServer {
  const { stateMachine } = options;
  const queryable = "query" in stateMachine ? stateMachine : null;
  async function execute(request: ReplicatedRequest): Promise<ServiceReply> {
    switch (request.op) {
      case "open":
        return openSession(node, request.name);
      case "command": {
        if (queryable?.accepts !== undefined && !queryable.accepts(request.command)) {
          return { ok: false, code: ErrorCode.Rejected, message: `not a command of ${service}`, leader: null };
        }
        const result = await proposeInSession(node, request.session, request.command);
        return result.ok ? { ok: true, value: result.result } : sessionFailure(result);
      }
      case "query": {
        if (queryable === null) {
          return { ok: false, code: ErrorCode.Rejected, message: `${service} answers no queries`, leader: null };
        }
        await node.readBarrier();
        return { ok: true, value: queryable.query(request.query) };
      }
    }
  }
  return serveRequests({
    nc: options.nats,
    cluster: options.cluster,
    prefix: options.prefix,
    service,
    member: node.id,
    accepts: replicatedRequest,
    execute,
    steerTo,
    logger,
    ...(options.forwardTimeoutMs === undefined ? {} : { forwardTimeoutMs: options.forwardTimeoutMs }),
  });
}

/** Closes in reverse order of opening: the server, then roles, then transports. */
async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close();
}
