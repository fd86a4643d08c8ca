import { describe, expect, test } from "vitest";
import { paxosAdapter } from "../src/index.js";
import { failingSeeds } from "./seeds.js";

// Faults first, then everything heals: a new client write must then commit within the bound.
describe("liveness mode: 500 seeds of the real Multi-Paxos", () => {
  for (let first = 1; first <= 500; first += 100) {
    test(`seeds ${first}..${first + 99}`, async () => {
      expect(await failingSeeds("liveness", first, 100, paxosAdapter())).toEqual([]);
    }, 120_000);
  }
});
