/**
 * Golden trace tests: each packages/raft/testdata/*.txt is a scenario from the paper written as
 * commands, each followed by `----` and the trace the machines must produce (see golden.ts and
 * testdata/README.md). Any difference fails the file. `QUORATE_GOLDEN_REWRITE=1` writes the
 * traces the code produces instead, for review in the diff.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseCommand, Trace } from "./golden.js";

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), "..", "testdata");
const REWRITE = process.env.QUORATE_GOLDEN_REWRITE === "1";
const SEPARATOR = "----";

/** Prose (comments and blank lines) kept as written, and commands with their expected trace. */
type Part = { kind: "prose"; line: string } | { kind: "case"; command: string; line: number; expected: string[] };

function parse(text: string, file: string): Part[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const parts: Part[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === "" || line.startsWith("#")) {
      parts.push({ kind: "prose", line });
      continue;
    }
    if (lines[i + 1] !== SEPARATOR) throw new Error(`${file}:${i + 1}: expected "${SEPARATOR}" after "${line}"`);
    const expected: string[] = [];
    let j = i + 2;
    for (; j < lines.length && (lines[j] as string).trim() !== ""; j++) expected.push(lines[j] as string);
    parts.push({ kind: "case", command: line, line: i + 1, expected });
    i = j - 1;
  }
  return parts;
}

function render(parts: readonly Part[], outputs: ReadonlyMap<Part, string[]>): string {
  const lines: string[] = [];
  for (const part of parts) {
    if (part.kind === "prose") lines.push(part.line);
    else lines.push(part.command, SEPARATOR, ...(outputs.get(part) ?? part.expected));
  }
  return `${lines.join("\n")}\n`;
}

const files = readdirSync(TESTDATA)
  .filter((f) => f.endsWith(".txt"))
  .sort();

describe("golden traces (packages/raft/testdata)", () => {
  it("has trace files", () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(file, () => {
      const path = join(TESTDATA, file);
      const text = readFileSync(path, "utf8");
      const parts = parse(text, file);
      const trace = new Trace();
      const outputs = new Map<Part, string[]>();
      let firstDifference: string | null = null;
      for (const part of parts) {
        if (part.kind !== "case") continue;
        const actual = trace.run(parseCommand(part.command)).split("\n");
        outputs.set(part, actual);
        if (firstDifference === null && actual.join("\n") !== part.expected.join("\n")) {
          firstDifference = `${file}:${part.line}: ${part.command}`;
        }
      }
      const actualText = render(parts, outputs);
      if (REWRITE && actualText !== text) writeFileSync(path, actualText);
      const expected = REWRITE ? readFileSync(path, "utf8") : text;
      expect(actualText, `trace differs from ${firstDifference ?? file}`).toBe(expected);
    });
  }
});
