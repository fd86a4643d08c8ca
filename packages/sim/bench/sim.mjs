// Simulator throughput: simulated steps per second and virtual time per real time, per mode and
// cluster size. Not a test: it prints numbers. Run after building: `pnpm build && node packages/sim/bench/sim.mjs`.
import { raftAdapter, simulate } from "../dist/index.js";

const seeds = Number(process.env.BENCH_SEEDS ?? 40);

console.log(`raft, ${seeds} seeds per row (after a warm-up of 5)`);
console.log(
  [
    "mode".padEnd(9),
    "members".padStart(7),
    "steps".padStart(9),
    "steps/s".padStart(9),
    "virtual s".padStart(10),
    "x real".padStart(7),
    "violations".padStart(11),
  ].join(" "),
);
for (let seed = 1; seed <= 5; seed++) await simulate({ seed, mode: "safety", protocol: raftAdapter() });
for (const mode of ["safety", "liveness"]) {
  for (const members of [3, 5]) {
    let steps = 0;
    let virtualMs = 0;
    let violations = 0;
    const start = performance.now();
    for (let seed = 1; seed <= seeds; seed++) {
      const result = await simulate({ seed, mode, members, protocol: raftAdapter() });
      steps += result.steps;
      virtualMs += result.virtualMs;
      if (result.violation !== null) violations++;
    }
    const realMs = performance.now() - start;
    console.log(
      [
        mode.padEnd(9),
        String(members).padStart(7),
        String(steps).padStart(9),
        String(Math.round(steps / (realMs / 1000))).padStart(9),
        (virtualMs / 1000).toFixed(1).padStart(10),
        (virtualMs / realMs).toFixed(1).padStart(7),
        String(violations).padStart(11),
      ].join(" "),
    );
  }
}
