import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, QuorateError } from "@quorate/core";
import {
  KvClient,
  type KvClientOptions,
  type KvKeyEntry,
  type KvPage,
  type KvRangeOptions,
  type KvWatchTarget,
  type KvWriteOptions,
  kvConnection,
} from "./client.js";
import type { KvEntry, KvTxn, KvTxnResult, KvValue } from "./commands.js";
import { assertKvGroup, KV_GROUP, MAX_RANGE_LIMIT } from "./protocol.js";
import type { KvEvent } from "./state-machine.js";

/*
 * A KV sharded over several consensus groups: each key lives in one group, chosen by a stable
 * hash of the key, so writes to keys of different groups commit on different leaders. Each
 * group is a KV of its own (its own log, revisions, leases and watch window); nothing spans two
 * groups atomically.
 */

/** The most groups one sharded KV spans. */
export const MAX_KV_GROUPS = 256;

/** The groups of a KV sharded `count` ways: "kv-0" ... "kv-<count-1>", as `quorate node --groups <count>` names them. */
export function kvShardGroups(count: number): string[] {
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_KV_GROUPS) {
    throw new QuorateError(ErrorCode.Config, `a sharded KV has 1 to ${MAX_KV_GROUPS} groups (got ${count})`);
  }
  return Array.from({ length: count }, (_, index) => `${KV_GROUP}-${index}`);
}

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

/**
 * The group that holds `key`: groups[FNV-1a-32(UTF-8 bytes of key) mod groups.length]. The same
 * list of groups always maps a key to the same group, in every client and language; a different
 * list (another count or order) maps keys differently, and Quorate does not move keys between
 * groups, so a sharded KV keeps its list of groups for life.
 */
export function kvGroupOfKey(key: string, groups: readonly string[]): string {
  if (groups.length === 0) throw new QuorateError(ErrorCode.Config, "a sharded KV needs at least one group");
  let hash = FNV_OFFSET_BASIS;
  for (const byte of utf8.encode(key)) hash = Math.imul(hash ^ byte, FNV_PRIME) >>> 0;
  return groups[hash % groups.length] as string;
}

export interface ShardedKvClientOptions extends Omit<KvClientOptions, "group"> {
  /** The KV's groups, in the order that places keys (see kvGroupOfKey), e.g. kvShardGroups(6). */
  readonly groups: readonly string[];
}

/** A change of a sharded KV: `revision` counts in `group`, as each group has its own revisions. */
export interface ShardedKvEvent extends KvEvent {
  readonly group: string;
}

export interface ShardedKvWatchOptions {
  /** Per group, the revision to start from (inclusive); groups not named start now. */
  readonly fromRevisions?: Readonly<Record<string, number>>;
}

/**
 * A client of a KV sharded over consensus groups: every call on one key goes to the key's group,
 * ranges and watches ask every group and merge. Calls on one key are linearizable as on KvClient;
 * a range is a linearizable read of each group, not one snapshot across groups; a transaction
 * must keep to one group's keys; leases and locks belong to one group (`client(group)`).
 */
export class ShardedKvClient {
  readonly groups: readonly string[];
  readonly #clients: ReadonlyMap<string, KvClient>;
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;

  private constructor(
    groups: readonly string[],
    clients: ReadonlyMap<string, KvClient>,
    nc: NatsConnection,
    owns: boolean,
  ) {
    this.groups = groups;
    this.#clients = clients;
    this.#nc = nc;
    this.#ownsConnection = owns;
  }

  /** One KvClient per group, all on one NATS connection (made here unless `nats` is one). */
  static async connect(options: ShardedKvClientOptions): Promise<ShardedKvClient> {
    const { groups, nats, ...shared } = options;
    if (groups.length === 0 || groups.length > MAX_KV_GROUPS) {
      throw new QuorateError(ErrorCode.Config, `a sharded KV has 1 to ${MAX_KV_GROUPS} groups (got ${groups.length})`);
    }
    for (const group of groups) assertKvGroup(group);
    if (new Set(groups).size !== groups.length) {
      throw new QuorateError(ErrorCode.Config, `a sharded KV's groups must differ (got ${groups.join(", ")})`);
    }
    const { nc, owned } = await kvConnection(nats, `quorate-kv-sharded-${options.cluster}`);
    const clients = new Map<string, KvClient>();
    try {
      for (const group of groups) clients.set(group, await KvClient.connect({ ...shared, nats: nc, group }));
    } catch (err) {
      await Promise.all([...clients.values()].map((c) => c.close()));
      if (owned) await nc.close();
      throw err;
    }
    return new ShardedKvClient([...groups], clients, nc, owned);
  }

  /** The group that holds `key`. */
  groupOf(key: string): string {
    return kvGroupOfKey(key, this.groups);
  }

  /** The KvClient of one group: for its leases, locks and elections, and transactions on its keys. */
  client(group: string): KvClient {
    const client = this.#clients.get(group);
    if (client === undefined) {
      throw new QuorateError(ErrorCode.Config, `'${group}' is not a group of this KV (${this.groups.join(", ")})`);
    }
    return client;
  }

