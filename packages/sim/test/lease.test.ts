import { describe, expect, test } from "vitest";
import { leaseRaftAdapter } from "../src/index.js";
import { failingSeeds, SEED_OFFSET } from "./seeds.js";

// Reads served from leader leases, with clocks drifting apart, crashes and partitions: every
// invariant after every step, then the client history (reads included) must be linearizable.
describe("Raft with lease reads: 100 seeds per mode", () => {
  for (const mode of ["safety", "liveness"] as const) {
    test(`${mode} seeds ${SEED_OFFSET + 1}..${SEED_OFFSET + 100}`, async () => {
      expect(await failingSeeds(mode, SEED_OFFSET + 1, 100, leaseRaftAdapter())).toEqual([]);
    }, 180_000);
  }
});
