import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { assertToken, ErrorCode, QuorateError, type Validator } from "@quorate/core";
import {
  ChangeSubscription,
  checkCallerOptions,
  checkTimeout,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MAX_BACKOFF_MS,
  ServiceCaller,
} from "@quorate/service";
import { Attr } from "@quorate/telemetry";
import { connectNats, type NatsConnectOptions } from "@quorate/transport-nats";
import {
  type KvEntry,
  type KvTxn,
  type KvTxnResult,
  type KvValue,
  kvEntry,
  kvKey,
  kvTxnResult,
  kvValue,
  leaseId,
  MAX_KEY_LENGTH,
  MAX_LEASE_TTL_MS,
  MAX_TXN_OPS,
  MIN_LEASE_TTL_MS,
} from "./commands.js";
import {
  assertKvGroup,
  KV_GROUP,
  KvCompactedError,
  type KvRange,
  type KvReply,
  type KvReplyValue,
  type KvRequest,
  type KvWatchBatch,
  type KvWriteRequest,
  kvChange,
  kvLeaseInfo,
  kvRange,
  kvReply,
  kvWatchBatch,
  MAX_RANGE_LIMIT,
  WATCH_RENEW_MS,
  watchSubject,
} from "./protocol.js";
import type { KvChange, KvEvent, KvLeaseInfo } from "./state-machine.js";

const DEFAULT_WATCH_IDLE_MS = 3_000;
/** Changes a watch holds from its member's subject while its consumer is busy; beyond, it catches up by request. */
const MAX_WATCH_QUEUE = 10_000;
/** How many more members a watch asks after one answered QUORATE_COMPACTED, before it fails. */
const MAX_COMPACTED_RETRIES = 5;

export interface KvClientOptions {
  /**
   * A NATS connection to use, which `close()` leaves open; or server URL(s) or connection
   * options, for a connection the client makes and closes itself.
   */
  readonly nats: NatsConnection | string | readonly string[] | NatsConnectOptions;
  readonly cluster: string;
  readonly prefix?: string;
  /** The consensus group holding the keys: a KV service of that group answers (see KV_GROUP). Default "kv". */
  readonly group?: string;
  /** How long one call may take, retries included. Default 10 s. */
  readonly timeoutMs?: number;
  /** How long one attempt waits for a reply. Default 2 s. */
  readonly requestTimeoutMs?: number;
  /** Names this client's sessions in the replicated session table. A random UUID by default. */
  readonly clientId?: string;
  /**
   * Fail at once with Unreachable when no KV member is subscribed (NATS "no responders"),
   * instead of retrying until `timeoutMs`. For tools, where it means a wrong cluster name or
   * server; a service keeps the default (false) to ride out members restarting.
   */
  readonly failWithoutResponders?: boolean;
  /**
   * A watch that hears nothing from the member it follows for this long (not even the member's
   * heartbeat, every `watchHeartbeatMs` of the service) moves to another member. Default 3 s.
   */
  readonly watchIdleMs?: number;
}

/** What a watch follows: one key, or every key starting with a prefix ("" for all). */
export type KvWatchTarget = { readonly key: string } | { readonly prefix: string };

export interface KvWatchOptions {
  /**
   * The first revision to deliver. Changes from it on are replayed from a member's window of
   * recent changes; older than the window fails with QUORATE_COMPACTED (a KvCompactedError).
   * Default: changes after the call, from a linearizable read point.
   */
  readonly fromRevision?: number;
}

/** Options of a range: at most `limit` (≤ MAX_RANGE_LIMIT) keys, from `fromKey` on (inclusive). */
export interface KvRangeOptions {
  readonly limit?: number;
  readonly fromKey?: string;
}

/** A key of a `list` page: its value and revisions. */
export interface KvKeyEntry extends KvEntry {
  readonly key: string;
}

