import { describe, expect, test } from "vitest";
import { formatTraceRecord, raftAdapter, type SimulationMode, simulate } from "../src/index.js";

async function fullRun(seed: number, mode: SimulationMode) {
  const result = await simulate({ seed, mode, protocol: raftAdapter(), traceLimit: 1_000_000 });
  return { ...result, text: result.trace.map(formatTraceRecord).join("\n") };
}

describe("determinism", () => {
  for (const mode of ["safety", "liveness"] as const) {
    test(`the same seed gives the identical trace and history (${mode})`, async () => {
      const first = await fullRun(7, mode);
      const second = await fullRun(7, mode);
      expect(first.trace.length).toBeGreaterThan(500);
      expect(second.text).toEqual(first.text);
      expect(second.digest).toBe(first.digest);
      expect(second.history).toBe(first.history);
      expect(second.steps).toBe(first.steps);
      expect(second.faults).toEqual(first.faults);
    });
  }

  test("another seed gives another run", async () => {
    const [a, b] = [await fullRun(7, "safety"), await fullRun(8, "safety")];
    expect(b.digest).not.toBe(a.digest);
  });
});
