import { describe, expect, test } from "vitest";
import { paxosAdapter } from "../src/index.js";
import { failingSeeds, suiteSeedRanges } from "./seeds.js";

// Faults first, then everything heals: a new client write must then commit within the bound.
describe("liveness mode: 200 seeds of the real Multi-Paxos (from the commit's offset)", () => {
  for (const { first, count } of suiteSeedRanges(200)) {
    test(`seeds ${first}..${first + count - 1}`, async () => {
      expect(await failingSeeds("liveness", first, count, paxosAdapter())).toEqual([]);
    }, 120_000);
  }
});