/** A page of a range. `next` is the `fromKey` that continues it, or null after the last key. */
export interface KvPage<T> {
  readonly items: readonly T[];
  readonly next: string | null;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A write as the client builds it; the session tag is added per attempt. */
type WriteCommand = DistributiveOmit<KvWriteRequest, "session" | "hops">;

const isRevision = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isRevisionOrNull = (v: unknown): v is number | null => v === null || isRevision(v);
const isEntryOrNull = (v: unknown): v is KvEntry | null => v === null || kvEntry(v);
const isBoolean = (v: unknown): v is boolean => typeof v === "boolean";
const isStoredValue = (v: unknown): v is KvValue | null => v === null || kvValue(v);
const isLeaseInfoOrNull = (v: unknown): v is KvLeaseInfo | null => v === null || kvLeaseInfo(v);

/** Options of a put, create or update: the lease the key is attached to (none by default). */
export interface KvWriteOptions {
  readonly lease?: number;
}

function checkLease(lease: unknown): asserts lease is number {
  if (!leaseId(lease)) throw new QuorateError(ErrorCode.Config, `a lease id must be a positive integer (got ${lease})`);
}

/** The lease field of a write, checked: absent without one. */
function leaseField(options: KvWriteOptions): { lease?: number } {
  if (options.lease === undefined) return {};
  checkLease(options.lease);
  return { lease: options.lease };
}

function checkKey(key: unknown): asserts key is string {
  if (!kvKey(key)) {
    throw new QuorateError(ErrorCode.Config, `a key must be a string of 1 to ${MAX_KEY_LENGTH} characters`);
  }
}

function checkValue(what: string, value: unknown): asserts value is KvValue {
  if (!kvValue(value)) throw new QuorateError(ErrorCode.Config, `${what} must be a string or a Uint8Array`);
}

function checkRevision(name: string, value: unknown): asserts value is number {
  if (!isRevision(value)) throw new QuorateError(ErrorCode.Config, `${name} must be a non-negative integer revision`);
}

function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string" || prefix.length > MAX_KEY_LENGTH) {
    throw new QuorateError(ErrorCode.Config, `a prefix must be a string of at most ${MAX_KEY_LENGTH} characters`);
  }
}

/** Decoded bytes are Buffers; callers get plain Uint8Arrays, as they put them. */
function plainValue(value: KvValue | null): KvValue | null {
  return value instanceof Uint8Array ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : value;
}

function plainEntry<T extends { readonly value?: KvValue | null }>(entry: T): T {
  return entry.value === undefined ? entry : { ...entry, value: plainValue(entry.value) };
}

/**
 * A client of the replicated KV service. Writes run in a session, so a retried write is
 * applied at most once; see the package README for the retry and error semantics.
 */
export class KvClient {
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  readonly #scope: { cluster: string; prefix: string | undefined };
  readonly #group: string;
  readonly #caller: ServiceCaller<KvRequest, KvReply>;
  readonly #requestTimeoutMs: number;
  readonly #watchIdleMs: number;
  /** The subscriptions of running watches, closed with the client. */
  readonly #feeds = new Set<ChangeSubscription<KvChange>>();
  /** Leases kept alive in the background, stopped with the client. */
  readonly #leases = new Set<KvLease>();
  #closed = false;

