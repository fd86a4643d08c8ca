import {
  arrayOf,
  ErrorCode,
  literal,
  nullable,
  object,
  packValue,
  QuorateError,
  type StateMachine,
  uint,
  unpackValue,
} from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import {
  type KvAnyCommand,
  type KvCompare,
  type KvEntry,
  type KvResult,
  type KvResultCode,
  type KvResultValue,
  type KvTxnOp,
  type KvValue,
  kvCommand,
  kvKey,
  kvValue,
  leaseId,
  leaseTtl,
  MAX_CHANGE_EVENTS,
  MAX_LEASE_KEYS,
  MAX_LEASES,
} from "./commands.js";

/** Version 1 held `[key, value]` pairs; version 2 adds the revisions; version 3 the leases. All restore. */
const SNAPSHOT_VERSION = 3;

export const DEFAULT_WATCH_WINDOW = 4096;

const snapshotV1 = object({
  version: literal(1),
  entries: arrayOf(
    (v: unknown): v is [string, KvValue] => Array.isArray(v) && v.length === 2 && kvKey(v[0]) && kvValue(v[1]),
    Number.MAX_SAFE_INTEGER,
  ),
});

/** `[key, value, createRevision, revision, version]`. */
type SnapshotEntry = [string, KvValue, number, number, number];

const snapshotV2 = object({
  version: literal(2),
  revision: uint,
  entries: arrayOf(
    (v: unknown): v is SnapshotEntry =>
      Array.isArray(v) && v.length === 5 && kvKey(v[0]) && kvValue(v[1]) && uint(v[2]) && uint(v[3]) && uint(v[4]),
    Number.MAX_SAFE_INTEGER,
  ),
});

/** `[key, value, createRevision, revision, version, lease]`, lease 0 for none. */
type SnapshotEntryV3 = [string, KvValue, number, number, number, number];
/** `[id, ttlMs, expiresAtMs]`, in id order. */
type SnapshotLease = [number, number, number];

const snapshotV3 = object({
  version: literal(SNAPSHOT_VERSION),
  revision: uint,
  clockMs: uint,
  // [by, term], or [by, term, seq] since ticks carry a seq.
  clockHolder: nullable(
    (v: unknown): v is [string, number, number?] =>
      Array.isArray(v) && (v.length === 2 || (v.length === 3 && uint(v[2]))) && typeof v[0] === "string" && uint(v[1]),
  ),
  leases: arrayOf(
    (v: unknown): v is SnapshotLease =>
      Array.isArray(v) && v.length === 3 && leaseId(v[0]) && leaseTtl(v[1]) && uint(v[2]),
    MAX_LEASES,
  ),
  entries: arrayOf(
    (v: unknown): v is SnapshotEntryV3 =>
      Array.isArray(v) &&
      v.length === 6 &&
      kvKey(v[0]) &&
      kvValue(v[1]) &&
      uint(v[2]) &&
      uint(v[3]) &&
      uint(v[4]) &&
      uint(v[5]),
    Number.MAX_SAFE_INTEGER,
  ),
});

/** A lease as `timeToLive` reports it. */
export interface KvLeaseInfo {
  readonly ttlMs: number;
  /** What is left of the TTL by the store's lease clock: more than 0 while the lease lives. */
  readonly remainingMs: number;
  /** The keys attached to it, in code-unit order. */
  readonly keys: readonly string[];
}

interface Lease {
  readonly ttlMs: number;
  /** The lease clock's reading at which it ends. */
  expiresAtMs: number;
  readonly keys: Set<string>;
}

/** One change of one key, as watchers see it. A delete carries `value: null`. */
export interface KvEvent {
  readonly op: "put" | "delete";
  readonly key: string;
  readonly value: KvValue | null;
  readonly revision: number;
}

/**
 * The events of one applied write command, all at one revision. `previous` is the store's
 * revision before it: a watcher that saw everything through `previous` and then this change has
 * seen everything through `revision`, which is how it notices a change it missed.
 */
export interface KvChange {
  readonly previous: number;
  readonly revision: number;
  readonly events: readonly KvEvent[];
}

export interface KvStateMachineOptions {
  /** How many recent events this member keeps for watchers to catch up from. Default 4096. */
  readonly watchWindow?: number;
}

function rejected(message: string): Uint8Array {
  return packValue(failed(ErrorCode.Rejected, message));
}

function failed(code: KvResultCode, message: string): KvResult {
  return { ok: false, code, message };
}

function succeeded(value: KvResultValue): KvResult {
  return { ok: true, value };
}

function sameValue(a: KvValue, b: KvValue): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return Buffer.compare(a, b) === 0;
}

