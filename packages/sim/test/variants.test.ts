import { describe, expect, test } from "vitest";
import { formatFailure, type SimulationMode, type SimulationResult, simulate } from "../src/index.js";
import { type BROKEN_VARIANTS, brokenAdapter } from "./variants.js";

/**
 * Seeds of 10 virtual seconds, twice the default: Figure 8 needs a chain of several elections,
 * and the old-term commit is then caught about 6 times in 200 seeds rather than once or twice.
 */
const FAULT_PERIOD_MS = 10_000;

/** Runs seeds from 1 until one fails; returns that run, or null if none did within `maxSeeds`. */
async function firstCaught(variant: keyof typeof BROKEN_VARIANTS, mode: SimulationMode, maxSeeds: number) {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const result: SimulationResult = await simulate({
      seed,
      mode,
      faultPeriodMs: FAULT_PERIOD_MS,
      protocol: brokenAdapter(variant),
    });
    if (result.violation !== null) return result;
  }
  return null;
}

describe("broken variants of the Raft machine are caught", () => {
  /** The net must catch each variant within `maxSeeds` seeds (the seed that does today is in the README). */
  const cases: { variant: keyof typeof BROKEN_VARIANTS; caughtBy: string; maxSeeds: number }[] = [
    { variant: "old-term-commit", caughtBy: "leader-completeness", maxSeeds: 200 },
    { variant: "double-vote", caughtBy: "double-vote", maxSeeds: 200 },
    { variant: "forget-vote", caughtBy: "double-vote", maxSeeds: 200 },
    { variant: "concurrent-changes", caughtBy: "membership-overlap", maxSeeds: 200 },
    { variant: "unconfirmed-read", caughtBy: "deposed-leader-read", maxSeeds: 200 },
    { variant: "long-lease", caughtBy: "deposed-leader-read", maxSeeds: 200 },
    { variant: "read-before-term-commit", caughtBy: "stale-read", maxSeeds: 200 },
    { variant: "index-only-vote", caughtBy: "leader-completeness", maxSeeds: 200 },
    { variant: "stale-round", caughtBy: "protocol-violation", maxSeeds: 200 },
    { variant: "send-before-durable-term", caughtBy: "durable-term-before-send", maxSeeds: 200 },
  ];
  for (const { variant, caughtBy, maxSeeds } of cases) {
    test(`${variant}: caught by ${caughtBy} within ${maxSeeds} seeds`, async () => {
      const caught = await firstCaught(variant, "safety", maxSeeds);
      expect(caught, `${variant} was not caught in ${maxSeeds} seeds`).not.toBeNull();
      const result = caught as SimulationResult;
      console.info(
        `${variant}: caught at seed ${result.seed} by ${result.violation?.kind}: ${result.violation?.message}`,
      );
      expect(result.violation?.kind, formatFailure(result)).toBe(caughtBy);
    }, 600_000);
  }

  test("a cluster that never commits a client write fails liveness mode", async () => {
    const result = await simulate({ seed: 1, mode: "liveness", protocol: brokenAdapter("refuse-proposals") });
    expect(result.violation?.kind, formatFailure(result)).toBe("liveness");
  });
});
