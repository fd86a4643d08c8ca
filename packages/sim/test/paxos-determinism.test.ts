import { describe, expect, test } from "vitest";
import { formatTraceRecord, paxosAdapter, type SimulationMode, simulate } from "../src/index.js";

async function fullRun(seed: number, mode: SimulationMode) {
  const result = await simulate({ seed, mode, protocol: paxosAdapter(), traceLimit: 1_000_000 });
  return { ...result, text: result.trace.map(formatTraceRecord).join("\n") };
}

describe("determinism of Multi-Paxos runs", () => {
  for (const mode of ["safety", "liveness"] as const) {
    test(`the same seed gives the identical trace and history (${mode})`, async () => {
      // Seed 3 commits some forty client operations in either mode: the histories compared are not trivial.
      const first = await fullRun(3, mode);
      const second = await fullRun(3, mode);
      expect(first.trace.length).toBeGreaterThan(500);
      expect(first.operations.ok).toBeGreaterThan(0);
      expect(second.text).toEqual(first.text);
      expect(second.digest).toBe(first.digest);
      expect(second.history).toBe(first.history);
      expect(second.steps).toBe(first.steps);
      expect(second.faults).toEqual(first.faults);
    });
  }

  test("another seed gives another run", async () => {
    const [a, b] = [await fullRun(3, "safety"), await fullRun(4, "safety")];
    expect(b.digest).not.toBe(a.digest);
  });
});
