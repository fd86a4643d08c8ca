import { ErrorCode, isQuorateError, QuorateError } from "@quorate/core";
import type { KvEvent } from "@quorate/kv";
import { MAX_KEY_LENGTH } from "@quorate/kv";
import type { KvClient, KvKeyEntry, KvLease, KvWatchOptions, KvWatchTarget } from "@quorate/kv/nats";
import { MAX_RANGE_LIMIT } from "@quorate/kv/nats";

/** What Mutex and Election use of a KvClient: its public API, nothing else (a KvClient is one). */
export interface ConcurrencyKv extends Pick<KvClient, "create" | "update" | "delete" | "entry" | "list" | "txn"> {
  /** As KvClient.watch: `return()` stops it, also while it waits. */
  watch(
    target: KvWatchTarget,
    options?: KvWatchOptions,
  ): AsyncIterableIterator<KvEvent> & { return(): Promise<IteratorResult<KvEvent, void>> };
}

/** A lease id, or a KvLease kept alive by its client. */
export type LeaseRef = number | Pick<KvLease, "id">;

export function leaseIdOf(lease: LeaseRef): number {
  const id = typeof lease === "number" ? lease : lease.id;
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new QuorateError(ErrorCode.Config, `a lease id must be a positive integer (got ${id})`);
  }
  return id;
}

/**
 * The keys of one lock or election: `<prefix><name>/<lease id>`, one per lease that holds or
 * waits. A name holds no "/", so that no name's keys fall under another's prefix.
 */
export function queuePrefix(prefix: string, name: string): string {
  if (typeof name !== "string" || name.length === 0 || name.includes("/")) {
    throw new QuorateError(
      ErrorCode.Config,
      `a lock or election name is a non-empty string without "/" (got '${name}')`,
    );
  }
  const keyPrefix = `${prefix}${name}/`;
  // Room for the lease id.
  if (keyPrefix.length + 16 > MAX_KEY_LENGTH) {
    throw new QuorateError(ErrorCode.Config, `the name '${name}' is too long for a key`);
  }
  return keyPrefix;
}

/** Every entry under `prefix`, page by page (each page one linearizable read). */
export async function listQueue(kv: ConcurrencyKv, prefix: string): Promise<KvKeyEntry[]> {
  const all: KvKeyEntry[] = [];
  let fromKey: string | undefined;
  for (;;) {
    const page = await kv.list(prefix, { limit: MAX_RANGE_LIMIT, ...(fromKey === undefined ? {} : { fromKey }) });
    all.push(...page.items);
    if (page.next === null) return all;
    fromKey = page.next;
  }
}

/** The entry with the lowest create revision: the holder (or leader). */
export function head(entries: readonly KvKeyEntry[]): KvKeyEntry | null {
  let first: KvKeyEntry | null = null;
  for (const e of entries) if (first === null || e.createRevision < first.createRevision) first = e;
  return first;
}

/**
 * Waits until the key `key`, created at `createRevision`, is the oldest under `prefix`: the
 * queue is ordered by create revision (first come, first served), and each waiter watches only
 * the key just before its own, so a release wakes one waiter, not all (no thundering herd).
 * Fails with QUORATE_LEASE_NOT_FOUND when its own key is gone (its lease ended), and with the
 * abort reason when `signal` aborts.
 */
export async function waitForTurn(
  kv: ConcurrencyKv,
  prefix: string,
  key: string,
  createRevision: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (;;) {
    signal?.throwIfAborted();
    const entries = await listQueue(kv, prefix);
    const mine = entries.find((e) => e.key === key);
    if (mine === undefined || mine.createRevision !== createRevision) {
      throw new QuorateError(ErrorCode.LeaseNotFound, `'${key}' was deleted while it waited: its lease ended`);
    }
    let predecessor: KvKeyEntry | null = null;
    for (const e of entries) {
      if (
        e.createRevision < createRevision &&
        (predecessor === null || e.createRevision > predecessor.createRevision)
      ) {
        predecessor = e;
      }
    }
    if (predecessor === null) return;
    await deleted(kv, predecessor, signal);
  }
}

/** Resolves once `entry` is deleted (or may be: the caller lists again either way). */
async function deleted(kv: ConcurrencyKv, entry: KvKeyEntry, signal: AbortSignal | undefined): Promise<void> {
  // From just after the listed write: a delete between the list and this watch is replayed.
  const watch = kv.watch({ key: entry.key }, { fromRevision: entry.revision + 1 });
  const stop = () => void watch.return();
  signal?.addEventListener("abort", stop, { once: true });
  try {
    for await (const event of watch) if (event.op === "delete") return;
  } catch (err) {
    // The window no longer holds the changes since the list: listing again tells.
    if (!isQuorateError(err, ErrorCode.Compacted)) throw err;
  } finally {
    signal?.removeEventListener("abort", stop);
    await watch.return();
  }
}