  private constructor(
    nc: NatsConnection,
    ownsConnection: boolean,
    options: KvClientOptions,
    name: string,
    requestTimeoutMs: number,
    watchIdleMs: number,
  ) {
    this.#nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#scope = { cluster: options.cluster, prefix: options.prefix };
    this.#group = options.group ?? KV_GROUP;
    this.#caller = new ServiceCaller({
      nc,
      cluster: options.cluster,
      prefix: options.prefix,
      service: this.#group,
      name,
      requestTimeoutMs,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.failWithoutResponders === undefined ? {} : { failWithoutResponders: options.failWithoutResponders }),
      reply: kvReply,
      replyError: (reply, code) =>
        reply.code === ErrorCode.Compacted
          ? new KvCompactedError(reply.message, reply.oldestRevision ?? 0)
          : new QuorateError(code, reply.message, { leader: reply.leader }),
    });
    this.#requestTimeoutMs = requestTimeoutMs;
    this.#watchIdleMs = watchIdleMs;
  }

  static async connect(options: KvClientOptions): Promise<KvClient> {
    assertToken("cluster", options.cluster);
    if (options.group !== undefined) assertKvGroup(options.group);
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const watchIdleMs = options.watchIdleMs ?? DEFAULT_WATCH_IDLE_MS;
    checkTimeout("watchIdleMs", watchIdleMs);
    const name = options.clientId ?? randomUUID();
    checkCallerOptions({ name, timeoutMs: options.timeoutMs, requestTimeoutMs });
    const { nc, owned } = await kvConnection(options.nats, `quorate-kv-client-${name}`);
    return new KvClient(nc, owned, options, name, requestTimeoutMs, watchIdleMs);
  }

  /** The value stored under `key` (a string or bytes, as it was put), or null. Linearizable. */
  async get(key: string): Promise<KvValue | null> {
    checkKey(key);
    return this.#traced("get", key, async () =>
      plainValue(await this.#idempotent({ op: "get", key }, this.#deadline(), isStoredValue)),
    );
  }

  /** The value of `key` with its revisions, or null. Linearizable. */
  async entry(key: string): Promise<KvEntry | null> {
    checkKey(key);
    return this.#traced("entry", key, async () => {
      const entry = await this.#idempotent({ op: "entry", key }, this.#deadline(), isEntryOrNull);
      return entry === null ? null : plainEntry(entry);
    });
  }

  /**
   * Sets `key`; resolves to the write's revision. With `lease`, the key is attached to that
   * lease and deleted when it ends (QUORATE_LEASE_NOT_FOUND if it ended already); without, the
   * key is attached to none, even if it was before.
   */
  async put(key: string, value: KvValue, options: KvWriteOptions = {}): Promise<number> {
    checkKey(key);
    checkValue("value", value);
    const lease = leaseField(options);
    return this.#traced("put", key, () => this.#write({ op: "put", key, value, ...lease }, isRevision));
  }

  /**
   * Sets `key` only if it is absent; resolves to the write's revision (its createRevision), or
   * null if it existed. `lease` as for `put`.
   */
  async create(key: string, value: KvValue, options: KvWriteOptions = {}): Promise<number | null> {
    checkKey(key);
    checkValue("value", value);
    const lease = leaseField(options);
    return this.#traced("create", key, () => this.#write({ op: "create", key, value, ...lease }, isRevisionOrNull));
  }

  /**
   * Sets `key` only if its last write has revision `revision` (as `entry` returned it); resolves
   * to the new revision, or null when the key changed since, or is absent. `lease` as for `put`.
   */
  async update(key: string, value: KvValue, revision: number, options: KvWriteOptions = {}): Promise<number | null> {
    checkKey(key);
    checkValue("value", value);
    checkRevision("revision", revision);
    const lease = leaseField(options);
    return this.#traced("update", key, () =>
      this.#write({ op: "update", key, value, revision, ...lease }, isRevisionOrNull),
    );
  }

  /**
   * Grants a lease of `ttlMs` (MIN_LEASE_TTL_MS to MAX_LEASE_TTL_MS); resolves to its id. It
   * ends, deleting the keys attached to it, once `ttlMs` passed by the cluster's lease clock
   * without a keep-alive. Use `lease()` for a lease this client keeps alive by itself.
   */
  async grant(ttlMs: number): Promise<number> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_LEASE_TTL_MS || ttlMs > MAX_LEASE_TTL_MS) {
      throw new QuorateError(
        ErrorCode.Config,
        `a lease's ttlMs must be an integer from ${MIN_LEASE_TTL_MS} to ${MAX_LEASE_TTL_MS} (got ${ttlMs})`,
      );
    }
    return this.#traced("grant", "", () => this.#write({ op: "grant", ttlMs }, isRevision));
  }

  /** Gives `lease` its full TTL again, once; resolves to the TTL. QUORATE_LEASE_NOT_FOUND if it ended. */
  async keepAliveOnce(lease: number): Promise<number> {
    checkLease(lease);
    return this.#traced("keepAlive", "", () => this.#write({ op: "keepAlive", lease }, isRevision));
  }

  /** Ends `lease` now and deletes its keys; resolves to whether it was live. */
  async revoke(lease: number): Promise<boolean> {
    checkLease(lease);
    return this.#traced("revoke", "", () => this.#write({ op: "revoke", lease }, isBoolean));
  }

  /** The remaining TTL of `lease` by the cluster's lease clock, and its keys; null once it ended. Linearizable. */
  async timeToLive(lease: number): Promise<KvLeaseInfo | null> {
    checkLease(lease);
    return this.#traced("lease", "", () =>
      this.#idempotent({ op: "lease", lease }, this.#deadline(), isLeaseInfoOrNull),
    );
  }

  /**
   * Grants a lease of `ttlMs` and keeps it alive in the background (a keep-alive every third
   * of the TTL) until `revoke()`, `stop()`, or this client's `close()`; see KvLease.
   */
  async lease(ttlMs: number): Promise<KvLease> {
    const sentAt = performance.now();
    const id = await this.grant(ttlMs);
    return this.#keep(id, ttlMs, sentAt);
  }

  /** Keeps the existing `lease`, of `ttlMs`, alive in the background, from a keep-alive sent now; see `lease()`. */
  keepAlive(lease: number, ttlMs: number): KvLease {
    checkLease(lease);
    return this.#keep(lease, ttlMs, null);
  }

  #keep(lease: number, ttlMs: number, renewedAt: number | null): KvLease {
    if (this.#closed) throw new QuorateError(ErrorCode.Closed, "the KV client is closed");
    const kept = new KvLease(lease, ttlMs, renewedAt, {
      keepAlive: () => this.keepAliveOnce(lease),
      revoke: () => this.revoke(lease),
      forget: () => this.#leases.delete(kept),
    });
    this.#leases.add(kept);
    return kept;
  }

  /**
   * Deletes `key`; resolves to whether it deleted it. With `revision`, only if the key's last
   * write has that revision (compare-and-delete).
   */
  async delete(key: string, options: { readonly revision?: number } = {}): Promise<boolean> {
    checkKey(key);
    const { revision } = options;
    if (revision !== undefined) checkRevision("revision", revision);
    const command: WriteCommand = revision === undefined ? { op: "delete", key } : { op: "delete", key, revision };
    return this.#traced("delete", key, () => this.#write(command, isBoolean));
  }

  /**
   * Sets `key` to `value` if it holds `expected` (same type and content), or, with `expected`
   * null, if it is absent. Resolves to whether it did.
   */
  async cas(key: string, expected: KvValue | null, value: KvValue): Promise<boolean> {
    checkKey(key);
    if (expected !== null) checkValue("expected", expected);
    checkValue("value", value);
    return this.#traced("cas", key, () => this.#write({ op: "cas", key, expected, value }, isBoolean));
  }

  /**
   * A transaction: if every compare holds (a key's value, its revision, or its absence), the
   * `success` writes are applied, otherwise the `failure` writes; all at one revision, or none.
   * At most MAX_TXN_OPS compares and writes per branch, each key written at most once per branch.
   */
  async txn(txn: KvTxn): Promise<KvTxnResult> {
    const { compare, success, failure = [] } = txn;
    for (const list of [compare, success, failure]) {
      if (!Array.isArray(list) || list.length > MAX_TXN_OPS) {
        throw new QuorateError(
          ErrorCode.Config,
          `a transaction takes at most ${MAX_TXN_OPS} compares and writes per branch`,
        );
      }
    }
    for (const c of compare) {
      checkKey(c.key);
      if ("value" in c) checkValue("a compared value", c.value);
      else if ("revision" in c) checkRevision("a compared revision", c.revision);
      else if (c.absent !== true)
        throw new QuorateError(ErrorCode.Config, "a compare needs value, revision or absent: true");
    }
    for (const branch of [success, failure]) {
      for (const op of branch) {
        checkKey(op.key);
        if (op.op === "put") checkValue("a put value", op.value);
      }
      if (new Set(branch.map((op) => op.key)).size !== branch.length) {
        throw new QuorateError(ErrorCode.Config, "a transaction branch writes each key at most once");
      }
    }
    const command: WriteCommand = { op: "txn", compare: [...compare], success: [...success], failure: [...failure] };
    const key = compare[0]?.key ?? success[0]?.key ?? failure[0]?.key ?? "";
    return this.#traced("txn", key, () => this.#write(command, kvTxnResult));
  }

  /** The keys starting with `prefix` ("" for all), in code-unit order, one page. Linearizable. */
  async keys(prefix: string, options: KvRangeOptions = {}): Promise<KvPage<string>> {
    const page = await this.#range(prefix, options, true);
    return { items: page.entries.map((e) => e.key), next: page.next };
  }

  /** The entries (values and revisions) of the keys starting with `prefix`, one page. Linearizable. */
  async list(prefix: string, options: KvRangeOptions = {}): Promise<KvPage<KvKeyEntry>> {
    const page = await this.#range(prefix, options, false);
    const items = page.entries.map((e): KvKeyEntry => {
      if (e.value === undefined) throw new QuorateError(ErrorCode.Invariant, "a list reply lacks a value");
      return {
        key: e.key,
        value: plainValue(e.value) as KvValue,
        revision: e.revision,
        createRevision: e.createRevision,
        version: e.version,
        ...(e.lease === undefined || e.lease === null ? {} : { lease: e.lease }),
      };
    });
    return { items, next: page.next };
  }

  /**
   * The changes of `target`, in revision order, each once: an async iterator that follows one
   * member's change subject and resumes by itself (from the last revision it delivered) when the
   * member falls silent, the connection drops or publications are lost. Stop it with `break` in a
   * `for await`, or `return()`; closing the client ends it. It throws a KvCompactedError when the
   * changes it needs are older than a member keeps, and QuorateErrors for bad arguments.
   */
  watch(target: KvWatchTarget, options: KvWatchOptions = {}): KvWatch {
    if ("key" in target) checkKey(target.key);
    else checkPrefix(target.prefix);
    const { fromRevision } = options;
    if (fromRevision !== undefined) checkRevision("fromRevision", fromRevision);
    if (this.#closed) throw new QuorateError(ErrorCode.Closed, "the KV client is closed");
    const control: WatchControl = { stopped: false, feed: null };
    return new KvWatch(this.#watch(target, fromRevision, control), control);
  }

  async #range(prefix: string, options: KvRangeOptions, keysOnly: boolean): Promise<KvRange> {
    checkPrefix(prefix);
    const { limit = MAX_RANGE_LIMIT, fromKey } = options;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_RANGE_LIMIT) {
      throw new QuorateError(ErrorCode.Config, `limit must be an integer from 1 to ${MAX_RANGE_LIMIT} (got ${limit})`);
    }
    if (fromKey !== undefined) checkKey(fromKey);
    const request: KvRequest = { op: "range", prefix, limit, keysOnly, ...(fromKey === undefined ? {} : { fromKey }) };
    return this.#traced(keysOnly ? "keys" : "list", prefix, () => this.#idempotent(request, this.#deadline(), kvRange));
  }

  /**
   * The watch loop: catch up by request from a member's window, then follow that member's
   * change subject; on a gap (a change whose `previous` is past what was delivered) catch up
   * from the same member again, on silence from any member. `position` is the revision through
   * which every matching change was delivered: a change at or below it is never delivered again.
   */
  async *#watch(
    target: KvWatchTarget,
    fromRevision: number | undefined,
    control: WatchControl,
  ): AsyncGenerator<KvEvent, void, undefined> {
    const filter = "key" in target ? { key: target.key } : { prefix: target.prefix };
    const matches =
      "key" in target ? (e: KvEvent) => e.key === target.key : (e: KvEvent) => e.key.startsWith(target.prefix);
    let position: number | null = fromRevision === undefined ? null : Math.max(0, fromRevision - 1);
    let member: string | null = null;
    let feed: ChangeSubscription<KvChange> | null = null;
    let failures = 0;
    let compactedReplies = 0;
    const deliver = function* (change: KvChange): Generator<KvEvent> {
      for (const event of change.events) if (matches(event)) yield { ...event, value: plainValue(event.value) };
    };
    try {
      while (!this.#closed && !control.stopped) {
        // Catch up: the changes after `position` from `member`'s window (any member's when null).
        const followingBefore = feed !== null;
        const request: KvRequest = {
          op: "watch",
          ...filter,
          limit: MAX_RANGE_LIMIT,
          ...(position === null ? {} : { after: position }),
        };
        const requestedAt = performance.now();
        const outcome = await this.#caller.attempt(
          request,
          performance.now() + this.#requestTimeoutMs,
          kvWatchBatch,
          member,
        );
        if (!outcome.ok) {
          // Closing the client (or stopping the watch) mid-request ends the watch, without an error.
          if (this.#closed || control.stopped) return;
          // A member that restored a snapshot lacks changes that others may still keep: before
          // giving up, ask the queue group (another member, likely) a few times.
          const compacted = outcome.error.code === ErrorCode.Compacted;
          if (!outcome.retriable && !(compacted && compactedReplies++ < MAX_COMPACTED_RETRIES)) throw outcome.error;
          // The member may be gone, or lack the changes: any member will do next.
          member = null;
          feed?.close();
          feed = null;
          if (!(await this.#caller.backoff(failures++, Number.POSITIVE_INFINITY))) return;
          continue;
        }
        failures = 0;
        compactedReplies = 0;
        const batch: KvWatchBatch = outcome.value;
        if (batch.member !== member || feed === null) {
          feed?.close();
          member = batch.member;
          feed = this.#follow(member);
          control.feed = feed;
          if (control.stopped) return;
        }
        for (const change of batch.changes) {
          if (position !== null && change.revision <= position) continue;
          yield* deliver(change);
          position = change.revision;
        }
        position = Math.max(position ?? 0, batch.revision);
        // Caught up once a request sent while following returned nothing new: every later
        // change reaches the feed, or shows as a gap there.
        if (!followingBefore || batch.changes.length > 0) continue;
        // Since when the member has been behind what was delivered already (a member that
        // stopped applying still sends heartbeats): after watchIdleMs of it, another member.
        let behindSince: number | null = null;
        for (;;) {
          const next = await feed.next(this.#watchIdleMs);
          if (next === "closed") return;
          const now = performance.now();
          if (typeof next === "object") behindSince = next.revision < position ? (behindSince ?? now) : null;
          if (next === "idle" || (behindSince !== null && now - behindSince > this.#watchIdleMs)) {
            member = null;
            feed.close();
            feed = null;
            break;
          }
          if (next === "overflow") break;
          // Ask the member again now and then, renewing its interest in publishing for us.
          if (now - requestedAt >= WATCH_RENEW_MS) break;
          if (next.revision <= position) continue;
          if (next.previous > position) break;
          yield* deliver(next);
          position = next.revision;
        }
      }
    } finally {
      feed?.close();
    }
  }

  #follow(member: string): ChangeSubscription<KvChange> {
    const feed: ChangeSubscription<KvChange> = new ChangeSubscription({
      nc: this.#nc,
      subject: watchSubject(this.#scope, member, this.#group),
      accepts: kvChange,
      maxQueue: MAX_WATCH_QUEUE,
      onClose: () => this.#feeds.delete(feed),
    });
    this.#feeds.add(feed);
    return feed;
  }

  /** Each call is a CLIENT span, so an application's trace continues into the round that serves it. */
  #traced<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    return this.#caller.traced(op, { [Attr.kvKey]: key }, fn);
  }

  /** Stops the client; calls still running fail. Closes the NATS connection only if the client made it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const feed of this.#feeds) feed.close();
    for (const lease of this.#leases) lease.stop();
    this.#caller.close();
    if (this.#ownsConnection && !this.#nc.isClosed()) await this.#nc.close();
  }

  #deadline(): number {
    return this.#caller.deadline();
  }

  /** Runs a write in the session, retrying the same (client, seq) until it succeeds or the deadline passes. */
  #write<T extends KvReplyValue>(command: WriteCommand, expect: Validator<T>): Promise<T> {
    return this.#caller.write(command.op, (session) => ({ ...command, session }) as KvWriteRequest, expect);
  }

  /** Runs a request that takes no effect when repeated, retrying until the deadline. */
  #idempotent<T extends KvReplyValue>(request: KvRequest, deadline: number, expect: Validator<T>): Promise<T> {
    return this.#caller.idempotent(request, deadline, expect);
  }
}

