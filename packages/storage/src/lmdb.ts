import { ErrorCode, type Logger, QuorateError, silentLogger } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { Database, Key, RootDatabase } from "lmdb";
import { corrupt, decodeEntry, decodeSnapshot, encodeEntry, encodeSnapshot } from "./lmdb-codec.js";
import { describe, isRecord, openOwnedEnvironment, type StoreLayout, storageError } from "./lmdb-directory.js";
import { LogShape } from "./log-shape.js";
import type { HardState, OpenOptions, RaftState, RaftStorage, RaftWrite, StoredEntry } from "./types.js";

const LAYOUT: StoreLayout = { metaName: "meta", identityKey: "identity", formatVersion: 1, maxDbs: 3 };

/**
 * Where one Raft store keeps its state in an environment: a store that owns its environment
 * keys the log by index; a group among many (lmdb-groups.ts) prefixes every key with its name.
 */
export interface StoreKeys {
  /** Meta key of the hard state. */
  readonly hardState: string;
  /** Meta key of the sequence number of the last applied write; see `LmdbRaftStorage.#commit`. */
  readonly appliedWrite: string;
  /** Key of the one snapshot in the snapshot database. */
  readonly snapshot: Key;
  /** Key of the log entry at `index`; keys sort as their indexes do. */
  entry(index: number): Key;
  /** The index a key of `entry` was made from. */
  indexOf(key: Key): number;
}

const OWN_KEYS: StoreKeys = {
  hardState: "hardState",
  appliedWrite: "appliedWrite",
  snapshot: "latest",
  entry: (index) => index,
  indexOf: (key) => key as number,
};

/**
 * Opens (creating on first use) the LMDB store in `dir` and checks that it belongs to this
 * cluster and member. A store is recorded as theirs on first open; every later open fails
 * unless cluster and member match.
 */
export async function openLmdbStorage(options: OpenOptions): Promise<LmdbRaftStorage> {
  const { dir, cluster, member } = options;
  const logger = options.logger ?? silentLogger;
  return openOwnedEnvironment(options, LAYOUT, (owned) => {
    const log = owned.env.openDB<Uint8Array, Key>({ name: "log", encoding: "binary" });
    const snapshots = owned.env.openDB<Uint8Array, Key>({ name: "snapshot", encoding: "binary" });
    logger.info("storage opened", { dir, cluster, member, created: owned.created });
    return new LmdbRaftStorage({
      dir,
      env: owned.env,
      meta: owned.meta,
      log,
      snapshots,
      keys: OWN_KEYS,
      logger,
      durable: async (committed) => {
        await committed;
        await owned.env.flushed;
      },
      close: () => owned.close(),
    });
  });
}

/** What a LmdbRaftStorage is made of: the databases it writes, and how it waits for and ends them. */
export interface LmdbParts {
  /** The data directory, for messages (with the group, for a group's store). */
  readonly dir: string;
  readonly env: RootDatabase;
  readonly meta: Database<unknown, string>;
  readonly log: Database<Uint8Array, Key>;
  readonly snapshots: Database<Uint8Array, Key>;
  readonly keys: StoreKeys;
  readonly logger: Logger;
  /** Resolves once `committed` has committed and a flush (fsync) that covers it has completed. */
  durable(committed: Promise<void>): Promise<void>;
  /** Called once, after the last write settled: closes the environment, or releases the group. */
  close(): Promise<void>;
}

/**
 * Raft's durable state in one LMDB environment with three databases: meta (identity, hard state),
 * log (entries keyed by index) and snapshot; or one group's share of an environment that holds
 * many groups (lmdb-groups.ts), under keys prefixed with the group. Each write() is one LMDB child transaction; writes
 * issued in the same event turn share a commit and a single fsync (group commit), and every
 * write() resolves only after `flushed`, i.e. after the fsync that covers it.
 *
 * After any failed commit or flush the storage refuses all further calls: what the log on disk
 * holds is then no longer what Raft believes it holds, and the process should restart from load().
 */
export class LmdbRaftStorage implements RaftStorage {
  readonly dir: string;
  readonly #parts: LmdbParts;
  readonly #env: RootDatabase;
  readonly #meta: Database<unknown, string>;
  readonly #log: Database<Uint8Array, Key>;
  readonly #snapshots: Database<Uint8Array, Key>;
  readonly #keys: StoreKeys;
  readonly #logger: Logger;
  #shape: LogShape | null = null;
  /** Sequence number of the last accepted write. */
  #lastWrite: number;
  /** Settles when the last accepted write is durable or has failed. */
  #latest: Promise<void> = Promise.resolve();
  #failure: QuorateError | null = null;
  #closing: Promise<void> | null = null;

