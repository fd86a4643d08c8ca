#!/usr/bin/env node
import { parseArgs } from "node:util";
import { formatProgress, formatSummary, runSeeds } from "./batch.js";
import { paxosAdapter } from "./paxos/adapter.js";
import { errorMessage, type ProtocolAdapter } from "./protocol.js";
import { leaseRaftAdapter, raftAdapter } from "./raft/adapter.js";
import { formatFailure, replayCommand } from "./report.js";
import type { SimulationMode } from "./simulation.js";

const USAGE = `usage: pnpm sim [--protocol raft|raft-lease|paxos] [--seeds N] [--seed S] [--mode safety|liveness] [--soak]

  --seed S     replay seed S alone; with --seeds or --soak, the first seed (default 1)
  --seeds N    run N consecutive seeds (default 100)
  --mode       safety: faults all the time; liveness: faults, then heal, then progress is required
  --soak       run seeds until Ctrl-C or a violation
Exits 1 on any violation.
`;

const PROTOCOLS: Record<string, () => ProtocolAdapter> = {
  raft: () => raftAdapter(),
  "raft-lease": leaseRaftAdapter,
  paxos: () => paxosAdapter(),
};

function fail(text: string): never {
  process.stderr.write(`${text}\n\n${USAGE}`);
  process.exit(2);
}

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) fail(`${name} must be a non-negative integer (got ${value})`);
  return n;
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        protocol: { type: "string", default: "raft" },
        seeds: { type: "string" },
        seed: { type: "string" },
        mode: { type: "string", default: "safety" },
        soak: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    return fail(errorMessage(err));
  }
})();

if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const makeProtocol = PROTOCOLS[values.protocol];
if (makeProtocol === undefined)
  fail(`unknown protocol '${values.protocol}' (known: ${Object.keys(PROTOCOLS).join(", ")})`);
if (values.mode !== "safety" && values.mode !== "liveness") fail(`--mode must be safety or liveness`);
const mode: SimulationMode = values.mode;
const firstSeed = positiveInteger("--seed", values.seed, 1);
const single = values.seed !== undefined && values.seeds === undefined && !values.soak;
const count = values.soak ? Number.POSITIVE_INFINITY : single ? 1 : positiveInteger("--seeds", values.seeds, 100);

let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
});

const interactive = process.stderr.isTTY === true;
let lastProgress = 0;
process.stdout.write(
  `${values.protocol}, ${mode} mode, ${values.soak ? `seeds from ${firstSeed} until Ctrl-C` : `seeds ${firstSeed}..${firstSeed + count - 1}`}\n`,
);
const { summary, failure } = await runSeeds({
  protocol: makeProtocol(),
  mode,
  firstSeed,
  count,
  shouldStop: () => interrupted,
  onResult: (result, totals) => {
    const now = performance.now();
    if (single) {
      process.stdout.write(
        `seed ${result.seed}: ${result.members} members, ${result.steps} steps, ${(result.virtualMs / 1000).toFixed(1)} s virtual, ` +
          `trace digest ${result.digest}\n`,
      );
    } else if (now - lastProgress > (interactive ? 250 : 5_000)) {
      lastProgress = now;
      process.stderr.write(interactive ? `\r${formatProgress(totals)}   ` : `${formatProgress(totals)}\n`);
    }
  },
});
if (interactive && !single) process.stderr.write(`\r${formatProgress(summary)}   \n`);
if (failure !== null) process.stdout.write(`\n${formatFailure(failure)}\n`);
process.stdout.write(`${formatSummary(summary)}\n`);
if (failure !== null) process.stdout.write(`replay: ${replayCommand(failure)}\n`);
process.exit(failure === null ? 0 : 1);
