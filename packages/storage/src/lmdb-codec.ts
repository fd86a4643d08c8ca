import { ErrorCode, isEntryKind, QuorateError } from "@quorate/core";
import { copyBytes } from "./bytes.js";
import type { StoredEntry, StoredSnapshot } from "./types.js";

// Fixed binary layouts instead of msgpack: encoding runs in write() itself, so the stored bytes
// are a copy taken when the caller handed the data over, not when LMDB's batch later runs.
// Numbers are float64 so every safe integer round-trips.

/** kind (u8) | term (f64) | data */
const ENTRY_HEADER = 9;
/** index (f64) | term (f64) | config length (u32) | config | data */
const SNAPSHOT_HEADER = 20;

export function encodeEntry(entry: StoredEntry): Uint8Array {
  const bytes = new Uint8Array(ENTRY_HEADER + entry.data.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, entry.kind);
  view.setFloat64(1, entry.term, true);
  bytes.set(entry.data, ENTRY_HEADER);
  return bytes;
}

export function decodeEntry(index: number, bytes: Uint8Array, dir: string): StoredEntry {
  if (bytes.length < ENTRY_HEADER) throw corrupt(dir, `entry ${index} is truncated`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = view.getUint8(0);
  if (!isEntryKind(kind)) throw corrupt(dir, `entry ${index} has unknown kind ${kind}`);
  return { index, term: view.getFloat64(1, true), kind, data: copyBytes(bytes.subarray(ENTRY_HEADER)) };
}

export function encodeSnapshot(snapshot: StoredSnapshot): Uint8Array {
  const { config, data } = snapshot;
  const bytes = new Uint8Array(SNAPSHOT_HEADER + config.length + data.length);
  const view = new DataView(bytes.buffer);
  view.setFloat64(0, snapshot.index, true);
  view.setFloat64(8, snapshot.term, true);
  view.setUint32(16, config.length, true);
  bytes.set(config, SNAPSHOT_HEADER);
  bytes.set(data, SNAPSHOT_HEADER + config.length);
  return bytes;
}

export function decodeSnapshot(bytes: Uint8Array, dir: string): StoredSnapshot {
  if (bytes.length < SNAPSHOT_HEADER) throw corrupt(dir, "the snapshot is truncated");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const configEnd = SNAPSHOT_HEADER + view.getUint32(16, true);
  if (configEnd > bytes.length) throw corrupt(dir, "the snapshot's config is truncated");
  return {
    index: view.getFloat64(0, true),
    term: view.getFloat64(8, true),
    config: copyBytes(bytes.subarray(SNAPSHOT_HEADER, configEnd)),
    data: copyBytes(bytes.subarray(configEnd)),
  };
}

export function corrupt(dir: string, detail: string): QuorateError {
  return new QuorateError(ErrorCode.Storage, `data directory ${dir} is corrupt: ${detail}`);
}
