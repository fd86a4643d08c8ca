import { describe, expect, test } from "vitest";
import { leaseRaftAdapter } from "../src/index.js";
import { failingSeeds, suiteSeedRanges } from "./seeds.js";

// Reads served from leader leases, with clocks drifting apart, crashes and partitions: every
// invariant after every step, then the client history (reads included) must be linearizable.
describe("Raft with lease reads: 100 seeds per mode (from the commit's offset)", () => {
  for (const mode of ["safety", "liveness"] as const) {
    for (const { first, count } of suiteSeedRanges(100)) {
      test(`${mode} seeds ${first}..${first + count - 1}`, async () => {
        expect(await failingSeeds(mode, first, count, leaseRaftAdapter())).toEqual([]);
      }, 120_000);
    }
  }
});
