import { createHash } from "node:crypto";
import {
  ErrorCode,
  isValidToken,
  literal,
  type NodeId,
  object,
  packValue,
  QuorateError,
  string,
  uint,
  unpackValue,
  validateMembers,
} from "@quorate/core";
import type { RaftStorage, StoredSnapshot } from "@quorate/storage";
import { type ClusterConfig, decodeConfig, encodeConfig } from "./config.js";

/**
 * A backup of a Raft cluster: the state machine's snapshot at `index`, the term of that index
 * and the configuration in force there, taken on the leader after a read barrier.
 */
export interface RaftBackup {
  readonly cluster: string;
  readonly group: string;
  readonly index: number;
  readonly term: number;
  readonly config: ClusterConfig;
  /** When the leader took it, in milliseconds since the epoch: for operators, never for the protocol. */
  readonly createdAtMs: number;
  readonly data: Uint8Array;
}

/**
 * The backup file, version 1 (all integers big-endian):
 *
 *   offset 0   8 bytes   magic: 0x89 "QUORATE" (the high byte catches 7-bit and text-mode transfers)
 *   offset 8   uint32    format version, 1
 *   offset 12  uint32    header length H
 *   offset 16  H bytes   header, msgpack: { protocol: "raft", cluster, group, index, term,
 *                        config: { voters, learners }, createdAtMs, dataBytes }
 *   16 + H     dataBytes the state machine's snapshot, as members store it
 *   end - 32   32 bytes  SHA-256 of every byte before it
 */
export const BACKUP_MAGIC = Uint8Array.from([0x89, ...new TextEncoder().encode("QUORATE")]);
export const BACKUP_FORMAT_VERSION = 1;
const PREFIX_BYTES = 16;
const CHECKSUM_BYTES = 32;
/** A header is a few hundred bytes; this bounds what a damaged length field can make us decode. */
const MAX_HEADER_BYTES = 1 << 20;

const memberList = (v: unknown): v is string[] => Array.isArray(v) && v.length <= 1024 && v.every(isValidToken);
const headerShape = object({
  protocol: literal("raft"),
  cluster: string(256),
  group: string(256),
  index: uint,
  term: uint,
  config: object({ voters: memberList, learners: memberList }),
  createdAtMs: uint,
  dataBytes: uint,
});

function sha256(bytes: Uint8Array): Uint8Array {
  return createHash("sha256").update(bytes).digest();
}

/** The backup as a file's bytes; `decodeBackup` reads them back. */
export function encodeBackup(backup: RaftBackup): Uint8Array {
  const header = packValue({
    protocol: "raft",
    cluster: backup.cluster,
    group: backup.group,
    index: backup.index,
    term: backup.term,
    config: { voters: [...backup.config.voters], learners: [...backup.config.learners] },
    createdAtMs: backup.createdAtMs,
    dataBytes: backup.data.length,
  });
  const file = new Uint8Array(PREFIX_BYTES + header.length + backup.data.length + CHECKSUM_BYTES);
  const view = new DataView(file.buffer);
  file.set(BACKUP_MAGIC, 0);
  view.setUint32(8, BACKUP_FORMAT_VERSION);
  view.setUint32(12, header.length);
  file.set(header, PREFIX_BYTES);
  file.set(backup.data, PREFIX_BYTES + header.length);
  const body = file.subarray(0, file.length - CHECKSUM_BYTES);
  file.set(sha256(body), body.length);
  return file;
}

function corrupt(what: string, detail: string): QuorateError {
  return new QuorateError(ErrorCode.Corrupt, `${what} is not a usable Quorate backup: ${detail}`);
}

/**
 * Reads a backup file, checking everything before trusting any of it: magic, version, lengths,
 * the header's shape and the checksum. Throws a Corrupt error naming `what` (the file) otherwise.
 */
export function decodeBackup(file: Uint8Array, what = "the file"): RaftBackup {
  // A file of something else says so, however short; a short backup says it is truncated.
  if (!BACKUP_MAGIC.every((byte, i) => i >= file.length || file[i] === byte)) {
    throw corrupt(what, "it does not start with the magic bytes");
  }
  if (file.length < PREFIX_BYTES + CHECKSUM_BYTES) {
    throw corrupt(what, `${file.length} bytes is shorter than the smallest backup (truncated)`);
  }
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = view.getUint32(8);
  if (version !== BACKUP_FORMAT_VERSION) {
    throw corrupt(what, `format version ${version}; this quorate reads version ${BACKUP_FORMAT_VERSION}`);
  }
  const headerBytes = view.getUint32(12);
  if (headerBytes > MAX_HEADER_BYTES || PREFIX_BYTES + headerBytes + CHECKSUM_BYTES > file.length) {
    throw corrupt(what, `its header of ${headerBytes} bytes does not fit in ${file.length} bytes (truncated?)`);
  }
  let header: unknown;
  try {
    header = unpackValue(file.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes));
  } catch {
    throw corrupt(what, "its header does not decode");
  }
  if (!headerShape(header)) throw corrupt(what, "its header is malformed");
  const expected = PREFIX_BYTES + headerBytes + header.dataBytes + CHECKSUM_BYTES;
  if (file.length !== expected) {
    throw corrupt(
      what,
      `it holds ${file.length} bytes, its header says ${expected}${file.length < expected ? " (truncated)" : ""}`,
    );
  }
  const body = file.subarray(0, file.length - CHECKSUM_BYTES);
  if (Buffer.compare(sha256(body), file.subarray(body.length)) !== 0) {
    throw corrupt(what, "the SHA-256 checksum does not match its contents (damaged)");
  }
  let config: ClusterConfig;
  try {
    config = decodeConfig(encodeConfig(header.config));
  } catch (err) {
    throw corrupt(what, err instanceof Error ? err.message : String(err));
  }
  if (header.index < 1) throw corrupt(what, "its snapshot index is 0");
  const dataStart = PREFIX_BYTES + headerBytes;
  return {
    cluster: header.cluster,
    group: header.group,
    index: header.index,
    term: header.term,
    config,
    createdAtMs: header.createdAtMs,
    data: file.slice(dataStart, dataStart + header.dataBytes),
  };
}

/** What `seedFromBackup` wrote: the snapshot a member now starts from. */
export type SeededSnapshot = Pick<StoredSnapshot, "index" | "term"> & { readonly config: ClusterConfig };

/**
 * Seeds an empty store so that its member starts from `backup` as one of a new cluster whose
 * voters are `voters`, as `etcdutl snapshot restore` does: the snapshot at the backup's index and
 * term with the fresh configuration, the commit index at the snapshot. Every member of the new
 * cluster is seeded from the same backup with the same voters; they then elect a leader whose
 * log continues after the backup's index, so revisions keep growing. Refuses a store that holds
 * anything (Storage): a restore never overwrites a member's state.
 */
export async function seedFromBackup(
  storage: RaftStorage,
  backup: RaftBackup,
  self: NodeId,
  voters: readonly NodeId[],
): Promise<SeededSnapshot> {
  validateMembers(voters, self);
  const state = await storage.load();
  if (state.snapshot !== null || state.entries.length > 0 || state.hardState.term > 0) {
    throw new QuorateError(
      ErrorCode.Storage,
      "the data directory already holds a member's state; restore needs a new one",
    );
  }
  const config: ClusterConfig = { voters: [...voters], learners: [] };
  await storage.write({
    snapshot: { index: backup.index, term: backup.term, config: encodeConfig(config), data: backup.data },
    hardState: { term: backup.term, vote: null, commit: backup.index },
  });
  return { index: backup.index, term: backup.term, config };
}