  constructor(parts: LmdbParts) {
    this.dir = parts.dir;
    this.#parts = parts;
    this.#env = parts.env;
    this.#meta = parts.meta;
    this.#log = parts.log;
    this.#snapshots = parts.snapshots;
    this.#keys = parts.keys;
    this.#logger = parts.logger;
    const appliedWrite = parts.meta.get(parts.keys.appliedWrite) ?? 0;
    if (typeof appliedWrite !== "number") throw corrupt(parts.dir, "the applied write counter is not a number");
    this.#lastWrite = appliedWrite;
  }

  async load(): Promise<RaftState> {
    this.#checkUsable();
    invariant(this.#shape === null, "load() is called once, before any write");
    const keys = this.#keys;
    const storedHardState = this.#meta.get(keys.hardState);
    if (storedHardState !== undefined && !isHardState(storedHardState)) {
      throw corrupt(this.dir, "the hard state is malformed");
    }
    const hardState = storedHardState ?? { term: 0, vote: null, commit: 0 };
    const snapshotBytes = this.#snapshots.get(keys.snapshot);
    const snapshot = snapshotBytes === undefined ? null : decodeSnapshot(snapshotBytes, this.dir);
    const entries: StoredEntry[] = [];
    let expected = (snapshot?.index ?? 0) + 1;
    const range = { start: keys.entry(expected), end: keys.entry(Number.MAX_SAFE_INTEGER) };
    for (const { key: stored, value } of this.#log.getRange(range)) {
      const key = keys.indexOf(stored);
      if (key !== expected) throw corrupt(this.dir, `entry ${key} follows entry ${expected - 1}`);
      entries.push(decodeEntry(key, value, this.dir));
      expected++;
    }
    const state: RaftState = { hardState: { ...hardState }, snapshot, entries };
    this.#shape = LogShape.of(state);
    return state;
  }

  // The LMDB transaction is queued before the first await, so writes commit in call order.
  async write(write: RaftWrite): Promise<void> {
    this.#checkUsable();
    const deleted = this.#loadedShape().accept(write);
    const snapshot = write.snapshot === undefined ? undefined : encodeSnapshot(write.snapshot);
    const entries = (write.entries ?? []).map((entry) => [entry.index, encodeEntry(entry)] as const);
    const hardState = write.hardState && {
      term: write.hardState.term,
      vote: write.hardState.vote,
      commit: write.hardState.commit,
    };
    const keys = this.#keys;
    return this.#commit(() => {
      for (const { from, to } of deleted) {
        for (let index = from; index <= to; index++) this.#log.removeSync(keys.entry(index));
      }
      if (snapshot !== undefined) this.#snapshots.putSync(keys.snapshot, snapshot);
      for (const [index, bytes] of entries) this.#log.putSync(keys.entry(index), bytes);
      if (hardState !== undefined) this.#meta.putSync(keys.hardState, hardState);
    });
  }

  async compact(upTo: number): Promise<void> {
    this.#checkUsable();
    this.#loadedShape().acceptCompaction(upTo);
    // Nothing to delete (see acceptCompaction); resolving after the previous write keeps the order.
    return this.#latest;
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    await this.#latest.catch(() => undefined);
    await this.#parts.close();
    this.#logger.info("storage closed", { dir: this.dir });
  }

  /**
   * Commits `apply` as one child transaction, so a write that throws halfway leaves nothing
   * behind. The write also records its sequence number and applies only on top of its
   * predecessor: should a commit fail, later writes, already queued, fail too instead of
   * leaving a hole in the log.
   */
  #commit(apply: () => void): Promise<void> {
    const sequence = ++this.#lastWrite;
    const committed = this.#env.childTransaction(() => {
      const applied = this.#meta.get(this.#keys.appliedWrite) ?? 0;
      if (applied !== sequence - 1) {
        throw storageError(`write ${sequence} was not applied because write ${sequence - 1} failed`);
      }
      apply();
      this.#meta.putSync(this.#keys.appliedWrite, sequence);
    });
    this.#latest = this.#durable(committed);
    return this.#latest;
  }

  async #durable(committed: Promise<void>): Promise<void> {
    try {
      await this.#parts.durable(committed);
    } catch (cause) {
      throw this.#fail(cause);
    }
  }

  #fail(cause: unknown): QuorateError {
    if (this.#failure === null) {
      this.#failure =
        cause instanceof QuorateError
          ? cause
          : storageError(`write to data directory ${this.dir} failed: ${describe(cause)}`, cause);
      this.#logger.error("storage failed; every further call will fail", { dir: this.dir, error: describe(cause) });
    }
    return this.#failure;
  }

  #checkUsable(): void {
    if (this.#closing !== null) throw new QuorateError(ErrorCode.Closed, `storage in ${this.dir} is closed`);
    if (this.#failure !== null) throw this.#failure;
  }

  #loadedShape(): LogShape {
    invariant(this.#shape !== null, "load() must complete before the first write");
    return this.#shape;
  }
}

function isHardState(value: unknown): value is HardState {
  return (
    isRecord(value) &&
    typeof value.term === "number" &&
    (value.vote === null || typeof value.vote === "string") &&
    typeof value.commit === "number"
  );
}
