import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { HistoryRecorder } from "../src/index.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** Porcupine's key-value histories, copied into the repository (see fixtures/porcupine-kv/LICENSE). */
export const porcupineDataDir = path.resolve(repoRoot, "packages/checker/test/fixtures/porcupine-kv");

export function readPorcupineHistory(name: string): string {
  const file = path.join(porcupineDataDir, `${name}.txt`);
  if (!existsSync(file)) {
    throw new Error(`Porcupine test history missing: ${file}`);
  }
  return readFileSync(file, "utf8");
}

/**
 * Concurrent appends followed by a read of a value none of their orders produces: every order has
 * its own value, so memoization cannot help and the search has to try all 14! orders.
 */
export function pathologicalHistory(): HistoryRecorder {
  const recorder = new HistoryRecorder();
  const appends = Array.from({ length: 14 }, (_, process) => recorder.invoke(process, "append", "k", `${process},`));
  for (const handle of appends) recorder.ok(handle);
  recorder.ok(recorder.invoke(99, "get", "k", null), "never written");
  return recorder;
}
