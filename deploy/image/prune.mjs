// Runs in the image's build stage (deploy/Dockerfile), with nothing but node available: drops
// what a running member never reads from the `pnpm deploy` output, then creates the data
// directory the final stage hands to the unprivileged user.
// Usage: node prune.mjs <app dir> <data dir>
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const [app, data] = process.argv.slice(2);
if (app === undefined || data === undefined) {
  console.error("usage: node prune.mjs <app dir> <data dir>");
  process.exit(2);
}

// Type declarations, source maps, TypeScript sources, docs and tests of dependencies.
const droppedFile = /(\.d\.[cm]?ts|\.d\.ts\.map|\.js\.map|\.[cm]?ts|\.md|\.markdown)$/i;
const droppedDir = new Set(["test", "tests", "__tests__", "docs", "example", "examples", ".github"]);
let removed = 0;

function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      if (droppedDir.has(entry.name) || entry.name === "@types") {
        rmSync(path, { recursive: true, force: true });
        removed++;
      } else {
        prune(path);
      }
    } else if (droppedFile.test(entry.name) && !/^licen[cs]e/i.test(entry.name)) {
      rmSync(path, { force: true });
      removed++;
    }
  }
}

prune(join(app, "node_modules"));
prune(join(app, "dist"));
for (const file of [
  "pnpm-lock.yaml",
  "pnpm-workspace.yaml",
  "node_modules/.modules.yaml",
  "node_modules/.pnpm-workspace-state-v1.json",
]) {
  rmSync(join(app, file), { force: true });
}
mkdirSync(data, { recursive: true });
console.log(`pruned ${removed} files and directories from ${app}; created ${data}`);
