#!/usr/bin/env node
import { parseArgs } from "node:util";
import { DROP_REASONS } from "@quorate/core";
import { type FuzzCounts, fuzzDecoder } from "./decoder.js";
import { fuzzLive, liveProblems } from "./live.js";

const USAGE = `usage: pnpm fuzz [--frames N] [--seed S]

  --frames N   frames into the decoder, and as many again into live members (default 1000000)
  --seed S     seed of the frame stream (default 1); a failure names its seed and frame index
Exits 1 if the decoder threw or misjudged a frame, a member failed, a malformed frame went
uncounted, or a group stopped committing.
`;

function fail(text: string): never {
  process.stderr.write(`${text}\n\n${USAGE}`);
  process.exit(2);
}

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) fail(`--${name} must be a non-negative integer`);
  return n;
}

const { values } = parseArgs({
  options: { frames: { type: "string" }, seed: { type: "string" }, help: { type: "boolean" } },
  strict: true,
});
if (values.help === true) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const frames = integer("frames", values.frames, 1_000_000);
const seed = integer("seed", values.seed, 1);

// A throw that escapes a member's host is a crash even if nothing awaited it.
const uncaught: string[] = [];
process.on("uncaughtException", (err) => uncaught.push(err.stack ?? String(err)));
process.on("unhandledRejection", (err) =>
  uncaught.push(err instanceof Error ? (err.stack ?? err.message) : String(err)),
);

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** `unit` is "frames" for the decoder; live counts are per delivery, as a broadcast reaches every member. */
function describe(counts: FuzzCounts, unit: string): string {
  const classes = `random ${fmt(counts.byClass.random)}, mutated ${fmt(counts.byClass.mutated)}, hostile ${fmt(counts.byClass.hostile)}`;
  const dropped = DROP_REASONS.filter((r) => counts.dropped[r] > 0)
    .map((r) => `${r} ${fmt(counts.dropped[r])}`)
    .join(", ");
  const total = DROP_REASONS.reduce((n, r) => n + counts.dropped[r], 0);
  return `  frames by class: ${classes}\n  ${unit}: decoded ${fmt(counts.decoded)}; dropped ${fmt(total)} (${dropped})`;
}

const problems: string[] = [];

process.stdout.write(
  `Quorate fuzz: seed ${seed}, ${fmt(frames)} frames into the decoder, ${fmt(frames)} into live members\n\n`,
);

let started = performance.now();
const decoder = fuzzDecoder(seed, frames);
let seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `decoder: ${fmt(frames)} frames in ${seconds.toFixed(1)} s (${fmt(frames / seconds)} frames/s), ${decoder.failures.length} failures\n${describe(decoder.counts, "frames")}\n`,
);
for (const f of decoder.failures)
  problems.push(`decoder, seed ${f.seed} frame ${f.index} (${f.how}): ${f.problem}\n    ${f.hex}`);

started = performance.now();
const live = await fuzzLive(seed, frames, {
  onProgress: (n) => process.stderr.write(`\r  live: ${fmt(n)} frames   `),
});
process.stderr.write("\r\x1b[K");
seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `\nlive members: ${fmt(frames)} frames in ${seconds.toFixed(1)} s (${fmt(frames / seconds)} frames/s)\n`,
);
for (const r of live) {
  const counted = DROP_REASONS.reduce((n, reason) => n + r.droppedCounted[reason], 0);
  process.stdout.write(
    `${r.name}: ${fmt(r.counts.frames)} frames, ${fmt(r.delivered)} deliveries handed to members, ` +
      `${fmt(counted)} drops counted by members' transports (expected ${fmt(DROP_REASONS.reduce((n, reason) => n + r.droppedExpected[reason], 0))}), ` +
      `${r.memberFailures.size} member failures, ${r.handlerErrors} handler errors; ` +
      `${fmt(r.writesDuringFuzz)} writes committed during, ${r.writesAfter}/${r.writesAfterWanted} after\n${describe(r.counts, "deliveries")}\n`,
  );
  problems.push(...liveProblems(r));
}
problems.push(...uncaught.map((u) => `uncaught: ${u}`));

if (problems.length > 0) {
  process.stdout.write(`\nFAILED (seed ${seed}):\n${problems.map((p) => `  ${p}`).join("\n")}\n`);
  process.exit(1);
}
process.stdout.write("\nok: 0 crashes, every malformed frame counted as dropped, both groups commit\n");
process.exit(0);
