import { describe, expect, test } from "vitest";
import { failingSeeds, suiteSeedRanges } from "./seeds.js";

// Faults at any time for the whole run; every invariant after every step, then linearizability.
describe("safety mode: 300 seeds of the real Raft (from the commit's offset)", () => {
  for (const { first, count } of suiteSeedRanges(300)) {
    test(`seeds ${first}..${first + count - 1}`, async () => {
      expect(await failingSeeds("safety", first, count)).toEqual([]);
    }, 120_000);
  }
});
