import { describe, expect, it } from "vitest";
import { CheckerError, type CheckerErrorCode, HistoryRecorder, parseHistory } from "../src/index.js";

function expectError(action: () => unknown, code: CheckerErrorCode, line: number | null, message: RegExp): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(CheckerError);
    expect(error).toMatchObject({ code, line });
    expect((error as CheckerError).message).toMatch(message);
    return;
  }
  expect.fail("expected a CheckerError");
}

/** The completion details of an operation that recorded none (the basic operations of a Jepsen history). */
const noDetails = { revision: null, createRevision: null, applied: null };

const valid = '{:process 0, :type :invoke, :f :get, :key "k", :value nil}';

describe("parseHistory", () => {
  it("pairs invocations and completions by process, with event positions as times", () => {
    const operations = parseHistory(
      [
        '{:process 0, :type :invoke, :f :put, :key "k", :value "a"}',
        '{:process 1, :type :invoke, :f :get, :key "k", :value nil}',
        "",
        '{:process 1, :type :ok, :f :get, :key "k", :value "a"}',
        '{:process 0, :type :ok, :f :put, :key "k", :value "a"}',
        '{:process 2, :type :invoke, :f :cas, :key "k", :value [nil "b"]}',
        '{:process 2, :type :fail, :f :cas, :key "k", :value [nil "b"]}',
        '{:process 3, :type :invoke, :f :append, :key "k", :value "c"}',
        '{:process 3, :type :info, :f :append, :key "k", :value "c"}',
        '{:process 4, :type :invoke :f :delete :key "k"}',
      ].join("\n"),
    );
    expect(operations).toEqual([
      {
        id: 0,
        process: 0,
        key: "k",
        f: "put",
        input: "a",
        call: 0,
        return: 3,
        status: "ok",
        output: null,
        ...noDetails,
      },
      {
        id: 1,
        process: 1,
        key: "k",
        f: "get",
        input: null,
        call: 1,
        return: 2,
        status: "ok",
        output: "a",
        ...noDetails,
      },
      {
        id: 3,
        process: 3,
        key: "k",
        f: "append",
        input: "c",
        call: 6,
        return: Number.POSITIVE_INFINITY,
        status: "unknown",
        output: null,
        ...noDetails,
      },
      {
        id: 4,
        process: 4,
        key: "k",
        f: "delete",
        input: null,
        call: 8,
        return: Number.POSITIVE_INFINITY,
        status: "unknown",
        output: null,
        ...noDetails,
      },
    ]);
  });

  it("reads string escapes, Windows line ends and extra fields", () => {
    const [operation] = parseHistory(
      '{:process 0, :type :invoke, :f :put, :key "k\\u00e9", :value "a\\"b\\\\c\\n\\t", :time 12}\r\n' +
        '{:process 0, :type :ok, :f :put, :key "k\\u00e9", :value "a\\"b\\\\c\\n\\t", :error [:x {:y true}]}\r\n',
    );
    expect(operation).toMatchObject({ key: "ké", input: 'a"b\\c\n\t', status: "ok" });
  });

  it.each([
    ['{:process 0, :type :invoke, :f :get, :key "k", :value nil', /line 2, column 58: unterminated map/],
    ['{:process 0, :type :invoke, :f :get, :key "k, :value nil}', /line 2, column 43: unterminated string/],
    ['{:process 0, :type :invoke, :f :get, :key "k\\q", :value nil}', /line 2, column 45: unsupported escape/],
    ['{:process 0, :type :invoke, :f :get, :key "k", :value null}', /line 2, column 55: unsupported symbol 'null'/],
    ['{:process 0.5, :type :invoke, :f :get, :key "k", :value nil}', /line 2, column 11: expected an integer/],
    ['{:process 0, :process 1, :type :invoke, :f :get, :key "k"}', /line 2, column 14: duplicate key :process/],
    ['{"process" 0, :type :invoke, :f :get, :key "k"}', /line 2, column 2: map keys must be keywords/],
    [`${valid} x`, /line 2, column 60: unexpected text after the map/],
    ["[1 2]", /line 2, column 1: expected a map/],
    ['{:process 0, :type :invoke, :f :get, :key "k", :value}', /line 2, column 54: key :value has no value/],
  ])("rejects %s with its line and column", (line, message) => {
    expectError(
      () => parseHistory(`${valid.replace(":process 0", ":process 9")}\n${line}`),
      "CHECKER_PARSE",
      2,
      message,
    );
  });

  it.each([
    ['{:process "0", :type :invoke, :f :get, :key "k"}', /line 1: :process must be an integer/],
    ['{:process 0, :type :begin, :f :get, :key "k"}', /line 1: :type must be one of :invoke, :ok, :fail, :info/],
    ['{:process 0, :type :invoke, :f :incr, :key "k"}', /line 1: :f must be one of/],
    ["{:process 0, :type :invoke, :f :get, :key 1}", /line 1: :key must be a string/],
    ['{:process 0, :type :invoke, :f :put, :key "k", :value 1}', /line 1: a :put invocation must have a string :value/],
    ['{:process 0, :type :invoke, :f :put, :key "k", :value nil}', /line 1: a :put invocation must have a string/],
    [
      '{:process 0, :type :invoke, :f :cas, :key "k", :value ["a"]}',
      /line 1: a :cas invocation must have :value \[expected new\]/,
    ],
    ['{:process 0, :type :invoke, :f :get, :key "k", :value "a"}', /line 1: a :get invocation must have :value nil/],
    ['{:process 0, :type :ok, :f :get, :key "k", :value "a"}', /line 1: process 0 completed an operation it never/],
  ])("rejects the event %s", (line, message) => {
    expectError(() => parseHistory(line), "CHECKER_HISTORY", 1, message);
  });

  it("rejects a second invocation before the first completed, and a mismatched completion", () => {
    expectError(() => parseHistory(`${valid}\n${valid}`), "CHECKER_HISTORY", 2, /before operation 0 completed/);
    expectError(
      () => parseHistory(`${valid}\n{:process 0, :type :ok, :f :get, :key "other", :value nil}`),
      "CHECKER_HISTORY",
      2,
      /does not match the invocation/,
    );
  });
});

