import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  formatFailure,
  type ProtocolAdapter,
  raftAdapter,
  type SimulationMode,
  type SimulationResult,
  simulate,
  type WorkloadOptions,
} from "../src/index.js";

/** Offsets are multiples of this, below SEED_OFFSET_SPAN * SEED_OFFSET_STEP: ranges of one run never overlap another's start. */
const SEED_OFFSET_STEP = 1_000;
const SEED_OFFSET_SPAN = 1_000_000;

/**
 * Where the seed ranges of the suites start this run: `QUORATE_SIM_SEED_OFFSET` if set, else
 * derived from the commit (`git rev-parse HEAD`), so that every commit runs other seeds and
 * coverage grows over time while one commit always runs the same ones. Named regression seeds
 * (regressions.test.ts, the variants) do not move. A failure's report prints its replay
 * command with the absolute seed.
 */
function seedOffset(): { offset: number; source: string } {
  const fromEnv = process.env.QUORATE_SIM_SEED_OFFSET;
  if (fromEnv !== undefined && fromEnv !== "") {
    const offset = Number(fromEnv);
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new Error(`QUORATE_SIM_SEED_OFFSET must be a non-negative integer (got ${fromEnv})`);
    return { offset, source: "QUORATE_SIM_SEED_OFFSET" };
  }
  let head: string;
  try {
    head = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return { offset: 0, source: "no git commit" };
  }
  const hash = createHash("sha256").update(head).digest().readUInt32BE(0);
  return { offset: (hash % SEED_OFFSET_SPAN) * SEED_OFFSET_STEP, source: `commit ${head.slice(0, 12)}` };
}

const chosen = seedOffset();
export const SEED_OFFSET = chosen.offset;
console.info(
  `simulator seed offset ${SEED_OFFSET} (${chosen.source}); replay a seed with pnpm sim --seed N, ` +
    `or rerun these ranges with QUORATE_SIM_SEED_OFFSET=${SEED_OFFSET}`,
);

/**
 * The seed ranges one suite runs: `count` seeds from the offset (QUORATE_SIM_SUITE_SEEDS
 * overrides every suite's count; CI's second Node runs fewer), in chunks of `CHUNK_SEEDS` so
 * each test stays short and a failure names a small range.
 */
export function suiteSeedRanges(count: number): { first: number; count: number }[] {
  const fromEnv = process.env.QUORATE_SIM_SUITE_SEEDS;
  const total = fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) : count;
  if (!Number.isSafeInteger(total) || total < 1)
    throw new Error(`QUORATE_SIM_SUITE_SEEDS must be a positive integer (got ${fromEnv})`);
  const ranges: { first: number; count: number }[] = [];
  for (let done = 0; done < total; done += CHUNK_SEEDS) {
    ranges.push({ first: SEED_OFFSET + done + 1, count: Math.min(CHUNK_SEEDS, total - done) });
  }
  return ranges;
}

const CHUNK_SEEDS = 50;

/** Runs seeds [first, first + count) of the real protocol (Raft by default) and returns the failure reports of those that failed. */
export async function failingSeeds(
  mode: SimulationMode,
  first: number,
  count: number,
  protocol: ProtocolAdapter = raftAdapter(),
  workload?: WorkloadOptions,
): Promise<string[]> {
  const failures: string[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result: SimulationResult = await simulate({
      seed,
      mode,
      protocol,
      ...(workload === undefined ? {} : { workload }),
    });
    if (result.violation !== null) failures.push(formatFailure(result));
  }
  return failures;
}
