import { constants } from "node:fs";
import { access, mkdir, realpath, stat } from "node:fs/promises";
import { ErrorCode, QuorateError } from "@quorate/core";
import { type Database, open, type RootDatabase } from "lmdb";
import { corrupt } from "./lmdb-codec.js";
import type { OpenOptions } from "./types.js";

// Opening an LMDB data directory that belongs to one member of one cluster: what Raft's store
// and the acceptor's store both do before they read anything.

interface Identity {
  cluster: string;
  member: string;
  formatVersion: number;
}

/** Where a store keeps its identity, and which layout it writes. */
export interface StoreLayout {
  /** The meta database, which holds the identity record. */
  metaName: string;
  /** The identity record's key in the meta database. */
  identityKey: string;
  /** Bumped whenever the store's on-disk layout changes; a store of another format is refused, never guessed at. */
  formatVersion: number;
  /** Named databases in the environment, the meta database included. */
  maxDbs: number;
}

/** An open environment whose identity was checked and made durable. */
export interface OwnedEnvironment {
  /** The directory's real path. */
  readonly path: string;
  readonly env: RootDatabase;
  readonly meta: Database<unknown, string>;
  /** True when this open recorded the identity for the first time. */
  readonly created: boolean;
  /** Closes the environment and frees the directory for another open in this process. */
  close(): Promise<void>;
}

/**
 * Real paths of the directories open in this process. LMDB shares one environment per path within
 * a process, so a second storage on the same directory would interleave its writes with the first.
 */
const openDirs = new Set<string>();

/**
 * Opens (creating on first use) the LMDB environment in `dir` and checks that it belongs to this
 * cluster and member. A store is recorded as theirs on first open; every later open fails unless
 * cluster, member and format match. `build` then makes the storage from the environment; if it
 * throws, the environment is closed again.
 */
export async function openOwnedEnvironment<S>(
  { dir, cluster, member }: OpenOptions,
  layout: StoreLayout,
  build: (owned: OwnedEnvironment) => S,
): Promise<S> {
  const path = await prepareDirectory(dir);
  if (openDirs.has(path)) throw storageError(`data directory ${dir} is already open in this process`);

  let env: RootDatabase;
  try {
    env = open({ path, noSubdir: false, maxDbs: layout.maxDbs });
  } catch (cause) {
    throw storageError(`cannot open data directory ${dir}: ${describe(cause)}`, cause);
  }
  openDirs.add(path);
  const close = async () => {
    await env.close();
    openDirs.delete(path);
  };
  try {
    const meta = env.openDB<unknown, string>({ name: layout.metaName });
    const recorded = meta.get(layout.identityKey);
    if (recorded !== undefined) checkIdentity(dir, recorded, cluster, member, layout.formatVersion);
    // Rewritten on every open, not just the first: the fsync that follows also makes durable
    // whatever a killed predecessor committed but had not yet flushed, so load() never shows
    // state that a power loss could still take back.
    const identity: Identity = { cluster, member, formatVersion: layout.formatVersion };
    await env.transaction(() => meta.putSync(layout.identityKey, identity));
    await env.flushed;
    return build({ path, env, meta, created: recorded === undefined, close });
  } catch (err) {
    await close();
    if (err instanceof QuorateError) throw err;
    throw storageError(`cannot open data directory ${dir}: ${describe(err)}`, err);
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

function checkIdentity(dir: string, recorded: unknown, cluster: string, member: string, formatVersion: number): void {
  if (!isIdentity(recorded)) throw corrupt(dir, "its identity record is malformed");
  if (recorded.formatVersion !== formatVersion) {
    throw storageError(
      `data directory ${dir} uses storage format ${recorded.formatVersion}; this version reads format ${formatVersion}`,
    );
  }
  if (recorded.cluster !== cluster || recorded.member !== member) {
    throw storageError(
      `data directory ${dir} belongs to cluster ${recorded.cluster} member ${recorded.member}, not cluster ${cluster} member ${member}`,
    );
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
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

export function storageError(message: string, cause?: unknown): QuorateError {
  return new QuorateError(ErrorCode.Storage, message, cause === undefined ? undefined : { cause });
}

function errorCode(err: unknown): unknown {
  return isRecord(err) ? err.code : undefined;
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
