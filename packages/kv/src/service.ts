import type { NatsConnection } from "@nats-io/transport-node";
import {
  assertToken,
  type ConsensusNode,
  ErrorCode,
  type Logger,
  type NodeId,
  QuorateError,
  realTimers,
  silentLogger,
  type Timers,
} from "@quorate/core";
import {
  encodeSessionCommand,
  openSession,
  proposeInSession,
  publishChanges,
  serveRequests,
  sessionFailure,
} from "@quorate/service";
import { decodeKvResult, encodeKvCommand, type KvValue } from "./commands.js";
import { startLeaseTicker } from "./lease-ticker.js";
import {
  assertKvGroup,
  decodeJsonRequest,
  encodeJson,
  KV_GROUP,
  type KvListedEntry,
  type KvReply,
  type KvRequest,
  type KvWatchBatch,
  type KvWatchRequest,
  type KvWriteRequest,
  kvRequest,
  WATCH_INTEREST_MS,
  watchSubject,
} from "./protocol.js";
import type { KvChange, KvEvent, KvStateMachine } from "./state-machine.js";

/** The process's timers, whose intervals do not keep the process alive (the lease ticker's). */
const unrefTimers: Timers = {
  ...realTimers,
  setInterval: (callback, ms) => setInterval(callback, ms).unref(),
};

const DEFAULT_WATCH_HEARTBEAT_MS = 1_000;
const DEFAULT_LEASE_TICK_MS = 250;
/** The max_payload NATS servers default to, for a connection that has not said otherwise. */
const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Room for everything in a reply but the entries. */
const REPLY_OVERHEAD_BYTES = 4096;
/** Generous room for an entry's revisions and msgpack framing. */
const ENTRY_OVERHEAD_BYTES = 64;

/** An upper bound of a key's and value's bytes in msgpack (UTF-8 takes at most 3 bytes per UTF-16 unit). */
function sizeBytes(key: string, value: KvValue | null | undefined): number {
  const valueBytes =
    value === null || value === undefined ? 0 : typeof value === "string" ? value.length * 3 : value.byteLength;
  return key.length * 3 + valueBytes + ENTRY_OVERHEAD_BYTES;
}

export interface KvServiceOptions {
  readonly nc: NatsConnection;
  readonly cluster: string;
  /**
   * The consensus group `node` replicates: the service answers on its token and publishes
   * changes on its watch subjects (see KV_GROUP). Default KV_GROUP, "kv".
   */
  readonly group?: string;
  /**
   * This member's consensus node. It must apply a SessionStateMachine wrapping `store`:
   * writes are proposed as session commands and their results decoded as session results.
   */
  readonly node: ConsensusNode;
  /** The KV state machine the node applies to, read locally after a read barrier. */
  readonly store: KvStateMachine;
  readonly logger?: Logger;
  readonly prefix?: string;
  /** How long a request forwarded to the leader waits for its reply. */
  readonly forwardTimeoutMs?: number;
  /**
   * How often this member tells watchers its revision when nothing changes, so that they notice a
   * change they missed, or that this member went silent. Default 1000 ms; KvClient's
   * `watchIdleMs` should be a few times this.
   */
  readonly watchHeartbeatMs?: number;
  /**
   * Whether this member leads now, and its term (Raft) or ballot round (Paxos): the member that
   * leads proposes the ticks of the lease clock. Raft: `node.role() === "leader"` with the
   * node's term; Paxos: the learner's member's proposer is active, with its ballot's round.
   * Default: `node.leader() === node.id`, as term 0 (then only a change of leader, or a reign
   * this service saw end, resets the clock's count; see KvStateMachine).
   */
  readonly leadership?: () => { readonly term: number } | null;
  /** How often the member that leads advances the lease clock while leases exist. Default 250 ms. */
  readonly leaseTickMs?: number;
  /**
   * The member a successful reply tells clients to send their next requests to. Default: this
   * member. Paxos: `ReplicatedService.steerTo`, the learner beside the active proposer.
   */
  readonly steerTo?: () => NodeId;
}

export interface KvService {
  /** Stops answering requests. Does not close the NATS connection. */
  close(): Promise<void>;
}

function watchMatches(request: KvWatchRequest): (event: KvEvent) => boolean {
  const { key, prefix } = request;
  if (key !== undefined && key !== null) return (event) => event.key === key;
  const start = prefix ?? "";
  return (event) => event.key.startsWith(start);
}

/**
 * Serves KvClient requests on one consensus member: on the cluster's KV subject, in a queue
 * group so that one member answers each request, and on this member's own KV subject, where
 * other members forward requests when they know this member leads.
 */
