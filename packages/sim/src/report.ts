import type { SimulationResult } from "./simulation.js";
import { formatTraceRecord } from "./trace.js";

/** The command that replays a run exactly: everything else derives from the seed. */
export function replayCommand(result: Pick<SimulationResult, "protocol" | "seed" | "mode">): string {
  return `pnpm sim --protocol ${result.protocol} --seed ${result.seed} --mode ${result.mode}`;
}

/** A failed run: what broke, how to replay it, and the events that led there. */
export function formatFailure(result: SimulationResult): string {
  const violation = result.violation;
  if (violation === null) return "";
  const lines = [
    `VIOLATION ${violation.kind} at ${violation.at.toFixed(1)}ms (step ${violation.step})`,
    `  ${violation.message}`,
    ...violation.details.map((line) => `  ${line}`),
    `seed ${result.seed}, mode ${result.mode}, protocol ${result.protocol}, ${result.members} members, ${result.clients} clients`,
    `replay: ${replayCommand(result)}`,
    `last ${result.trace.length} events:`,
    ...result.trace.map((record) => `  ${formatTraceRecord(record)}`),
  ];
  return `${lines.join("\n")}\n`;
}