  #of(key: string): KvClient {
    return this.client(this.groupOf(key));
  }

  get(key: string): Promise<KvValue | null> {
    return this.#of(key).get(key);
  }

  entry(key: string): Promise<KvEntry | null> {
    return this.#of(key).entry(key);
  }

  put(key: string, value: KvValue, options?: KvWriteOptions): Promise<number> {
    return this.#of(key).put(key, value, options);
  }

  create(key: string, value: KvValue, options?: KvWriteOptions): Promise<number | null> {
    return this.#of(key).create(key, value, options);
  }

  update(key: string, value: KvValue, revision: number, options?: KvWriteOptions): Promise<number | null> {
    return this.#of(key).update(key, value, revision, options);
  }

  delete(key: string, options?: { readonly revision?: number }): Promise<boolean> {
    return this.#of(key).delete(key, options);
  }

  cas(key: string, expected: KvValue | null, value: KvValue): Promise<boolean> {
    return this.#of(key).cas(key, expected, value);
  }

  /** A transaction on keys of one group; keys of two groups are refused, as nothing spans groups atomically. */
  async txn(txn: KvTxn): Promise<KvTxnResult> {
    const keys = [...txn.compare, ...txn.success, ...(txn.failure ?? [])].map((item) => item.key);
    const groups = new Set(keys.map((key) => this.groupOf(key)));
    if (groups.size > 1) {
      throw new QuorateError(
        ErrorCode.Config,
        `a transaction's keys must be in one group; these are in ${[...groups].join(", ")} (see ShardedKvClient.groupOf)`,
      );
    }
    const [group] = groups;
    return this.client(group ?? (this.groups[0] as string)).txn(txn);
  }

  /** The keys starting with `prefix` across all groups, in code-unit order, one page. */
  async keys(prefix: string, options: KvRangeOptions = {}): Promise<KvPage<string>> {
    return mergePages(await this.#everyGroup((client) => client.keys(prefix, options)), options, (key) => key);
  }

  /** The entries under `prefix` across all groups, one page; each entry's revisions count in its own group. */
  async list(prefix: string, options: KvRangeOptions = {}): Promise<KvPage<KvKeyEntry>> {
    return mergePages(await this.#everyGroup((client) => client.list(prefix, options)), options, (e) => e.key);
  }

  /**
   * The changes of `target` in every group, merged as they arrive: in revision order within a
   * group, each once (as KvClient.watch), with no order across groups.
   */
  watch(target: KvWatchTarget, options: ShardedKvWatchOptions = {}): ShardedKvWatch {
    const from = options.fromRevisions ?? {};
    for (const group of Object.keys(from)) this.client(group);
    return new ShardedKvWatch(
      this.groups.map((group) => {
        const fromRevision = from[group];
        return {
          group,
          watch: this.client(group).watch(target, fromRevision === undefined ? {} : { fromRevision }),
        };
      }),
    );
  }

  /** Closes every group's client, and the connection if this client made it. */
  async close(): Promise<void> {
    await Promise.all([...this.#clients.values()].map((c) => c.close()));
    if (this.#ownsConnection && !this.#nc.isClosed()) await this.#nc.close();
  }

  #everyGroup<T>(call: (client: KvClient) => Promise<T>): Promise<T[]> {
    return Promise.all(this.groups.map((group) => call(this.client(group))));
  }
}

/**
 * One page from the groups' pages. A group's page holds all its keys from `fromKey` up to (not
 * including) its `next`, so the merged keys are complete below the smallest `next`; the page is
 * those, up to `limit`, and continues from the first key it left out. Each group's page holds at
 * least one key below its `next`, so paging always moves on.
 */
function mergePages<T>(pages: readonly KvPage<T>[], options: KvRangeOptions, keyOf: (item: T) => string): KvPage<T> {
  const limit = options.limit ?? MAX_RANGE_LIMIT;
  let complete: string | null = null;
  for (const page of pages) if (page.next !== null && (complete === null || page.next < complete)) complete = page.next;
  const items = pages
    .flatMap((page) => page.items)
    .filter((item) => complete === null || keyOf(item) < complete)
    .sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  if (items.length > limit) return { items: items.slice(0, limit), next: keyOf(items[limit] as T) };
  return { items, next: complete };
}

interface GroupWatch {
  readonly group: string;
  readonly watch: AsyncIterableIterator<KvEvent> & { return(): Promise<IteratorResult<KvEvent, void>> };
}

/** What one group's `next()` gave; a failure is held as a value so that no rejection goes unobserved between calls. */
type Pulled =
  | { readonly from: GroupWatch; readonly result: IteratorResult<KvEvent, void> }
  | { readonly from: GroupWatch; readonly error: unknown };

/**
 * The groups' watches as one async iterator: one `next()` outstanding per group at a time, so a
 * slow consumer holds back every group (each KvClient watch buffers and catches up on its own).
 * An error from any group ends the watch and stops the others.
 */
export class ShardedKvWatch implements AsyncIterableIterator<ShardedKvEvent> {
  readonly #pending = new Map<GroupWatch, Promise<Pulled>>();
  #ended = false;

  constructor(watches: readonly GroupWatch[]) {
    for (const watch of watches) this.#pull(watch);
  }

  #pull(from: GroupWatch): void {
    this.#pending.set(
      from,
      from.watch.next().then(
        (result) => ({ from, result }),
        (error: unknown) => ({ from, error }),
      ),
    );
  }

  async next(): Promise<IteratorResult<ShardedKvEvent, void>> {
    while (!this.#ended && this.#pending.size > 0) {
      const pulled = await Promise.race(this.#pending.values());
      if ("error" in pulled) {
        this.#pending.delete(pulled.from);
        await this.return();
        throw pulled.error;
      }
      const { from, result } = pulled;
      if (result.done === true) {
        this.#pending.delete(from);
        continue;
      }
      this.#pull(from);
      return { done: false, value: { ...result.value, group: from.group } };
    }
    return { done: true, value: undefined };
  }

  /** Ends the watch in every group. */
  async return(): Promise<IteratorResult<ShardedKvEvent, void>> {
    if (!this.#ended) {
      this.#ended = true;
      const watches = [...this.#pending.keys()];
      this.#pending.clear();
      await Promise.all(watches.map((w) => w.watch.return()));
    }
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): ShardedKvWatch {
    return this;
  }
}
