import { assertToken, ErrorCode, QuorateError, silentLogger } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { Database, Key, RootDatabase } from "lmdb";
import { LmdbRaftStorage, type StoreKeys } from "./lmdb.js";
import { type OwnedEnvironment, openOwnedEnvironment, type StoreLayout } from "./lmdb-directory.js";
import type { OpenOptions } from "./types.js";

// Many Raft groups of one member in one LMDB environment: one write transaction and one fsync
// for every group that wrote in the same event turn, where a store per group would pay one each.

const LAYOUT: StoreLayout = {
  metaName: "groups-meta",
  identityKey: "groupsIdentity",
  formatVersion: 1,
  maxDbs: 3,
};

/** One flush (fsync) of the shared environment, as `onFlush` reports it. */
export interface GroupFlush {
  /** Writes, of any group, that this flush made durable: each one's promise resolves after it. */
  readonly writes: number;
  /** The groups those writes came from, without repeats. */
  readonly groups: readonly string[];
}

export interface LmdbGroupsOptions extends OpenOptions {
  /** Called once per flush of the shared environment, before the writes it covers resolve. */
  onFlush?: (flush: GroupFlush) => void;
}

/** What the shared environment has done since it opened. */
export interface LmdbGroupsStats {
  /** Flushes (fsyncs) awaited: at most one per event turn in which any group wrote. */
  readonly flushes: number;
  /** Writes of all groups made durable. */
  readonly writes: number;
  /** LMDB write transactions committed in the environment since it was created (its last transaction id). */
  readonly transactions: number;
}

/** The writes of one event turn, which share a commit and the flush that follows it. */
interface Batch {
  readonly commits: Promise<void>[];
  readonly groups: Set<string>;
  readonly flushed: Promise<void>;
}

/**
 * Opens (creating on first use) the LMDB environment in `dir` that holds the Raft state of many
 * groups of one member. Like openLmdbStorage, the directory belongs to the cluster and member
 * that first opened it. Each group's store is a view of the shared databases with keys prefixed
 * by the group's name (`storage(group)`).
 */
export async function openLmdbGroups(options: LmdbGroupsOptions): Promise<LmdbGroups> {
  const logger = options.logger ?? silentLogger;
  return openOwnedEnvironment(options, LAYOUT, (owned) => {
    const log = owned.env.openDB<Uint8Array, Key>({ name: "groups-log", encoding: "binary" });
    const snapshots = owned.env.openDB<Uint8Array, Key>({ name: "groups-snapshot", encoding: "binary" });
    logger.info("group storage opened", { dir: options.dir, member: options.member, created: owned.created });
    return new LmdbGroups(options, owned, log, snapshots);
  });
}

/**
 * The Raft stores of many groups in one LMDB environment. Every group's write is its own child
 * transaction, so a failed write of one group leaves the others' untouched; writes of any groups
 * issued in one event turn commit together, and each resolves only after the flush that covers
 * it: no group acknowledges anything before its own data is on disk.
 *
 * A failed commit or flush fails the group that wrote; since they share the flush, every group
 * that waited on it fails too and refuses further calls, as a store of its own would.
 */
export class LmdbGroups {
  readonly dir: string;
  readonly #options: LmdbGroupsOptions;
  readonly #owned: OwnedEnvironment;
  readonly #env: RootDatabase;
  readonly #log: Database<Uint8Array, Key>;
  readonly #snapshots: Database<Uint8Array, Key>;
  /** Groups whose store is open now, and the stores themselves. */
  readonly #open = new Map<string, LmdbRaftStorage>();
  #batch: Batch | null = null;
  #flushes = 0;
  #writes = 0;
  #closing: Promise<void> | null = null;

  constructor(
    options: LmdbGroupsOptions,
    owned: OwnedEnvironment,
    log: Database<Uint8Array, Key>,
    snapshots: Database<Uint8Array, Key>,
  ) {
    this.dir = options.dir;
    this.#options = options;
    this.#owned = owned;
    this.#env = owned.env;
    this.#log = log;
    this.#snapshots = snapshots;
  }

  get stats(): LmdbGroupsStats {
    const { lastTxnId } = this.#env.getStats() as { lastTxnId: number };
    return { flushes: this.#flushes, writes: this.#writes, transactions: lastTxnId };
  }

  /** Groups whose store is open. */
  get openGroups(): readonly string[] {
    return [...this.#open.keys()];
  }

  /**
   * The store of `group` (empty on first use), which the group's Raft node loads and writes.
   * Closing it releases the group, not the environment. A group's store is open at most once.
   */
  storage(group: string): LmdbRaftStorage {
    assertToken("group", group);
    if (this.#closing !== null) throw new QuorateError(ErrorCode.Closed, `group storage in ${this.dir} is closed`);
    if (this.#open.has(group)) {
      throw new QuorateError(ErrorCode.Config, `group ${group} is already open in data directory ${this.dir}`);
    }
    const keys: StoreKeys = {
      hardState: `${group}/hardState`,
      appliedWrite: `${group}/appliedWrite`,
      snapshot: group,
      entry: (index) => [group, index],
      indexOf: (key) => {
        invariant(Array.isArray(key) && key[0] === group, "a group reads only its own keys");
        return key[1] as number;
      },
    };
    const storage = new LmdbRaftStorage({
      dir: `${this.dir} (group ${group})`,
      env: this.#env,
      meta: this.#owned.meta,
      log: this.#log,
      snapshots: this.#snapshots,
      keys,
      logger: this.#options.logger ?? silentLogger,
      durable: (committed) => this.#durable(group, committed),
      close: async () => {
        this.#open.delete(group);
      },
    });
    this.#open.set(group, storage);
    return storage;
  }

  /** Closes every group's store still open, then the environment. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#open.values()].map((storage) => storage.close()));
      await this.#owned.close();
    })();
    return this.#closing;
  }

  /**
   * Resolves once `committed` committed and the flush after it completed. The flush is shared
   * by every write of the same event turn: LMDB commits them in one transaction, so one fsync
   * after the last of them covers them all.
   */
  async #durable(group: string, committed: Promise<void>): Promise<void> {
    const batch = this.#currentBatch();
    batch.commits.push(committed);
    batch.groups.add(group);
    await committed;
    await batch.flushed;
  }

  #currentBatch(): Batch {
    if (this.#batch !== null) return this.#batch;
    const commits: Promise<void>[] = [];
    const groups = new Set<string>();
    // The turn ends at setImmediate: no write of this turn can join after it.
    const closed = new Promise<void>((resolve) =>
      setImmediate(() => {
        this.#batch = null;
        resolve();
      }),
    );
    const flushed = (async () => {
      await closed;
      // A failed commit is its own write's error (see #durable); the flush still covers the rest.
      await Promise.allSettled(commits);
      await this.#env.flushed;
      this.#flushes++;
      this.#writes += commits.length;
      this.#options.onFlush?.({ writes: commits.length, groups: [...groups] });
    })();
    // Awaited by every write of the batch; a rejection no write awaits yet must not go unhandled.
    flushed.catch(() => undefined);
    this.#batch = { commits, groups, flushed };
    return this.#batch;
  }
}
