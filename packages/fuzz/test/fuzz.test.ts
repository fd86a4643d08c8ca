import { decodeFrame } from "@quorate/core";
import { Prng } from "@quorate/core/internal";
import { describe, expect, it } from "vitest";
import { DECODER_TARGET, fuzzDecoder, fuzzLive, liveProblems, nextFrame } from "../src/index.js";

// The short version of `pnpm fuzz` (which runs 1,000,000 frames per target); a fixed seed, so a
// failure here replays with `pnpm fuzz --frames 20000 --seed 1`.
const FRAMES = 20_000;
const SEED = 1;

describe("frame fuzzing", () => {
  it("the generator is a pure function of its seed", () => {
    const a = new Prng(42);
    const b = new Prng(42);
    for (let i = 0; i < 500; i++) {
      const x = nextFrame(a, DECODER_TARGET);
      const y = nextFrame(b, DECODER_TARGET);
      expect(Buffer.from(x.data).equals(Buffer.from(y.data))).toBe(true);
      expect(x.how).toBe(y.how);
    }
  });

  it("makes frames of every class, and hostile frames are well-formed", () => {
    const prng = new Prng(SEED);
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const frame = nextFrame(prng, DECODER_TARGET);
      seen.add(frame.class);
      if (frame.class === "hostile") expect(decodeFrame(frame.data, DECODER_TARGET).ok, frame.how).toBe(true);
    }
    expect([...seen].sort()).toEqual(["hostile", "mutated", "random"]);
  });

  it(`the decoder never throws and judges each of ${FRAMES} frames as its construction requires`, () => {
    const { counts, failures } = fuzzDecoder(SEED, FRAMES);
    expect(failures).toEqual([]);
    expect(counts.frames).toBe(FRAMES);
    const dropped = Object.values(counts.dropped).reduce((a, b) => a + b, 0);
    expect(counts.decoded + dropped).toBe(FRAMES);
    // Every reason the codec itself can give is reached (spoofing is the transport's check).
    for (const reason of ["too_large", "malformed", "version", "unknown_type", "invalid", "foreign"] as const) {
      expect(counts.dropped[reason], reason).toBeGreaterThan(0);
    }
    expect(counts.decoded).toBeGreaterThanOrEqual(counts.byClass.hostile);
  });

  it(`live Raft and Paxos members take ${FRAMES} frames: no failure, every bad frame counted, both groups commit`, async () => {
    const results = await fuzzLive(SEED, FRAMES);
    expect(results.map((r) => r.name)).toEqual(["raft", "paxos"]);
    for (const result of results) {
      expect(liveProblems(result), result.name).toEqual([]);
      expect(result.counts.frames).toBe(FRAMES / 2);
      expect(result.delivered, result.name).toBeGreaterThan(0);
      expect(result.droppedCounted.spoofed, result.name).toBeGreaterThan(0);
      expect(result.writesDuringFuzz, result.name).toBeGreaterThan(0);
    }
  });
});
