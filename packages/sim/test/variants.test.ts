import type { KvStateMachine } from "@quorate/kv";
import { describe, expect, test } from "vitest";
import {
  DEFAULT_NEMESIS,
  formatFailure,
  leaseRaftAdapter,
  type NemesisOptions,
  type ProtocolAdapter,
  raftAdapter,
  type SimulationMode,
  type SimulationResult,
  simulate,
} from "../src/index.js";
import {
  type BROKEN_VARIANTS,
  brokenAdapter,
  DeleteOldRevisionStore,
  EarlyExpiryStore,
  HalfTxnStore,
  RangeSkipsKeyStore,
  RevokeKeepsKeysStore,
  UnconditionalUpdateStore,
} from "./variants.js";

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
    { variant: "unconfirmed-read", caughtBy: "read-quorum", maxSeeds: 200 },
    { variant: "long-lease", caughtBy: "deposed-leader-read", maxSeeds: 200 },
    { variant: "read-before-term-commit", caughtBy: "stale-read", maxSeeds: 200 },
    { variant: "index-only-vote", caughtBy: "leader-completeness", maxSeeds: 200 },
    { variant: "stale-round", caughtBy: "protocol-violation", maxSeeds: 200 },
    { variant: "stale-round-accepted", caughtBy: "read-quorum", maxSeeds: 200 },
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

  /** Broken stores: every replica applies the same wrong result, so only the linearizability check sees them. */
  const stores: { name: string; what: string; store: () => KvStateMachine }[] = [
    {
      name: "unconditional-update",
      what: "update ignores the revision condition",
      store: () => new UnconditionalUpdateStore(),
    },
    { name: "half-txn", what: "transaction applies half its writes", store: () => new HalfTxnStore() },
    { name: "range-skips-key", what: "range skips a key", store: () => new RangeSkipsKeyStore() },
    { name: "revoke-keeps-keys", what: "revoke keeps the lease's keys", store: () => new RevokeKeepsKeysStore() },
    { name: "early-expiry", what: "leases expire at half their TTL", store: () => new EarlyExpiryStore() },
    {
      name: "delete-old-revision",
      what: "delete reports the deleted value's revision as its own",
      store: () => new DeleteOldRevisionStore(),
    },
  ];
  for (const { name, what, store } of stores) {
    test(`a store whose ${what}: caught by linearizability within 20 seeds`, async () => {
      let caught: SimulationResult | null = null;
      for (let seed = 1; seed <= 20 && caught === null; seed++) {
        const result = await simulate({ seed, mode: "safety", protocol: raftAdapter(), store });
        if (result.violation !== null) caught = result;
      }
      expect(caught, `${name} was not caught in 20 seeds`).not.toBeNull();
      const result = caught as SimulationResult;
      console.info(`${name}: caught at seed ${result.seed}: ${result.violation?.message}`);
      expect(result.violation?.kind, formatFailure(result)).toBe("linearizability");
    }, 600_000);
  }

  test("a cluster that never commits a client write fails liveness mode", async () => {
    const result = await simulate({ seed: 1, mode: "liveness", protocol: brokenAdapter("refuse-proposals") });
    expect(result.violation?.kind, formatFailure(result)).toBe("liveness");
  });
});

/**
 * For the clock variant: new leaders are left alone (not crashed, cut off or slowed), so they
 * commit while the old one is paused, and pauses are brief, so requests that queued at a paused
 * leader are still awaited when it resumes.
 */
const PAUSE_NEMESIS: NemesisOptions = {
  ...DEFAULT_NEMESIS,
  leaderCrashChance: 0,
  leaderIsolationChance: 0,
  leaderSlowDiskChance: 0,
  pauseMs: [250, 400],
};
const PAUSE_SEEDS = 40;

/** Seeds 1..PAUSE_SEEDS of `protocol` in safety mode under PAUSE_NEMESIS: the first that fails, or null. */
async function firstFailingUnderPauses(protocol: ProtocolAdapter): Promise<SimulationResult | null> {
  for (let seed = 1; seed <= PAUSE_SEEDS; seed++) {
    const result = await simulate({
      seed,
      mode: "safety",
      faultPeriodMs: FAULT_PERIOD_MS,
      protocol,
      nemesis: PAUSE_NEMESIS,
    });
    if (result.violation !== null) return result;
  }
  return null;
}

describe("a host that counts one tick per timer callback (bug 4) is caught", () => {
  test(`one-tick-per-callback (raft-lease): a resumed leader's read, caught by deposed-leader-read within ${PAUSE_SEEDS} seeds`, async () => {
    const caught = await firstFailingUnderPauses(brokenAdapter("one-tick-per-callback"));
    expect(caught, `one-tick-per-callback was not caught in ${PAUSE_SEEDS} seeds`).not.toBeNull();
    const result = caught as SimulationResult;
    console.info(`one-tick-per-callback: caught at seed ${result.seed}: ${result.violation?.message}`);
    expect(result.violation?.kind, formatFailure(result)).toBe("deposed-leader-read");
  }, 300_000);

  test(`raft-lease, whose ticks follow the clock, passes the same check over the same ${PAUSE_SEEDS} seeds`, async () => {
    const failed = await firstFailingUnderPauses(leaseRaftAdapter());
    expect(failed === null ? null : formatFailure(failed)).toBeNull();
  }, 300_000);
});