/** The index of the first key in `sorted` that is not below `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The replicated key-value map, with revisions. Commands are encoded with `encodeKvCommand`,
 * results are KvResults. Deterministic, and never throws on a bad command: it returns a Rejected
 * result, because a throw would stop every replica at the same log entry.
 *
 * Besides the replicated state it keeps, locally, a bounded window of recent changes for
 * watchers (not replicated, not in snapshots: every member fills its own as it applies).
 *
 * Leases live by a lease clock that is part of the replicated state: it reads 0 at first and
 * advances only when a `tick` command is applied, by the milliseconds the tick carries. The
 * member that leads proposes a tick every few hundred ms carrying the time elapsed since its
 * previous one on its own monotonic clock (see createKvService); no replica ever reads its own
 * clock, so all expire the same leases at the same revision, and a replica that restores a
 * snapshot or replays the log expires them exactly as the others did.
 *
 * Leader change (etcd's rule: a new leader gives each lease at least its remaining TTL): each
 * tick names its proposer and the term (Raft) or ballot round (Paxos) in which it led. A tick
 * from another (proposer, term) than the previous tick counts as 0 ms and renews every live lease
 * to its full TTL, as etcd's new leader does. The gap between the old leader's last tick and the
 * new one's first is never counted, and a holder whose keep-alives stalled while no leader could
 * commit them (the election, then its client finding the new leader and retrying) gets a whole
 * TTL to reach it. Counting only the remaining time (the first choice here) expired live holders
 * under load when a failover ate most of it (integration test kv-leases, 1 run in 2 at load 8).
 * The price: a holder that died just before a failover keeps its keys up to one TTL longer.
 */
export class KvStateMachine implements StateMachine {
  #entries = new Map<string, KvEntry>();
  /** The keys of #entries in code-unit order, for ranges. */
  #sorted: string[] = [];
  /** The revision of the last write applied; 0 before any. */
  #revision = 0;
  readonly #watchWindow: number;
  /** Recent changes from #windowHead on, in revision order, holding at most #watchWindow events. */
  #window: KvChange[] = [];
  #windowHead = 0;
  #windowEvents = 0;
  /** Every change after this revision is in the window. */
  #compactedThrough = 0;
  readonly #listeners = new Set<(change: KvChange) => void>();
  /** Live and expired-but-not-yet-deleted leases by id; ids are grant indexes, so insertion order is id order. */
  #leases = new Map<number, Lease>();
  /** The lease clock: the ms counted by ticks so far. */
  #clockMs = 0;
  /** The proposer, term and seq of the last tick applied; a tick from another counts 0, one with a seq not above it nothing. */
  #clockHolder: { readonly by: string; readonly term: number; readonly seq: number } | null = null;

  constructor(options: KvStateMachineOptions = {}) {
    const watchWindow = options.watchWindow ?? DEFAULT_WATCH_WINDOW;
    if (!Number.isSafeInteger(watchWindow) || watchWindow < 1) {
      throw new QuorateError(ErrorCode.Config, `watchWindow must be a positive integer (got ${watchWindow})`);
    }
    this.#watchWindow = watchWindow;
  }

