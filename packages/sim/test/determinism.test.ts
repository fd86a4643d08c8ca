import { describe, expect, test } from "vitest";
import {
  formatTraceRecord,
  type ProtocolAdapter,
  paxosAdapter,
  raftAdapter,
  type SimulationMode,
  simulate,
} from "../src/index.js";

/**
 * One seed, one run: the same seed must give the same trace, history and faults, for both
 * protocols. `seed` is chosen per protocol so that the runs commit client operations.
 */
const PROTOCOLS: { name: string; adapter: () => ProtocolAdapter; seed: number; requireOps: boolean }[] = [
  { name: "Raft", adapter: raftAdapter, seed: 7, requireOps: false },
  // Seed 4 commits some forty client operations in either mode: the histories compared are not trivial.
  { name: "Multi-Paxos", adapter: paxosAdapter, seed: 4, requireOps: true },
];

for (const protocol of PROTOCOLS) {
  async function fullRun(seed: number, mode: SimulationMode) {
    const result = await simulate({ seed, mode, protocol: protocol.adapter(), traceLimit: 1_000_000 });
    return { ...result, text: result.trace.map(formatTraceRecord).join("\n") };
  }

  describe(`determinism of ${protocol.name} runs`, () => {
    for (const mode of ["safety", "liveness"] as const) {
      test(`the same seed gives the identical trace and history (${mode})`, async () => {
        const first = await fullRun(protocol.seed, mode);
        const second = await fullRun(protocol.seed, mode);
        expect(first.trace.length).toBeGreaterThan(500);
        if (protocol.requireOps) expect(first.operations.ok).toBeGreaterThan(0);
        expect(second.text).toEqual(first.text);
        expect(second.digest).toBe(first.digest);
        expect(second.history).toBe(first.history);
        expect(second.steps).toBe(first.steps);
        expect(second.faults).toEqual(first.faults);
      });
    }

    test("another seed gives another run", async () => {
      const [a, b] = [await fullRun(protocol.seed, "safety"), await fullRun(protocol.seed + 1, "safety")];
      expect(b.digest).not.toBe(a.digest);
    });
  });
}
