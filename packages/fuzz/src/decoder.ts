import { DEFAULT_MAX_FRAME_BYTES, DROP_REASONS, type DropReason, decodeFrame, messageSchema } from "@quorate/core";
import { Prng } from "@quorate/core/internal";
import { ALL_TYPES, type FrameClass, type FuzzFrame, type FuzzTarget, nextFrame } from "./frames.js";

/** Outcome counts of one fuzz run, by the class the generator meant and by what the codec did. */
export interface FuzzCounts {
  frames: number;
  byClass: Record<FrameClass, number>;
  decoded: number;
  dropped: Record<DropReason, number>;
}

/** A frame the codec mishandled: it threw, or did something the frame's construction rules out. */
export interface FuzzFailure {
  readonly seed: number;
  /** Position in the seed's frame stream: the frame replays by generating that many. */
  readonly index: number;
  readonly how: string;
  readonly problem: string;
  readonly hex: string;
}

export function emptyCounts(): FuzzCounts {
  const dropped = {} as Record<DropReason, number>;
  for (const reason of DROP_REASONS) dropped[reason] = 0;
  return { frames: 0, byClass: { random: 0, mutated: 0, hostile: 0 }, decoded: 0, dropped };
}

export const DECODER_TARGET: FuzzTarget = {
  cluster: "fuzz",
  group: "kv",
  fuzzer: "fuzzer",
  members: ["n1", "n2", "n3"],
  types: ALL_TYPES,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
};

export function toHex(data: Uint8Array, maxBytes = 512): string {
  const hex = Buffer.from(data.subarray(0, maxBytes)).toString("hex");
  return data.length > maxBytes ? `${hex}… (${data.length} bytes)` : hex;
}

/**
 * Checks one frame against the decode entry point the transports use. Returns the problem, or
 * null when the codec did what it must: decode to a schema-valid message of the expected scope,
 * or drop with a reason, and never throw.
 */
export function checkDecode(frame: FuzzFrame, target: FuzzTarget, counts: FuzzCounts): string | null {
  counts.frames++;
  counts.byClass[frame.class]++;
  let result: ReturnType<typeof decodeFrame>;
  try {
    result = decodeFrame(frame.data, target, target.maxFrameBytes);
  } catch (err) {
    return `decodeFrame threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
  }
  if (result.ok) {
    counts.decoded++;
    const { envelope } = result;
    if (envelope.cluster !== target.cluster || envelope.group !== target.group) return "decoded a foreign envelope";
    const schema = messageSchema(envelope.type);
    if (schema === undefined || !schema(envelope.body)) return `decoded a ${envelope.type} its schema refuses`;
    if (frame.expect !== null && frame.expect !== "decode") return `decoded, expected a drop (${frame.expect})`;
    return null;
  }
  if (!DROP_REASONS.includes(result.reason)) return `unknown drop reason ${String(result.reason)}`;
  counts.dropped[result.reason]++;
  if (frame.expect === "decode") return `dropped (${result.reason}: ${result.detail}), expected to decode`;
  if (frame.expect !== null && frame.expect !== result.reason) {
    return `dropped as ${result.reason} (${result.detail}), expected ${frame.expect}`;
  }
  return null;
}

/** Feeds `frames` generated frames from `seed` to the decoder; stops collecting failures after `maxFailures`. */
export function fuzzDecoder(
  seed: number,
  frames: number,
  options: { target?: FuzzTarget; maxFailures?: number } = {},
): { counts: FuzzCounts; failures: FuzzFailure[] } {
  const target = options.target ?? DECODER_TARGET;
  const maxFailures = options.maxFailures ?? 20;
  const prng = new Prng(seed);
  const counts = emptyCounts();
  const failures: FuzzFailure[] = [];
  for (let index = 0; index < frames; index++) {
    const frame = nextFrame(prng, target);
    const problem = checkDecode(frame, target, counts);
    if (problem !== null && failures.length < maxFailures) {
      failures.push({ seed, index, how: frame.how, problem, hex: toHex(frame.data) });
    }
  }
  return { counts, failures };
}
