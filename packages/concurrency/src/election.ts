import { ErrorCode, QuorateError } from "@quorate/core";
import type { KvValue } from "@quorate/kv";
import type { KvKeyEntry } from "@quorate/kv/nats";
import { type ConcurrencyKv, head, type LeaseRef, leaseIdOf, listQueue, queuePrefix, waitForTurn } from "./queue.js";

export const DEFAULT_ELECTION_PREFIX = "quorate/election/";

export interface ElectionOptions {
  /** Where the elections' keys live. Default "quorate/election/". */
  readonly prefix?: string;
}

export interface CampaignOptions {
  /** The lease the leadership lives by: when it ends, the next candidate leads. */
  readonly lease: LeaseRef;
  /** Stops campaigning: `campaign` rejects with the abort reason and leaves the queue. */
  readonly signal?: AbortSignal;
}

/** A leader as `leader()` and `observe()` report it: its key (one per lease), value and revisions. */
export type ElectionLeader = KvKeyEntry;

interface Candidacy {
  readonly key: string;
  readonly lease: number;
  readonly createRevision: number;
  /** The revision of our key's last write, for proclaim's and resign's compare. */
  revision: number;
}

/**
 * Leader election on the KV store, as etcd's concurrency.Election: each candidate creates a key
 * under the election's prefix attached to its lease, holding its value; the key with the lowest
 * create revision leads. One Election object campaigns for one candidate at a time.
 */
export class Election {
  readonly name: string;
  readonly #kv: ConcurrencyKv;
  readonly #prefix: string;
  #candidacy: Candidacy | null = null;

  constructor(kv: ConcurrencyKv, name: string, options: ElectionOptions = {}) {
    this.#kv = kv;
    this.name = name;
    this.#prefix = queuePrefix(options.prefix ?? DEFAULT_ELECTION_PREFIX, name);
  }

  /**
   * Campaigns with `value` and resolves once this candidate leads; rejects with
   * QUORATE_LEASE_NOT_FOUND when its lease ended first. Campaigning again with the same lease
   * (after an error) keeps the place in the queue and sets the value.
   */
  async campaign(value: KvValue, options: CampaignOptions): Promise<void> {
    const lease = leaseIdOf(options.lease);
    options.signal?.throwIfAborted();
    const key = `${this.#prefix}${lease}`;
    let candidacy: Candidacy;
    const created = await this.#kv.create(key, value, { lease });
    if (created !== null) {
      candidacy = { key, lease, createRevision: created, revision: created };
    } else {
      const entry = await this.#kv.entry(key);
      if (entry === null || entry.lease !== lease) {
        throw new QuorateError(ErrorCode.LeaseNotFound, `'${key}' vanished while campaigning: its lease ended`);
      }
      const revision = await this.#kv.update(key, value, entry.revision, { lease });
      if (revision === null) throw new QuorateError(ErrorCode.LeaseNotFound, `'${key}' changed while campaigning`);
      candidacy = { key, lease, createRevision: entry.createRevision, revision };
    }
    this.#candidacy = candidacy;
    try {
      await waitForTurn(this.#kv, this.#prefix, key, candidacy.createRevision, options.signal);
    } catch (err) {
      this.#candidacy = null;
      await this.#kv.delete(key, { revision: candidacy.revision }).catch(() => false);
      throw err;
    }
  }

  /**
   * Sets the leader's value without an election; only the candidate that leads (after
   * `campaign` resolved). Rejects with QUORATE_LEASE_NOT_FOUND when the leadership was lost.
   */
  async proclaim(value: KvValue): Promise<void> {
    const candidacy = this.#candidacy;
    if (candidacy === null) throw new QuorateError(ErrorCode.Config, `not campaigning in election '${this.name}'`);
    const revision = await this.#kv.update(candidacy.key, value, candidacy.revision, { lease: candidacy.lease });
    if (revision === null) {
      this.#candidacy = null;
      throw new QuorateError(
        ErrorCode.LeaseNotFound,
        `leadership of '${this.name}' was lost: its key changed or ended`,
      );
    }
    candidacy.revision = revision;
  }

  /** Gives up leading (or campaigning); resolves to whether this candidate still had its place. */
  async resign(): Promise<boolean> {
    const candidacy = this.#candidacy;
    if (candidacy === null) return false;
    this.#candidacy = null;
    return this.#kv.delete(candidacy.key, { revision: candidacy.revision });
  }

  /** The current leader, or null when no one campaigns. Linearizable. */
  async leader(): Promise<ElectionLeader | null> {
    return head(await listQueue(this.#kv, this.#prefix));
  }

  /**
   * The leader now, then each change of leader or of its value, as an async iterator (null
   * while no one leads). It follows the election's keys from a revision read before listing
   * them, so it misses none of their changes; a change that is undone before the next listed
   * state shows may be reported too. Stop it with `break` or `return()`, also while it waits.
   */
  observe(): ElectionObserver {
    const stop = new AbortController();
    return new ElectionObserver(this.#observe(stop.signal), stop);
  }

  async *#observe(signal: AbortSignal): AsyncGenerator<ElectionLeader | null, void, undefined> {
    // An empty transaction reads the store's revision through the log: every change after it is watched.
    const { revision } = await this.#kv.txn({ compare: [], success: [] });
    const keys = new Map<string, ElectionLeader>();
    for (const e of await listQueue(this.#kv, this.#prefix)) keys.set(e.key, e);
    let last = head([...keys.values()]);
    yield last;
    if (signal.aborted) return;
    const watch = this.#kv.watch({ prefix: this.#prefix }, { fromRevision: revision + 1 });
    const stopWatch = () => void watch.return();
    signal.addEventListener("abort", stopWatch, { once: true });
    try {
      for await (const event of watch) {
        const known = keys.get(event.key);
        // The listing may already show this change, or a later one: only newer news counts.
        if (known !== undefined && known.revision >= event.revision) continue;
        if (event.op === "delete") {
          keys.delete(event.key);
        } else {
          const value = event.value as KvValue;
          keys.set(event.key, {
            key: event.key,
            value,
            revision: event.revision,
            createRevision: known?.createRevision ?? event.revision,
            version: (known?.version ?? 0) + 1,
          });
        }
        const now = head([...keys.values()]);
        if (now?.key !== last?.key || now?.revision !== last?.revision) {
          last = now;
          yield now;
        }
      }
    } finally {
      signal.removeEventListener("abort", stopWatch);
      await watch.return();
    }
  }
}

/**
 * The leader changes of an election: an async iterator whose `return()` (what `break` calls)
 * stops it at once, even while it waits for the next change.
 */
export class ElectionObserver implements AsyncIterableIterator<ElectionLeader | null> {
  readonly #inner: AsyncGenerator<ElectionLeader | null, void, undefined>;
  readonly #stop: AbortController;

  /** @internal Made by Election.observe. */
  constructor(inner: AsyncGenerator<ElectionLeader | null, void, undefined>, stop: AbortController) {
    this.#inner = inner;
    this.#stop = stop;
  }

  next(): Promise<IteratorResult<ElectionLeader | null, void>> {
    return this.#inner.next();
  }

  async return(): Promise<IteratorResult<ElectionLeader | null, void>> {
    // Ends the watch the generator may be waiting on; then its own return runs.
    this.#stop.abort();
    return this.#inner.return(undefined);
  }

  [Symbol.asyncIterator](): ElectionObserver {
    return this;
  }
}