describe("HistoryRecorder", () => {
  it("records a history that parses back to the same operations", () => {
    const recorder = new HistoryRecorder();
    const put = recorder.invoke(0, "put", "k", 'quote " and \\ and \n');
    const cas = recorder.invoke(1, "cas", "k", [null, "b"]);
    const get = recorder.invoke(2, "get", "k", null);
    recorder.ok(put);
    recorder.fail(cas);
    recorder.ok(get, 'quote " and \\ and \n');
    const append = recorder.invoke(1, "append", "k", "x");
    recorder.info(append);
    recorder.invoke(3, "delete", "k", null);
    expect(parseHistory(recorder.toEdn())).toEqual(recorder.operations());
    expect(recorder.operations().map((operation) => operation.id)).toEqual([put, get, append, 4]);
    expect(recorder.toEdn().split("\n")[1]).toBe('{:process 1, :type :invoke, :f :cas, :key "k", :value [nil "b"]}');
  });

  it("rejects misuse", () => {
    const recorder = new HistoryRecorder();
    const handle = recorder.invoke(0, "get", "k", null);
    expectError(() => recorder.invoke(0, "get", "k", null), "CHECKER_HISTORY", null, /event 1: process 0 invoked/);
    recorder.ok(handle);
    expectError(() => recorder.ok(handle), "CHECKER_ARGUMENT", null, /operation 0 is not in flight/);
    expectError(() => recorder.fail(7), "CHECKER_ARGUMENT", null, /operation 7 is not in flight/);
    expectError(() => recorder.invoke(1, "put", "k", null), "CHECKER_HISTORY", null, /must have a string :value/);
    expectError(() => recorder.invoke(1.5, "get", "k", null), "CHECKER_ARGUMENT", null, /process must be an integer/);
  });
});
