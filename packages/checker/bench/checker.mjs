// Times parse + check of the Porcupine key-value histories and compares with Porcupine's own figures.
// Run after building: `npx tsc -b packages/checker && pnpm --filter @quorate/checker bench`.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkHistoryText } from "../dist/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const dataDir = path.resolve(repoRoot, "packages/checker/test/fixtures/porcupine-kv");
const files = ["c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"];
/** Porcupine (Go) on this machine, in ms. */
const porcupineMs = { "c50-ok": 250, "c50-bad": 20 };
const repetitions = Number(process.env.BENCH_REPETITIONS ?? 7);

if (!existsSync(dataDir)) {
  console.error(`test data not found: ${dataDir}`);
  process.exit(1);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

console.log(`median of ${repetitions} runs (after one warm-up run), parse + check`);
console.log(
  ["history".padEnd(10), "verdict".padEnd(18), "ms".padStart(8), "porcupine".padStart(10), "ratio".padStart(7)].join(
    " ",
  ),
);
for (const name of files) {
  const text = readFileSync(path.join(dataDir, `${name}.txt`), "utf8");
  let verdict = checkHistoryText(text).verdict;
  const times = [];
  for (let run = 0; run < repetitions; run++) {
    const start = performance.now();
    verdict = checkHistoryText(text).verdict;
    times.push(performance.now() - start);
  }
  const ms = median(times);
  const reference = porcupineMs[name];
  console.log(
    [
      name.padEnd(10),
      verdict.padEnd(18),
      ms.toFixed(1).padStart(8),
      (reference === undefined ? "-" : String(reference)).padStart(10),
      (reference === undefined ? "-" : `${(ms / reference).toFixed(2)}x`).padStart(7),
    ].join(" "),
  );
}
