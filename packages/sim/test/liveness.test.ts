import { describe, expect, test } from "vitest";
import { failingSeeds, SEED_OFFSET } from "./seeds.js";

// Faults first, then everything heals: a new client write must then commit within the bound.
describe("liveness mode: 500 seeds of the real Raft", () => {
  for (let first = SEED_OFFSET + 1; first <= SEED_OFFSET + 500; first += 100) {
    test(`seeds ${first}..${first + 99}`, async () => {
      expect(await failingSeeds("liveness", first, 100)).toEqual([]);
    }, 120_000);
  }
});
