import type { Verdict } from "@quorate/checker";
import { emptyFaultCounts, FAULT_KINDS, type FaultCounts } from "./faults.js";
import type { ProtocolAdapter } from "./protocol.js";
import { type SimulationMode, type SimulationResult, simulate } from "./simulation.js";

/** Totals over many seeds. */
export interface BatchSummary {
  seeds: number;
  steps: number;
  virtualMs: number;
  realMs: number;
  faults: FaultCounts;
  violations: number;
  operations: { ok: number; fail: number; info: number };
  verdicts: Record<Verdict, number>;
}

export function emptySummary(): BatchSummary {
  return {
    seeds: 0,
    steps: 0,
    virtualMs: 0,
    realMs: 0,
    faults: emptyFaultCounts(),
    violations: 0,
    operations: { ok: 0, fail: 0, info: 0 },
    verdicts: { linearizable: 0, "not-linearizable": 0, unknown: 0 },
  };
}

export function addToSummary(summary: BatchSummary, result: SimulationResult): void {
  summary.seeds++;
  summary.steps += result.steps;
  summary.virtualMs += result.virtualMs;
  summary.realMs += result.realMs;
  for (const kind of FAULT_KINDS) summary.faults[kind] += result.faults[kind];
  if (result.violation !== null) summary.violations++;
  summary.operations.ok += result.operations.ok;
  summary.operations.fail += result.operations.fail;
  summary.operations.info += result.operations.info;
  // A run that ended on an earlier violation has no verdict of its own.
  if (result.violation === null || result.violation.kind === "linearizability")
    summary.verdicts[result.linearizability]++;
}

export interface BatchOptions {
  readonly protocol: ProtocolAdapter;
  readonly mode: SimulationMode;
  readonly firstSeed: number;
  /** Seeds to run; Infinity runs until `shouldStop` or a violation. */
  readonly count: number;
  /** Called after every seed. */
  readonly onResult?: (result: SimulationResult, summary: BatchSummary) => void;
  readonly shouldStop?: () => boolean;
}

/** Runs consecutive seeds until the count is reached, a run fails, or `shouldStop()`; returns the failed run, if any. */
export async function runSeeds(
  options: BatchOptions,
): Promise<{ summary: BatchSummary; failure: SimulationResult | null }> {
  const summary = emptySummary();
  for (let seed = options.firstSeed; seed < options.firstSeed + options.count; seed++) {
    if (options.shouldStop?.() === true) break;
    const result = await simulate({ seed, mode: options.mode, protocol: options.protocol });
    addToSummary(summary, result);
    options.onResult?.(result, summary);
    if (result.violation !== null) return { summary, failure: result };
  }
  return { summary, failure: null };
}

/** Completed client operations (ok, failed or unknown) per seed: how much of a history each run checks. */
export function meanOperationsPerSeed(summary: BatchSummary): number {
  const { ok, fail, info } = summary.operations;
  return summary.seeds === 0 ? 0 : (ok + fail + info) / summary.seeds;
}

/** Faults, operations and throughput of a batch, for the CLI and the benchmark. */
export function formatSummary(summary: BatchSummary): string {
  const seconds = summary.realMs / 1000;
  const faults = FAULT_KINDS.filter((kind) => summary.faults[kind] > 0)
    .map((kind) => `${kind} ${summary.faults[kind]}`)
    .join(", ");
  const totalFaults = FAULT_KINDS.reduce((sum, kind) => sum + summary.faults[kind], 0);
  const { ok, fail, info } = summary.operations;
  const { linearizable, unknown } = summary.verdicts;
  return [
    `seeds ${summary.seeds}, violations ${summary.violations}`,
    `steps ${summary.steps} in ${seconds.toFixed(1)} s: ${Math.round(summary.steps / Math.max(seconds, 1e-9))} steps/s`,
    `virtual time ${(summary.virtualMs / 1000).toFixed(1)} s: ${(summary.virtualMs / Math.max(summary.realMs, 1e-9)).toFixed(1)}x real time`,
    `faults ${totalFaults}${faults === "" ? "" : ` (${faults})`}`,
    `client operations ${ok + fail + info} (${meanOperationsPerSeed(summary).toFixed(1)} per seed): ${ok} ok, ${fail} failed, ${info} unknown`,
    `linearizability: ${linearizable} linearizable${unknown > 0 ? `, ${unknown} undecided` : ""}`,
  ].join("\n");
}

/** One line of progress. */
export function formatProgress(summary: BatchSummary): string {
  const faults = FAULT_KINDS.reduce((sum, kind) => sum + summary.faults[kind], 0);
  const rate = Math.round(summary.steps / Math.max(summary.realMs / 1000, 1e-9));
  return `seeds ${summary.seeds}  steps ${summary.steps} (${rate}/s)  faults ${faults}  violations ${summary.violations}`;
}
