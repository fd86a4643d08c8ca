import { formatFailure, raftAdapter, type SimulationMode, type SimulationResult, simulate } from "../src/index.js";

/** Runs seeds [first, first + count) of the real Raft and returns the failure reports of those that failed. */
export async function failingSeeds(mode: SimulationMode, first: number, count: number): Promise<string[]> {
  const failures: string[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result: SimulationResult = await simulate({ seed, mode, protocol: raftAdapter() });
    if (result.violation !== null) failures.push(formatFailure(result));
  }
  return failures;
}
