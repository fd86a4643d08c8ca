import { describe, expect, test } from "vitest";
import { failingSeeds, suiteSeedRanges } from "./seeds.js";

// Faults first, then everything heals: a new client write must then commit within the bound.
describe("liveness mode: 300 seeds of the real Raft (from the commit's offset)", () => {
  for (const { first, count } of suiteSeedRanges(300)) {
    test(`seeds ${first}..${first + count - 1}`, async () => {
      expect(await failingSeeds("liveness", first, count)).toEqual([]);
    }, 120_000);
  }
});
