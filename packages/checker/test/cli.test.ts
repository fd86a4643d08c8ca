import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CheckResult, HistoryRecorder, runCheckCommand } from "../src/index.js";
import { pathologicalHistory, readPorcupineHistory } from "./helpers.js";

const directory = mkdtempSync(path.join(tmpdir(), "quorate-checker-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function historyFile(name: string, text: string): string {
  const file = path.join(directory, name);
  writeFileSync(file, text);
  return file;
}

async function run(file: string, options: { json?: boolean; timeoutMs?: number } = {}) {
  let stdout = "";
  let stderr = "";
  const code = await runCheckCommand(
    { file, json: options.json ?? false, timeoutMs: options.timeoutMs },
    { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) },
  );
  return { code, stdout, stderr };
}

function staleRead(): string {
  const recorder = new HistoryRecorder();
  recorder.ok(recorder.invoke(0, "put", "k", "a"));
  recorder.ok(recorder.invoke(0, "put", "k", "b"));
  recorder.ok(recorder.invoke(1, "get", "k", null), "a");
  recorder.info(recorder.invoke(2, "append", "other", "c"));
  return recorder.toEdn();
}

describe("runCheckCommand", () => {
  it("exits 1 naming the two operations when revisions across keys contradict real time", async () => {
    const recorder = new HistoryRecorder();
    recorder.ok(recorder.invoke(0, "put", "x", "a"), null, { revision: 5 });
    recorder.ok(recorder.invoke(0, "put", "y", "b"), null, { revision: 3 });
    const result = await run(historyFile("revisions.edn", recorder.toEdn()));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      "not linearizable: an operation completed before another was invoked, yet comes later in revision order\n" +
        '  {:id 0, :process 0, :type :ok, :f :put, :key "x", :value "a", :revision 5, :invoked 0, :completed 1}\n' +
        '  {:id 1, :process 0, :type :ok, :f :put, :key "y", :value "b", :revision 3, :invoked 2, :completed 3}\n',
    );
  });

  it("exits 0 on a linearizable history", async () => {
    const result = await run(historyFile("ok.edn", readPorcupineHistory("c10-ok")));
    expect(result).toEqual({ code: 0, stdout: "linearizable: 337 operations on 10 keys\n", stderr: "" });
  });

  it("exits 1 on a non-linearizable history and prints the operations that cannot be ordered", async () => {
    const result = await run(historyFile("stale.edn", staleRead()));
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("");
    expect(result.stdout.split("\n")).toEqual([
      'not linearizable: key "k"',
      'The deepest partial linearization orders 2 of its 3 operations and leaves the key holding "b".',
      "Last operation ordered:",
      '  {:id 1, :process 0, :type :ok, :f :put, :key "k", :value "b", :invoked 2, :completed 3}',
      "None of these operations can come next:",
      '  {:id 2, :process 1, :type :ok, :f :get, :key "k", :value "a", :invoked 4, :completed 5}',
      "",
    ]);
  });

  it("names the keys of a part tied by a range, and the contents it leaves", async () => {
    const recorder = new HistoryRecorder();
    recorder.ok(recorder.invoke(0, "put", "a/x", "1"), null, { revision: 1 });
    recorder.ok(recorder.invoke(0, "put", "a/y", "2"), null, { revision: 2 });
    const range = recorder.invoke(1, "keys", "a/", { fromKey: null, limit: 5 });
    recorder.ok(range, null, { entries: [{ key: "a/y", value: null, revision: 2, createRevision: 2 }] });
    const result = await run(historyFile("range.edn", recorder.toEdn()));
    expect(result.code).toBe(1);
    expect(result.stdout.split("\n")).toEqual([
      'not linearizable: keys "a/x", "a/y" (tied by transactions, ranges or leases)',
      'The deepest partial linearization orders 2 of their 3 operations and leaves them holding {"a/x":"1","a/y":"2"} (absent keys left out).',
      "Last operation ordered:",
      '  {:id 1, :process 0, :type :ok, :f :put, :key "a/y", :value "2", :revision 2, :invoked 2, :completed 3}',
      "None of these operations can come next:",
      '  {:id 2, :process 1, :type :ok, :f :keys, :key "a/", :value [["a/y" nil 2 2]], :invoked 4, :completed 5}',
      "",
    ]);
  });

  it("names the part of the leases, and the contents it leaves", async () => {
    const recorder = new HistoryRecorder();
    recorder.ok(recorder.invoke(0, "grant", "", 1000), null, { revision: 1 });
    recorder.ok(recorder.invoke(0, "put", "k", "a", 1), null, { revision: 2 });
    recorder.ok(recorder.invoke(0, "revoke", "", 1), null, { applied: true });
    recorder.ok(recorder.invoke(1, "get", "k", null), "a");
    const result = await run(historyFile("lease.edn", recorder.toEdn()));
    expect(result.code).toBe(1);
    expect(result.stdout.split("\n")).toEqual([
      'not linearizable: the leases and keys "k" (tied by transactions, ranges or leases)',
      "The deepest partial linearization orders 3 of their 4 operations and leaves them holding {} (absent keys left out).",
      "Last operation ordered:",
      '  {:id 2, :process 0, :type :ok, :f :revoke, :key "", :value 1, :applied true, :invoked 4, :completed 5}',
      "None of these operations can come next:",
      '  {:id 3, :process 1, :type :ok, :f :get, :key "k", :value "a", :invoked 6, :completed 7}',
      "",
    ]);
  });

  it("prints the result as JSON with --json", async () => {
    const result = await run(historyFile("stale-json.edn", staleRead()), { json: true });
    expect(result.code).toBe(1);
    const output = JSON.parse(result.stdout) as CheckResult;
    expect(output.verdict).toBe("not-linearizable");
    expect(output.keys.map(({ key, verdict, operationCount }) => ({ key, verdict, operationCount }))).toEqual([
      { key: "k", verdict: "not-linearizable", operationCount: 3 },
      { key: "other", verdict: "linearizable", operationCount: 1 },
    ]);
    expect(output.keys[0]?.failure).toMatchObject({ value: "b", linearized: [{ id: 0 }, { id: 1 }] });
    expect(output.witness).toEqual([
      {
        id: 2,
        process: 1,
        key: "k",
        f: "get",
        input: null,
        output: "a",
        call: 4,
        return: 5,
        status: "ok",
        revision: null,
        createRevision: null,
        applied: null,
      },
    ]);

    const linearizable = await run(historyFile("ok-json.edn", readPorcupineHistory("c01-ok")), { json: true });
    expect(linearizable.code).toBe(0);
    expect(JSON.parse(linearizable.stdout)).toMatchObject({ verdict: "linearizable" });
  });

  it("writes an unknown return time as null in JSON", async () => {
    const recorder = new HistoryRecorder();
    recorder.invoke(0, "put", "k", "a");
    recorder.ok(recorder.invoke(1, "get", "k", null), "b");
    const result = await run(historyFile("pending.edn", recorder.toEdn()), { json: true });
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).keys[0].failure.linearized).toEqual([
      {
        id: 0,
        process: 0,
        key: "k",
        f: "put",
        input: "a",
        output: null,
        call: 0,
        return: null,
        status: "unknown",
        revision: null,
        createRevision: null,
        applied: null,
      },
    ]);
  });

  it("exits 2 when the time limit runs out", async () => {
    const file = historyFile("pathological.edn", pathologicalHistory().toEdn());
    const result = await run(file, { timeoutMs: 20 });
    expect(result).toEqual({
      code: 2,
      stdout: 'unknown: the check could not decide\nThe time limit of 20 ms ran out before deciding keys "k".\n',
      stderr: "",
    });
    const json = await run(file, { json: true, timeoutMs: 20 });
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ verdict: "unknown", keys: [{ undecided: "time-limit" }] });
  });

  it("exits 2 with a message when the file cannot be read or parsed", async () => {
    const missing = path.join(directory, "missing.edn");
    const unreadable = await run(missing);
    expect(unreadable.code).toBe(2);
    expect(unreadable.stdout).toBe("");
    expect(unreadable.stderr).toMatch(new RegExp(`^quorate check: cannot read ${missing}: ENOENT`));

    const broken = historyFile("broken.edn", `${staleRead()}{:process 0, :type :invoke\n`);
    const unparsable = await run(broken, { json: true });
    expect(unparsable).toEqual({
      code: 2,
      stdout: "",
      stderr: `quorate check: ${broken}: line 9, column 27: unterminated map (CHECKER_PARSE)\n`,
    });
  });
});
