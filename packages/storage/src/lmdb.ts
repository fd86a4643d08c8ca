import { constants } from "node:fs";
import { access, mkdir, realpath, stat } from "node:fs/promises";
import { ErrorCode, invariant, type Logger, QuorateError, silentLogger } from "@quorate/core";
import { type Database, open, type RootDatabase } from "lmdb";
import { corrupt, decodeEntry, decodeSnapshot, encodeEntry, encodeSnapshot } from "./lmdb-codec.js";
import { LogShape } from "./log-shape.js";
import type { HardState, OpenOptions, RaftState, RaftStorage, RaftWrite, StoredEntry } from "./types.js";

/** Bumped whenever the on-disk layout changes; a store of another format is refused, never guessed at. */
const FORMAT_VERSION = 1;

// Keys of the meta database.
const IDENTITY = "identity";
const HARD_STATE = "hardState";
/** Sequence number of the last applied write; see `LmdbRaftStorage.#commit`. */
const APPLIED_WRITE = "appliedWrite";
/** Key of the one snapshot in the snapshot database. */
const SNAPSHOT = "latest";

interface Identity {
  cluster: string;
  member: string;
  formatVersion: number;
}

/**
 * Real paths of the directories open in this process. LMDB shares one environment per path within
 * a process, so a second storage on the same directory would interleave its writes with the first.
 */
const openDirs = new Set<string>();

/**
 * Opens (creating on first use) the LMDB store in `dir` and checks that it belongs to this
 * cluster and member. A store is recorded as theirs on first open; every later open fails
 * unless cluster and member match.
 */
export async function openLmdbStorage(options: OpenOptions): Promise<LmdbRaftStorage> {
  const { dir, cluster, member } = options;
  const logger = options.logger ?? silentLogger;
  const path = await prepareDirectory(dir);
  if (openDirs.has(path)) throw storageError(`data directory ${dir} is already open in this process`);

  let env: RootDatabase;
  try {
    env = open({ path, noSubdir: false, maxDbs: 3 });
  } catch (cause) {
    throw storageError(`cannot open data directory ${dir}: ${describe(cause)}`, cause);
  }
  openDirs.add(path);
  try {
    const meta = env.openDB<unknown, string>({ name: "meta" });
    const recorded = meta.get(IDENTITY);
    if (recorded !== undefined) checkIdentity(dir, recorded, cluster, member);
    const log = env.openDB<Uint8Array, number>({ name: "log", encoding: "binary" });
    const snapshots = env.openDB<Uint8Array, string>({ name: "snapshot", encoding: "binary" });
    // Rewritten on every open, not just the first: the fsync that follows also makes durable
    // whatever a killed predecessor committed but had not yet flushed, so load() never shows
    // state that a power loss could still take back.
    const identity: Identity = { cluster, member, formatVersion: FORMAT_VERSION };
    await env.transaction(() => meta.putSync(IDENTITY, identity));
    await env.flushed;
    const appliedWrite = meta.get(APPLIED_WRITE) ?? 0;
    if (typeof appliedWrite !== "number") throw corrupt(dir, "the applied write counter is not a number");
    logger.info("storage opened", { dir, cluster, member, created: recorded === undefined });
    return new LmdbRaftStorage({ dir, path, env, meta, log, snapshots, appliedWrite, logger });
  } catch (err) {
    await env.close();
    openDirs.delete(path);
    if (err instanceof QuorateError) throw err;
    throw storageError(`cannot open data directory ${dir}: ${describe(err)}`, err);
  }
}

interface LmdbParts {
  dir: string;
  path: string;
  env: RootDatabase;
  meta: Database<unknown, string>;
  log: Database<Uint8Array, number>;
  snapshots: Database<Uint8Array, string>;
  appliedWrite: number;
  logger: Logger;
}

/**
 * Raft's durable state in one LMDB environment with three databases: meta (identity, hard state),
 * log (entries keyed by index) and snapshot. Each write() is one LMDB child transaction; writes
 * issued in the same event turn share a commit and a single fsync (group commit), and every
 * write() resolves only after `flushed`, i.e. after the fsync that covers it.
 *
 * After any failed commit or flush the storage refuses all further calls: what the log on disk
 * holds is then no longer what Raft believes it holds, and the process should restart from load().
 */