/**
 * The connection a KV client works on: the application's (`owned` false: the client leaves it
 * open), or one it makes, named `name`, from server URLs or connection options (`owned` true).
 */
export async function kvConnection(
  nats: KvClientOptions["nats"],
  name: string,
): Promise<{ readonly nc: NatsConnection; readonly owned: boolean }> {
  if (typeof nats === "object" && "request" in nats) return { nc: nats, owned: false };
  const connectOptions: NatsConnectOptions = typeof nats === "object" && "servers" in nats ? nats : { servers: nats };
  return { nc: await connectNats({ name, ...connectOptions }), owned: true };
}

/** What a KvLease asks of its client. */
interface LeaseCalls {
  keepAlive(): Promise<number>;
  revoke(): Promise<boolean>;
  forget(): void;
}

/**
 * A lease this client keeps alive in the background: a keep-alive every third of the TTL, and
 * on failure again after a short backoff. It is lost (`done` resolves with the error, code
 * QUORATE_LEASE_NOT_FOUND) when the cluster answers that it ended, or when a keep-alive failed
 * and none succeeded for a whole TTL since the last successful one was sent: the cluster may
 * have ended it by then, so its holder must assume it did, and keep-alives stop so that it does. Resolves `done` with null after `stop()` or `revoke()`.
 *
 * `expiresAt` (a performance.now() reading) is when the cluster may end it at the earliest,
 * by this client's clock: the send time of the last successful keep-alive plus the TTL. The
 * cluster's lease clock counts at most one lease-clock tick (250 ms by default) more than the
 * real time since a keep-alive applied, so a holder that must not outlive the lease stops
 * acting somewhat before `expiresAt`; a resource that must not be touched by two holders checks
 * a fencing token instead (see @quorate/concurrency).
 */
