import {
  formatFailure,
  type ProtocolAdapter,
  raftAdapter,
  type SimulationMode,
  type SimulationResult,
  simulate,
} from "../src/index.js";

/** Runs seeds [first, first + count) of the real protocol (Raft by default) and returns the failure reports of those that failed. */
export async function failingSeeds(
  mode: SimulationMode,
  first: number,
  count: number,
  protocol: ProtocolAdapter = raftAdapter(),
): Promise<string[]> {
  const failures: string[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result: SimulationResult = await simulate({ seed, mode, protocol });
    if (result.violation !== null) failures.push(formatFailure(result));
  }
  return failures;
}