export class LmdbRaftStorage implements RaftStorage {
  readonly dir: string;
  readonly #path: string;
  readonly #env: RootDatabase;
  readonly #meta: Database<unknown, string>;
  readonly #log: Database<Uint8Array, number>;
  readonly #snapshots: Database<Uint8Array, string>;
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
    this.#path = parts.path;
    this.#env = parts.env;
    this.#meta = parts.meta;
    this.#log = parts.log;
    this.#snapshots = parts.snapshots;
    this.#lastWrite = parts.appliedWrite;
    this.#logger = parts.logger;
  }

  async load(): Promise<RaftState> {
    this.#checkUsable();
    invariant(this.#shape === null, "load() is called once, before any write");
    const storedHardState = this.#meta.get(HARD_STATE);
    if (storedHardState !== undefined && !isHardState(storedHardState)) {
      throw corrupt(this.dir, "the hard state is malformed");
    }
    const hardState = storedHardState ?? { term: 0, vote: null, commit: 0 };
    const snapshotBytes = this.#snapshots.get(SNAPSHOT);
    const snapshot = snapshotBytes === undefined ? null : decodeSnapshot(snapshotBytes, this.dir);
    const entries: StoredEntry[] = [];
    let expected = (snapshot?.index ?? 0) + 1;
    for (const { key, value } of this.#log.getRange({ start: expected })) {
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
    return this.#commit(() => {
      for (const { from, to } of deleted) for (let index = from; index <= to; index++) this.#log.removeSync(index);
      if (snapshot !== undefined) this.#snapshots.putSync(SNAPSHOT, snapshot);
      for (const [index, bytes] of entries) this.#log.putSync(index, bytes);
      if (hardState !== undefined) this.#meta.putSync(HARD_STATE, hardState);
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
    await this.#env.close();
    openDirs.delete(this.#path);
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
      const applied = this.#meta.get(APPLIED_WRITE) ?? 0;
      if (applied !== sequence - 1) {
        throw storageError(`write ${sequence} was not applied because write ${sequence - 1} failed`);
      }
      apply();
      this.#meta.putSync(APPLIED_WRITE, sequence);
    });
    this.#latest = this.#durable(committed);
    return this.#latest;
  }

  async #durable(committed: Promise<void>): Promise<void> {
    try {
      await committed;
      await this.#env.flushed;
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

/**
 * Creates `dir` if it is missing and returns its real path. Fails, having written nothing, if
 * `dir` is not a directory this process can read and write.
 */
async function prepareDirectory(dir: string): Promise<string> {
  try {
    const stats = await stat(dir);
    if (!stats.isDirectory()) throw storageError(`data directory ${dir} is not a directory`);
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    if (err instanceof QuorateError) throw err;
    if (errorCode(err) !== "ENOENT") {
      throw storageError(`data directory ${dir} is not readable and writable: ${describe(err)}`, err);
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (cause) {
      throw storageError(`cannot create data directory ${dir}: ${describe(cause)}`, cause);
    }
  }
  return realpath(dir);
}

function checkIdentity(dir: string, recorded: unknown, cluster: string, member: string): void {
  if (!isIdentity(recorded)) throw corrupt(dir, "its identity record is malformed");
  if (recorded.formatVersion !== FORMAT_VERSION) {
    throw storageError(
      `data directory ${dir} uses storage format ${recorded.formatVersion}; this version reads format ${FORMAT_VERSION}`,
    );
  }
  if (recorded.cluster !== cluster || recorded.member !== member) {
    throw storageError(
      `data directory ${dir} belongs to cluster ${recorded.cluster} member ${recorded.member}, not cluster ${cluster} member ${member}`,
    );
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function isIdentity(value: unknown): value is Identity {
  return (
    isRecord(value) &&
    typeof value.cluster === "string" &&
    typeof value.member === "string" &&
    typeof value.formatVersion === "number"
  );
}

function isHardState(value: unknown): value is HardState {
  return (
    isRecord(value) &&
    typeof value.term === "number" &&
    (value.vote === null || typeof value.vote === "string") &&
    typeof value.commit === "number"
  );
}

function storageError(message: string, cause?: unknown): QuorateError {
  return new QuorateError(ErrorCode.Storage, message, cause === undefined ? undefined : { cause });
}

function errorCode(err: unknown): unknown {
  return isRecord(err) ? err.code : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