export class KvLease {
  readonly id: number;
  readonly ttlMs: number;
  /** Resolves once the lease is no longer kept alive: null after stop() or revoke(), the error when it was lost. */
  readonly done: Promise<QuorateError | null>;
  #expiresAt: number;
  #stopped = false;
  #finish!: (error: QuorateError | null) => void;
  readonly #calls: LeaseCalls;
  readonly #wake = new AbortController();

  /**
   * @internal Made by KvClient.lease and KvClient.keepAlive. `renewedAt`: when the lease was
   * last granted or renewed, at the latest; null when unknown (then a keep-alive goes at once).
   */
  constructor(id: number, ttlMs: number, renewedAt: number | null, calls: LeaseCalls) {
    this.id = id;
    this.ttlMs = ttlMs;
    this.#calls = calls;
    this.#expiresAt = (renewedAt ?? performance.now()) + ttlMs;
    this.done = new Promise((resolve) => {
      this.#finish = resolve;
    });
    void this.#run(renewedAt === null ? 0 : Math.max(1, Math.floor(ttlMs / 3)));
  }

  /** Whether it is still kept alive (neither stopped, revoked nor lost). */
  get alive(): boolean {
    return !this.#stopped;
  }

  /** The performance.now() reading at which the cluster may end it, at the earliest. */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** Stops keeping it alive; the cluster ends it after its TTL. */
  stop(): void {
    this.#end(null);
  }

