import { Packr } from "msgpackr";
import { isValidToken, type NodeId } from "./ids.js";
import { type MessageMap, type MessageType, messageSchema } from "./schema.js";

/** Wire protocol version. A frame of another version is dropped, never guessed at. */
export const PROTOCOL_VERSION = 1;

/** NATS's default max_payload; a larger frame could not have been published anyway. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** A decoded, validated message with its routing envelope. */
export interface Envelope<T extends MessageType = MessageType> {
  readonly cluster: string;
  readonly group: string;
  readonly sender: NodeId;
  readonly type: T;
  readonly body: MessageMap[T];
}

/** Why a frame was dropped; each reason has its own counter. */
export type DropReason = "too_large" | "malformed" | "version" | "unknown_type" | "invalid" | "foreign" | "spoofed";

export const DROP_REASONS: readonly DropReason[] = [
  "too_large",
  "malformed",
  "version",
  "unknown_type",
  "invalid",
  "foreign",
  "spoofed",
];

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; reason: DropReason; detail: string };

// useRecords:false keeps frames self-describing, so processes never share hidden structure state.
// copyBuffers:true because decoded bytes (log entries, values) outlive the socket buffer they
// arrived in; with entries packed as one blob a frame has at most one binary field to copy.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

/** Encodes an envelope as the array [version, cluster, group, sender, type, body]. */
export function encodeFrame<T extends MessageType>(
  cluster: string,
  group: string,
  sender: NodeId,
  type: T,
  body: MessageMap[T],
): Uint8Array {
  return packr.pack([PROTOCOL_VERSION, cluster, group, sender, type, body]);
}

/**
 * Decodes and validates one frame. Never throws: any defect becomes a drop reason.
 * `expect` pins the cluster and group this subscriber belongs to.
 */
export function decodeFrame(
  data: Uint8Array,
  expect: { cluster: string; group: string },
  maxBytes = DEFAULT_MAX_FRAME_BYTES,
): DecodeResult {
  if (data.length > maxBytes) return { ok: false, reason: "too_large", detail: `${data.length} bytes` };
  let raw: unknown;
  try {
    raw = packr.unpack(data);
  } catch (err) {
    return { ok: false, reason: "malformed", detail: err instanceof Error ? err.message : String(err) };
  }
  if (!Array.isArray(raw) || raw.length !== 6) {
    return { ok: false, reason: "malformed", detail: "not a 6-element envelope" };
  }
  const [version, cluster, group, sender, type, body] = raw as unknown[];
  if (version !== PROTOCOL_VERSION) return { ok: false, reason: "version", detail: `version ${String(version)}` };
  if (!isValidToken(cluster) || !isValidToken(group) || !isValidToken(sender)) {
    return { ok: false, reason: "malformed", detail: "bad cluster, group or sender" };
  }
  if (cluster !== expect.cluster || group !== expect.group) {
    return { ok: false, reason: "foreign", detail: `${cluster}/${group}` };
  }
  const schema = messageSchema(type);
  if (schema === undefined) return { ok: false, reason: "unknown_type", detail: String(type).slice(0, 64) };
  if (!schema(body)) return { ok: false, reason: "invalid", detail: `body of ${String(type)}` };
  return { ok: true, envelope: { cluster, group, sender, type, body } as Envelope };
}

/** Encodes an application value (commands, results) with the same msgpack settings. */
export function packValue(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes an application value; throws on malformed input, so callers validate afterwards. */
export function unpackValue(data: Uint8Array): unknown {
  return packr.unpack(data);
}