export function createKvService(options: KvServiceOptions): KvService {
  const { nc, cluster, node, store, prefix } = options;
  const group = options.group ?? KV_GROUP;
  assertKvGroup(group);
  const logger = options.logger ?? silentLogger;
  const watchHeartbeatMs = options.watchHeartbeatMs ?? DEFAULT_WATCH_HEARTBEAT_MS;
  const leaseTickMs = options.leaseTickMs ?? DEFAULT_LEASE_TICK_MS;
  const leadership = options.leadership ?? (() => (node.leader() === node.id ? { term: 0 } : null));
  assertToken("cluster", cluster);
  for (const [name, value] of Object.entries({ watchHeartbeatMs, leaseTickMs })) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new QuorateError(ErrorCode.Config, `${name} must be a positive integer (got ${value})`);
    }
  }
  const scope = { cluster, prefix };

  /** Half the server's max_payload: what the entries of one reply may take. */
  function replyBudgetBytes(): number {
    return Math.floor((nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES) / 2) - REPLY_OVERHEAD_BYTES;
  }

  async function execute(request: KvRequest): Promise<KvReply> {
    switch (request.op) {
      case "get":
        await node.readBarrier();
        return { ok: true, value: store.read(request.key) };
      case "entry":
        await node.readBarrier();
        return { ok: true, value: store.entry(request.key) };
      case "lease":
        await node.readBarrier();
        return { ok: true, value: store.lease(request.lease) };
      case "range": {
        await node.readBarrier();
        const entries: KvListedEntry[] = [];
        let budget = replyBudgetBytes();
        for (const [key, entry] of store.range(request.prefix, request.fromKey ?? undefined)) {
          const { value, ...revisions } = entry;
          budget -= sizeBytes(key, request.keysOnly ? null : value);
          // Every page holds at least one entry, so a caller always makes progress.
          if (entries.length === request.limit || (entries.length > 0 && budget < 0)) {
            return { ok: true, value: { entries, next: key } };
          }
          entries.push(request.keysOnly ? { key, ...revisions } : { key, value, ...revisions });
        }
        return { ok: true, value: { entries, next: null } };
      }
      case "watch":
        return watchBatch(request);
      case "open":
        return openSession(node, request.name);
      default:
        return write(request);
    }
  }

  /** The changes a watcher asked for, from this member's window: never forwarded, never proposed. */
  async function watchBatch(request: KvWatchRequest): Promise<KvReply> {
    if (request.after === undefined || request.after === null) {
      // "From now on": now is a linearizable read point.
      await node.readBarrier();
      // Interest before the reply's revision is read: every change after it is published.
      changeFeed.interested();
      return { ok: true, value: { member: node.id, revision: store.revision, changes: [] } satisfies KvWatchBatch };
    }
    const after = request.after;
    changeFeed.interested();
    const window = store.changesAfter(after);
    if (window === null) {
      const oldestRevision = store.oldestWatchableRevision;
      const message = `member ${node.id} keeps changes from revision ${oldestRevision} on; revision ${after + 1} was compacted`;
      return { ok: false, code: ErrorCode.Compacted, message, leader: null, oldestRevision };
    }
    const matches = watchMatches(request);
    const changes: KvChange[] = [];
    let budget = replyBudgetBytes();
    for (const change of window) {
      const events = change.events.filter(matches);
      if (events.length === 0) continue;
      for (const event of events) budget -= sizeBytes(event.key, event.value);
      if (changes.length === request.limit || (changes.length > 0 && budget < 0)) {
        // Complete through the change before this one.
        return { ok: true, value: { member: node.id, revision: change.previous, changes } };
      }
      changes.push(events.length === change.events.length ? change : { ...change, events });
    }
    return { ok: true, value: { member: node.id, revision: Math.max(after, store.revision), changes } };
  }

  async function write(request: KvWriteRequest): Promise<KvReply> {
    const result = await proposeInSession(node, request.session, encodeKvCommand(request));
    if (!result.ok) return sessionFailure(result);
    const kv = decodeKvResult(result.result);
    if (kv === null) throw new QuorateError(ErrorCode.Invariant, "the state machine returned a malformed KV result");
    return kv.ok ? { ok: true, value: kv.value } : { ok: false, code: kv.code, message: kv.message, leader: null };
  }

  const server = serveRequests({
    nc,
    cluster,
    prefix,
    service: group,
    member: node.id,
    accepts: kvRequest,
    execute,
    json: { decode: decodeJsonRequest, encode: encodeJson },
    ...(options.forwardTimeoutMs === undefined ? {} : { forwardTimeoutMs: options.forwardTimeoutMs }),
    ...(options.steerTo === undefined ? {} : { steerTo: options.steerTo }),
    logger,
  });

  /** Watch fan-out: every change this member applies, and a heartbeat, on its watch subject. */
  const changeFeed = publishChanges({
    nc,
    subject: watchSubject(scope, node.id, group),
    source: store,
    heartbeat: (revision): KvChange => ({ previous: revision, revision, events: [] }),
    heartbeatMs: watchHeartbeatMs,
    interestMs: WATCH_INTEREST_MS,
    logger,
  });

  // The lease clock's ticks, proposed while this member leads (startLeaseTicker).
  const leaseTicker = startLeaseTicker({
    by: node.id,
    timers: unrefTimers,
    tickMs: leaseTickMs,
    store,
    leadership,
    propose: (tick) =>
      node
        .propose(encodeSessionCommand(null, encodeKvCommand({ op: "tick", ...tick })))
        .catch((err: unknown) =>
          logger.debug("lease clock tick failed", { elapsedMs: tick.elapsedMs, error: String(err) }),
        ),
  });

  return {
    async close() {
      leaseTicker.stop();
      changeFeed.close();
      if (nc.isClosed()) return;
      await server.close();
    },
  };
}
