import type { NatsConnection } from "@nats-io/transport-node";
import {
  assertToken,
  ErrorCode,
  type Logger,
  type NodeId,
  QuorateError,
  silentLogger,
  type Timers,
} from "@quorate/core";
import { type GroupLeadership, type LeadershipMove, placeLeaders } from "./placement.js";
import {
  type PaxosServiceOptions,
  type RaftServiceOptions,
  type ReplicatedService,
  type ReplicatedStatus,
  serveReplicated,
} from "./replicated.js";
import { SharedTimers } from "./shared-timers.js";

/** Options every group of a member shares: serveGroups sets them. */
type SharedOption = "nats" | "cluster" | "id" | "group" | "prefix" | "tickMs" | "timers" | "logger";

/** The options of one group: those of serveReplicated, less what the groups share. */
export type GroupServiceOptions = Omit<RaftServiceOptions, SharedOption> | Omit<PaxosServiceOptions, SharedOption>;

/** Default time between two looks at the leaders by the placement rule. */
export const DEFAULT_PLACEMENT_INTERVAL_MS = 2_000;

export interface ServeGroupsOptions {
  /** One connection for every group's consensus traffic and requests. */
  readonly nats: NatsConnection;
  readonly cluster: string;
  readonly id: NodeId;
  /** The groups this member hosts: subject tokens, without repeats. */
  readonly groups: readonly string[];
  /**
   * The options of each group: its protocol, members, state machine and storage (for Raft, a
   * view of one shared environment: `openLmdbGroups(...).storage(group)`). Called once per group.
   */
  readonly group: (group: string) => GroupServiceOptions;
  readonly prefix?: string;
  /** Milliseconds per tick, for every group; they all tick on one shared interval timer. */
  readonly tickMs?: number;
  /**
   * Spread Raft leaders across members (placeLeaders), looking every `intervalMs` and making
   * at most one leadership transfer at a time. Default on; false leaves leaders where elections
   * put them. Paxos groups are left out: Paxos has no leadership transfer.
   */
  readonly placement?: false | { readonly intervalMs?: number };
  /** Underlying clock and timers. Default: the process's. */
  readonly timers?: Timers;
  readonly logger?: Logger;
}

/** A member's share of many consensus groups. */
export interface ReplicatedGroups {
  readonly cluster: string;
  readonly id: NodeId;
  /** The groups hosted, in the order given. */
  readonly groups: readonly string[];
  /** The running service of `group`; fails with Config for a group not hosted here. */
  service(group: string): ReplicatedService;
  /** Status of every group, in the order given. */
  status(): readonly ReplicatedStatus[];
  /**
   * The leader of each group as this member knows it (null: none known). Raft: the leader it
   * follows; Paxos: this member when its proposer leads, else null.
   */
  leaders(): ReadonlyMap<string, NodeId | null>;
  /** Leadership transfers the placement rule made from this member, successful or not. */
  readonly placementMoves: number;
  /** Stops placement, then every group (a leader hands its groups over first). Leaves connection and storage open. */
  stop(): Promise<void>;
}

/**
 * Hosts many consensus groups on one member: each group an independent Raft (or Paxos)
 * instance with its own log and state machine, all of them on one NATS connection and one
 * tick timer, and, with openLmdbGroups, one storage environment whose flushes they share.
 * Each group serves its requests on its own subject, as serveReplicated does.
 */
export async function serveGroups(options: ServeGroupsOptions): Promise<ReplicatedGroups> {
  const { nats, cluster, id } = options;
  const logger = options.logger ?? silentLogger;
  assertToken("cluster", cluster);
  const names = [...options.groups];
  if (names.length === 0) throw new QuorateError(ErrorCode.Config, "serveGroups needs at least one group");
  for (const name of names) assertToken("group", name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined) throw new QuorateError(ErrorCode.Config, `group ${duplicate} is listed twice`);

  const intervalMs = options.placement === false ? undefined : options.placement?.intervalMs;
  if (intervalMs !== undefined && (!Number.isSafeInteger(intervalMs) || intervalMs < 1)) {
    throw new QuorateError(ErrorCode.Config, `placement.intervalMs must be a positive integer (got ${intervalMs})`);
  }
  const timers = new SharedTimers(options.timers);
  const services = new Map<string, ReplicatedService>();
  const started = await Promise.allSettled(
    names.map(async (group) => {
      const service = await serveReplicated({
        ...options.group(group),
        nats,
        cluster,
        id,
        group,
        timers,
        logger,
        ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
        ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
      });
      services.set(group, service);
    }),
  );
  const failed = started.find((result) => result.status === "rejected");
  if (failed !== undefined) {
    await Promise.all([...services.values()].map((service) => service.stop()));
    throw failed.reason;
  }

  const leaderOf = (service: ReplicatedService | undefined): NodeId | null => {
    if (service === undefined) return null;
    if (service.raft !== null) return service.raft.leader();
    // Paxos: a member knows only whether its own proposer leads.
    return service.leadership() === null ? null : id;
  };
  const leaders = (): Map<string, NodeId | null> =>
    new Map(names.map((group) => [group, leaderOf(services.get(group))]));
  const placement = options.placement === false ? null : startPlacement(id, names, services, timers, logger, options);

  return {
    cluster,
    id,
    groups: names,
    service(group) {
      const service = services.get(group);
      if (service === undefined) {
        throw new QuorateError(ErrorCode.Config, `group ${group} is not hosted by member ${id} (hosted: ${names})`);
      }
      return service;
    },
    status: () => names.map((group) => services.get(group)?.status()).filter((s) => s !== undefined),
    leaders,
    get placementMoves() {
      return placement?.moves ?? 0;
    },
    async stop() {
      await placement?.stop();
      await Promise.all([...services.values()].map((service) => service.stop()));
    },
  };
}

interface Placement {
  readonly moves: number;
  stop(): Promise<void>;
}

/** Looks at the leaders every interval and makes the first transfer placeLeaders asks for. */
function startPlacement(
  id: NodeId,
  names: readonly string[],
  services: ReadonlyMap<string, ReplicatedService>,
  timers: Timers,
  logger: Logger,
  options: ServeGroupsOptions,
): Placement {
  const intervalMs =
    (options.placement === false ? undefined : options.placement?.intervalMs) ?? DEFAULT_PLACEMENT_INTERVAL_MS;
  let moves = 0;
  let inFlight: Promise<void> | null = null;
  const view = (): GroupLeadership[] =>
    names.flatMap((group) => {
      const raft = services.get(group)?.raft;
      return raft === null || raft === undefined
        ? []
        : [{ group, leader: raft.leader(), voters: raft.status().voters }];
    });
  const transfer = async (move: LeadershipMove): Promise<void> => {
    moves++;
    try {
      const leader = await services.get(move.group)?.raft?.transferLeadership(move.to);
      logger.info("placement moved leadership", { group: move.group, from: move.from, to: move.to, leader });
    } catch (err) {
      // A transfer fails when leadership changed meanwhile, or the target lagged: the next look retries.
      logger.debug("placement transfer failed", { group: move.group, to: move.to, error: String(err) });
    }
  };
  const handle = timers.setInterval(() => {
    if (inFlight !== null) return;
    const [move] = placeLeaders(id, view());
    if (move === undefined) return;
    inFlight = transfer(move).finally(() => {
      inFlight = null;
    });
  }, intervalMs);
  return {
    get moves() {
      return moves;
    },
    async stop() {
      timers.clearInterval(handle);
      await inFlight;
    },
  };
}