  apply(command: Uint8Array, index: number): Uint8Array {
    let raw: unknown;
    try {
      raw = unpackValue(command);
    } catch {
      return rejected("undecodable KV command");
    }
    if (!kvCommand(raw)) return rejected("invalid KV command");
    invariant(index > this.#revision, `KV command applied at index ${index}, not above revision ${this.#revision}`);
    const events: KvEvent[] = [];
    const result = this.#execute(raw, index, events);
    invariant(result.ok || events.length === 0, `a failed ${raw.op} command changed keys`);
    invariant(events.length <= MAX_CHANGE_EVENTS, `a ${raw.op} command made ${events.length} events`);
    if (events.length > 0) this.#record({ previous: this.#revision, revision: index, events });
    return packValue(result);
  }

  /**
   * The value stored under `key`, or null. Linearizable only after the consensus node's
   * readBarrier() resolved. The bytes returned are the stored ones: do not modify them.
   */
  read(key: string): KvValue | null {
    return this.#entries.get(key)?.value ?? null;
  }

  /** The value and revisions of `key`, or null. Linearizable after a read barrier, as `read`. */
  entry(key: string): KvEntry | null {
    return this.#entries.get(key) ?? null;
  }

  /** The keys starting with `prefix`, from `fromKey` on (inclusive), in code-unit order. */
  *range(prefix: string, fromKey = ""): Generator<[string, KvEntry]> {
    const sorted = this.#sorted;
    for (let i = lowerBound(sorted, fromKey > prefix ? fromKey : prefix); i < sorted.length; i++) {
      const key = sorted[i] as string;
      if (!key.startsWith(prefix)) return;
      yield [key, this.#entries.get(key) as KvEntry];
    }
  }

  /**
   * The lease `id` while it lives (its remaining TTL by the lease clock, and its keys), or null
   * once it ended or was never granted. Linearizable after a read barrier, as `read`.
   */
  lease(id: number): KvLeaseInfo | null {
    const lease = this.#live(id);
    if (lease === null) return null;
    return { ttlMs: lease.ttlMs, remainingMs: lease.expiresAtMs - this.#clockMs, keys: [...lease.keys].sort() };
  }

  /** Number of leases held, live or expired and waiting for their keys to be deleted. */
  get leaseCount(): number {
    return this.#leases.size;
  }

  /** The lease clock: the milliseconds ticks have counted so far. */
  get clockMs(): number {
    return this.#clockMs;
  }

  /** The revision of the last write applied (0 before any). */
  get revision(): number {
    return this.#revision;
  }

  /** Number of keys stored. */
  get size(): number {
    return this.#entries.size;
  }

  /** The lowest revision a watch may start from here: every change from it on is in the window. */
  get oldestWatchableRevision(): number {
    return this.#compactedThrough + 1;
  }

  /** The changes above `afterRevision` in the window, oldest first; null if some were dropped. */
  changesAfter(afterRevision: number): readonly KvChange[] | null {
    if (afterRevision < this.#compactedThrough) return null;
    const window = this.#window;
    let i = this.#windowHead;
    // Binary search: the window is in revision order.
    let hi = window.length;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if ((window[mid] as KvChange).revision <= afterRevision) i = mid + 1;
      else hi = mid;
    }
    return window.slice(i);
  }

  /** Calls `listener` with every change applied from now on, in order. Returns the unsubscribe. */
  onChange(listener: (change: KvChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  snapshot(): Uint8Array {
    // Sorted by key, so replicas with the same contents produce the same bytes whatever the
    // history of insertions (and restores) behind them.
    const entries: SnapshotEntryV3[] = this.#sorted.map((key) => {
      const e = this.#entries.get(key) as KvEntry;
      return [key, e.value, e.createRevision, e.revision, e.version, e.lease ?? 0];
    });
    const leases: SnapshotLease[] = [...this.#leases].map(([id, l]) => [id, l.ttlMs, l.expiresAtMs]);
    const holder = this.#clockHolder;
    return packValue({
      version: SNAPSHOT_VERSION,
      revision: this.#revision,
      clockMs: this.#clockMs,
      clockHolder: holder === null ? null : [holder.by, holder.term, holder.seq],
      leases,
      entries,
    });
  }

  restore(snapshot: Uint8Array): void {
    let raw: unknown;
    try {
      raw = unpackValue(snapshot);
    } catch (cause) {
      throw new QuorateError(ErrorCode.Storage, "undecodable KV snapshot", { cause });
    }
    const entries = new Map<string, KvEntry>();
    const leases = new Map<number, Lease>();
    let clockMs = 0;
    let clockHolder: { by: string; term: number; seq: number } | null = null;
    let revision: number;
    if (snapshotV3(raw)) {
      revision = raw.revision;
      clockMs = raw.clockMs;
      clockHolder =
        raw.clockHolder === null
          ? null
          : { by: raw.clockHolder[0], term: raw.clockHolder[1], seq: raw.clockHolder[2] ?? 0 };
      let previousId = 0;
      for (const [id, ttlMs, expiresAtMs] of raw.leases) {
        if (id <= previousId) throw new QuorateError(ErrorCode.Storage, "KV snapshot leases are not in id order");
        previousId = id;
        leases.set(id, { ttlMs, expiresAtMs, keys: new Set() });
      }
      for (const [key, value, createRevision, modRevision, version, leaseOf] of raw.entries) {
        if (leaseOf === 0) {
          entries.set(key, { value, revision: modRevision, createRevision, version });
          continue;
        }
        const lease = leases.get(leaseOf);
        if (lease === undefined)
          throw new QuorateError(ErrorCode.Storage, `KV snapshot key '${key}' has no lease ${leaseOf}`);
        lease.keys.add(key);
        entries.set(key, { value, revision: modRevision, createRevision, version, lease: leaseOf });
      }
    } else if (snapshotV2(raw)) {
      revision = raw.revision;
      for (const [key, value, createRevision, modRevision, version] of raw.entries) {
        entries.set(key, { value, revision: modRevision, createRevision, version });
      }
    } else if (snapshotV1(raw)) {
      // Version 1 kept no history: its keys restore at revision 0, version 1.
      revision = 0;
      for (const [key, value] of raw.entries) entries.set(key, { value, revision: 0, createRevision: 0, version: 1 });
    } else {
      throw new QuorateError(ErrorCode.Storage, "malformed KV snapshot");
    }
    this.#entries = entries;
    this.#sorted = [...entries.keys()].sort();
    this.#revision = revision;
    this.#leases = leases;
    this.#clockMs = clockMs;
    this.#clockHolder = clockHolder;
    // The changes up to the snapshot are not known here: watchers must start after it.
    this.#window = [];
    this.#windowHead = 0;
    this.#windowEvents = 0;
    this.#compactedThrough = revision;
  }

  #execute(command: KvAnyCommand, index: number, events: KvEvent[]): KvResult {
    switch (command.op) {
      case "get":
        return succeeded(this.read(command.key));
      case "put": {
        const refused = this.#refusedLease(command.key, command.lease);
        if (refused !== null) return refused;
        this.#put(command.key, command.value, index, events, command.lease);
        return succeeded(index);
      }
      case "delete": {
        const current = this.#entries.get(command.key);
        if (current === undefined) return succeeded(false);
        if (command.revision !== undefined && command.revision !== null && current.revision !== command.revision) {
          return succeeded(false);
        }
        this.#delete(command.key, index, events);
        return { ok: true, value: true, revision: index };
      }
      case "cas": {
        const current = this.#entries.get(command.key);
        const matches =
          command.expected === null
            ? current === undefined
            : current !== undefined && sameValue(current.value, command.expected);
        if (matches) this.#put(command.key, command.value, index, events, undefined);
        return succeeded(matches);
      }
      case "create": {
        if (this.#entries.has(command.key)) return succeeded(null);
        const refused = this.#refusedLease(command.key, command.lease);
        if (refused !== null) return refused;
        this.#put(command.key, command.value, index, events, command.lease);
        return succeeded(index);
      }
      case "update": {
        if (this.#entries.get(command.key)?.revision !== command.revision) return succeeded(null);
        const refused = this.#refusedLease(command.key, command.lease);
        if (refused !== null) return refused;
        this.#put(command.key, command.value, index, events, command.lease);
        return succeeded(index);
      }
      case "txn": {
        const holds = command.compare.every((c) => this.#holds(c));
        for (const op of holds ? command.success : (command.failure ?? [])) this.#txnWrite(op, index, events);
        return succeeded({ succeeded: holds, revision: events.length > 0 ? index : this.#revision });
      }
      case "grant":
        if (this.#leases.size >= MAX_LEASES) {
          return failed(ErrorCode.LeaseLimit, `the store holds ${MAX_LEASES} leases, the most it takes`);
        }
        this.#leases.set(index, { ttlMs: command.ttlMs, expiresAtMs: this.#clockMs + command.ttlMs, keys: new Set() });
        return succeeded(index);
      case "keepAlive": {
        const lease = this.#live(command.lease);
        if (lease === null) return failed(ErrorCode.LeaseNotFound, `lease ${command.lease} expired or was revoked`);
        lease.expiresAtMs = this.#clockMs + lease.ttlMs;
        return succeeded(lease.ttlMs);
      }
      case "revoke": {
        const lease = this.#leases.get(command.lease);
        if (lease === undefined) return succeeded(false);
        const wasLive = lease.expiresAtMs > this.#clockMs;
        this.#endLease(command.lease, lease, index, events);
        return succeeded(wasLive);
      }
      case "tick": {
        const holder = this.#clockHolder;
        if (holder !== null && holder.by === command.by && holder.term === command.term) {
          // A tick applied already (Multi-Paxos may choose one request in two slots) counts once.
          if (command.seq !== undefined && command.seq <= holder.seq) return succeeded(null);
          this.#clockMs += command.elapsedMs;
          this.#clockHolder = { by: holder.by, term: holder.term, seq: command.seq ?? holder.seq };
        } else {
          const seq = command.seq ?? 0;
          // A new proposer (or the same one in a new term): the gap since the last counted tick
          // is not counted, and every live lease gets its full TTL again. See the class comment.
          this.#clockHolder = { by: command.by, term: command.term, seq };
          for (const lease of this.#leases.values()) {
            if (lease.expiresAtMs > this.#clockMs) lease.expiresAtMs = this.#clockMs + lease.ttlMs;
          }
        }
        this.#expireLeases(index, events);
        return succeeded(null);
      }
    }
  }

  /** The lease `id` if it lives by the lease clock, else null (also when expired but not yet deleted). */
  #live(id: number): Lease | null {
    const lease = this.#leases.get(id);
    return lease !== undefined && lease.expiresAtMs > this.#clockMs ? lease : null;
  }

  /** Why `key` cannot be attached to `leaseOf` (null: it can, or there is no lease to attach). */
  #refusedLease(key: string, leaseOf: number | undefined | null): KvResult | null {
    if (leaseOf === undefined || leaseOf === null) return null;
    const lease = this.#live(leaseOf);
    if (lease === null) return failed(ErrorCode.LeaseNotFound, `lease ${leaseOf} expired or was revoked`);
    if (!lease.keys.has(key) && lease.keys.size >= MAX_LEASE_KEYS) {
      return failed(ErrorCode.LeaseLimit, `lease ${leaseOf} has ${MAX_LEASE_KEYS} keys, the most one lease takes`);
    }
    return null;
  }

  /**
   * Ends every lease the clock has passed, deleting its keys, oldest lease first, while the
   * change stays within MAX_CHANGE_EVENTS (which a watcher accepts whole); the leases left
   * over are ended by the next tick. They are already dead: keepAlive and attaching fail.
   */
  #expireLeases(index: number, events: KvEvent[]): void {
    for (const [id, lease] of this.#leases) {
      if (lease.expiresAtMs > this.#clockMs) continue;
      if (events.length + lease.keys.size > MAX_CHANGE_EVENTS) return;
      this.#endLease(id, lease, index, events);
    }
  }

  #endLease(id: number, lease: Lease, index: number, events: KvEvent[]): void {
    // Sorted: the events of one change come in the same order on every replica.
    for (const key of [...lease.keys].sort()) this.#delete(key, index, events);
    invariant(lease.keys.size === 0, `lease ${id} still has keys after its keys were deleted`);
    this.#leases.delete(id);
  }

  #holds(compare: KvCompare): boolean {
    const current = this.#entries.get(compare.key);
    if ("absent" in compare) return current === undefined;
    if (current === undefined) return false;
    if ("revision" in compare) return current.revision === compare.revision;
    return sameValue(current.value, compare.value);
  }

  #txnWrite(op: KvTxnOp, index: number, events: KvEvent[]): void {
    if (op.op === "put") this.#put(op.key, op.value, index, events, undefined);
    else if (this.#entries.has(op.key)) this.#delete(op.key, index, events);
  }

  /** Sets `key`, attached to `leaseOf` (checked live by the caller) or to no lease, as etcd's put. */
  #put(key: string, value: KvValue, revision: number, events: KvEvent[], leaseOf: number | undefined | null): void {
    const current = this.#entries.get(key);
    const lease = leaseOf === undefined || leaseOf === null ? null : leaseOf;
    if (current?.lease !== undefined && current.lease !== lease) this.#leases.get(current.lease)?.keys.delete(key);
    if (lease !== null) this.#leases.get(lease)?.keys.add(key);
    const leased = lease === null ? {} : { lease };
    if (current === undefined) {
      this.#sorted.splice(lowerBound(this.#sorted, key), 0, key);
      this.#entries.set(key, { value, revision, createRevision: revision, version: 1, ...leased });
    } else {
      this.#entries.set(key, {
        value,
        revision,
        createRevision: current.createRevision,
        version: current.version + 1,
        ...leased,
      });
    }
    events.push({ op: "put", key, value, revision });
  }

  #delete(key: string, revision: number, events: KvEvent[]): void {
    const current = this.#entries.get(key);
    if (current?.lease !== undefined) this.#leases.get(current.lease)?.keys.delete(key);
    this.#entries.delete(key);
    const at = lowerBound(this.#sorted, key);
    invariant(this.#sorted[at] === key, `deleted key '${key}' is missing from the sorted keys`);
    this.#sorted.splice(at, 1);
    events.push({ op: "delete", key, value: null, revision });
  }

  #record(change: KvChange): void {
    this.#revision = change.revision;
    this.#window.push(change);
    this.#windowEvents += change.events.length;
    while (this.#windowEvents > this.#watchWindow && this.#windowHead < this.#window.length - 1) {
      const dropped = this.#window[this.#windowHead++] as KvChange;
      this.#windowEvents -= dropped.events.length;
      this.#compactedThrough = dropped.revision;
    }
    if (this.#windowHead > 1024 && this.#windowHead * 2 > this.#window.length) {
      this.#window = this.#window.slice(this.#windowHead);
      this.#windowHead = 0;
    }
    for (const listener of this.#listeners) listener(change);
  }
}