  /** Stops keeping it alive and ends it now, deleting its keys; resolves to whether it was live. */
  async revoke(): Promise<boolean> {
    this.#end(null);
    return this.#calls.revoke();
  }

  #end(error: QuorateError | null): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#wake.abort();
    this.#calls.forget();
    this.#finish(error);
  }

  async #run(firstDelayMs: number): Promise<void> {
    const interval = Math.max(1, Math.floor(this.ttlMs / 3));
    let delay = firstDelayMs;
    while (!this.#stopped) {
      try {
        await sleep(delay, undefined, { signal: this.#wake.signal });
      } catch {
        return;
      }
      if (this.#stopped) return;
      const sentAt = performance.now();
      try {
        await this.#calls.keepAlive();
        // However late it came, a success proves the lease never ended: an ended lease never
        // comes back. It was renewed no sooner than it was sent.
        this.#expiresAt = sentAt + this.ttlMs;
        delay = interval;
      } catch (err) {
        if (this.#stopped) return;
        if (isLeaseNotFound(err)) {
          this.#end(err);
          return;
        }
        // Without a success for a whole TTL there is no proof it lives, and the cluster may
        // have ended it: give up (as etcd's client does), so that it surely ends.
        if (performance.now() >= this.#expiresAt) {
          const lost = `lease ${this.id}: no keep-alive succeeded within its TTL (last: ${String(err)})`;
          this.#end(new QuorateError(ErrorCode.LeaseNotFound, lost, { cause: err }));
          return;
        }
        delay = Math.min(interval, MAX_BACKOFF_MS);
      }
    }
  }
}

function isLeaseNotFound(err: unknown): err is QuorateError {
  return err instanceof QuorateError && err.code === ErrorCode.LeaseNotFound;
}

/** What stops a running watch from outside: `stopped`, and closing the feed it may be waiting on. */
interface WatchControl {
  stopped: boolean;
  feed: ChangeSubscription<KvChange> | null;
}

/**
 * A running watch: an async iterator of KvEvents. `return()` (also what `break` in a `for await`
 * calls) stops it even while it waits for the next change.
 */
export class KvWatch implements AsyncIterableIterator<KvEvent> {
  readonly #inner: AsyncGenerator<KvEvent, void, undefined>;
  readonly #control: WatchControl;
  /** The first step, started with the watch, so that "from now on" means from the call. */
  #first: Promise<IteratorResult<KvEvent, void>> | null;

  /** @internal Made by KvClient.watch. */
  constructor(inner: AsyncGenerator<KvEvent, void, undefined>, control: WatchControl) {
    this.#inner = inner;
    this.#control = control;
    this.#first = inner.next();
    // Its failure reaches whoever calls next(); until then it must not count as unhandled.
    this.#first.catch(() => {});
  }

  next(): Promise<IteratorResult<KvEvent, void>> {
    const first = this.#first;
    this.#first = null;
    return first ?? this.#inner.next();
  }

  async return(): Promise<IteratorResult<KvEvent, void>> {
    this.#first = null;
    this.#control.stopped = true;
    this.#control.feed?.close();
    return this.#inner.return(undefined);
  }

  [Symbol.asyncIterator](): KvWatch {
    return this;
  }
}
