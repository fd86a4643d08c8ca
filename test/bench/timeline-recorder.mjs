// Preloaded into each member by `pnpm bench:timeline` (node --import): records the marks the
// member publishes on Quorate's timeline channel and writes them, as JSON, to
// $QUORATE_TIMELINE_DIR/<pid>.json when the process exits.
import { subscribe } from "node:diagnostics_channel";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TIMELINE_CHANNEL } from "../../packages/core/dist/internal.js";

const MAX_MARKS = 500_000;
const dir = process.env.QUORATE_TIMELINE_DIR;
const marks = [];
if (dir !== undefined) {
  subscribe(TIMELINE_CHANNEL, (mark) => {
    if (marks.length < MAX_MARKS) marks.push(mark);
  });
  process.on("exit", () => writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(marks)));
}
