import { describe, expect, it } from "vitest";
import { CheckerErrorCode, checkHistoryText, checkOperations, HistoryRecorder, type Operation } from "../src/index.js";
import { pathologicalHistory } from "./helpers.js";

/** Records a completed operation that ran alone: invoked and completed before anything else happens. */
function sequential(
  recorder: HistoryRecorder,
  process: number,
  f: Operation["f"],
  key: string,
  value: Operation["input"],
) {
  const handle = recorder.invoke(process, f, key, value);
  return {
    handle,
    ok: (output: string | null = null) => recorder.ok(handle, output),
  };
}

function put(recorder: HistoryRecorder, key: string, value: string): void {
  sequential(recorder, 0, "put", key, value).ok();
}

function get(recorder: HistoryRecorder, key: string, output: string | null): void {
  sequential(recorder, 0, "get", key, null).ok(output);
}

function verdictOf(recorder: HistoryRecorder) {
  return checkOperations(recorder.operations()).verdict;
}

describe("checkOperations", () => {
  it("accepts concurrent writes in the one order a later read allows, and not when real time forbids it", () => {
    const concurrent = new HistoryRecorder();
    const a = concurrent.invoke(0, "put", "k", "a");
    const b = concurrent.invoke(1, "put", "k", "b");
    concurrent.ok(a);
    concurrent.ok(b);
    get(concurrent, "k", "a");
    get(concurrent, "k", "a");
    expect(verdictOf(concurrent)).toBe("linearizable");

    const ordered = new HistoryRecorder();
    put(ordered, "k", "a");
    put(ordered, "k", "b");
    get(ordered, "k", "a");
    expect(verdictOf(ordered)).toBe("not-linearizable");
  });

  it("accepts concurrent appends only in an order that produces the value read", () => {
    const recorder = new HistoryRecorder();
    const x = recorder.invoke(0, "append", "k", "x");
    const y = recorder.invoke(1, "append", "k", "y");
    const read = recorder.invoke(2, "get", "k", null);
    recorder.ok(x);
    recorder.ok(y);
    recorder.ok(read, "yx");
    expect(verdictOf(recorder)).toBe("linearizable");
    get(recorder, "k", "xy");
    expect(verdictOf(recorder)).toBe("not-linearizable");
  });

  it("rejects a stale read and reports it as the witness", () => {
    const recorder = new HistoryRecorder();
    put(recorder, "k", "a");
    put(recorder, "k", "b");
    get(recorder, "k", "a");
    const result = checkOperations(recorder.operations());
    expect(result.verdict).toBe("not-linearizable");
    expect(result.witness).toEqual([expect.objectContaining({ f: "get", output: "a" })]);
    const [keyResult] = result.keys;
    expect(keyResult?.failure?.value).toBe("b");
    expect(keyResult?.failure?.linearized.map((operation) => operation.input)).toEqual(["a", "b"]);
  });

  it("lets an operation of unknown outcome take effect late, or never", () => {
    const tookEffect = new HistoryRecorder();
    tookEffect.info(tookEffect.invoke(0, "put", "k", "a"));
    get(tookEffect, "k", null);
    get(tookEffect, "k", "a");
    expect(verdictOf(tookEffect)).toBe("linearizable");

    const neverCompleted = new HistoryRecorder();
    neverCompleted.invoke(1, "append", "k", "a");
    get(neverCompleted, "k", null);
    get(neverCompleted, "k", null);
    expect(verdictOf(neverCompleted)).toBe("linearizable");
    expect(neverCompleted.operations()[0]).toMatchObject({ status: "unknown", return: Number.POSITIVE_INFINITY });
  });

  it("does not let an operation of unknown outcome take effect before its invocation or undo it", () => {
    const early = new HistoryRecorder();
    get(early, "k", "a");
    early.info(early.invoke(0, "put", "k", "a"));
    expect(verdictOf(early)).toBe("not-linearizable");

    const undone = new HistoryRecorder();
    undone.info(undone.invoke(0, "put", "k", "a"));
    get(undone, "k", "a");
    get(undone, "k", null);
    expect(verdictOf(undone)).toBe("not-linearizable");
  });

  it("ignores failed operations", () => {
    const recorder = new HistoryRecorder();
    put(recorder, "k", "a");
    recorder.fail(recorder.invoke(0, "put", "k", "b"));
    get(recorder, "k", "a");
    expect(recorder.operations().map((operation) => operation.input)).toEqual(["a", null]);
    expect(verdictOf(recorder)).toBe("linearizable");
    get(recorder, "k", "b");
    expect(verdictOf(recorder)).toBe("not-linearizable");
  });

  it("applies a cas that succeeded and not one that failed", () => {
    const recorder = new HistoryRecorder();
    sequential(recorder, 0, "cas", "k", [null, "a"]).ok();
    sequential(recorder, 0, "cas", "k", ["a", "b"]).ok();
    recorder.fail(recorder.invoke(0, "cas", "k", ["b", "c"]));
    get(recorder, "k", "b");
    expect(verdictOf(recorder)).toBe("linearizable");

    const wrongExpectation = new HistoryRecorder();
    put(wrongExpectation, "k", "a");
    sequential(wrongExpectation, 0, "cas", "k", ["z", "b"]).ok();
    expect(verdictOf(wrongExpectation)).toBe("not-linearizable");
  });

  it("lets a cas of unknown outcome succeed only if its expectation held", () => {
    const recorder = new HistoryRecorder();
    put(recorder, "k", "a");
    recorder.info(recorder.invoke(0, "cas", "k", ["a", "b"]));
    get(recorder, "k", "b");
    expect(verdictOf(recorder)).toBe("linearizable");

    const unmet = new HistoryRecorder();
    put(unmet, "k", "a");
    unmet.info(unmet.invoke(0, "cas", "k", ["z", "b"]));
    get(unmet, "k", "b");
    expect(verdictOf(unmet)).toBe("not-linearizable");
  });

  it("reads a deleted key as nil, not as the empty string", () => {
    const recorder = new HistoryRecorder();
    put(recorder, "k", "a");
    sequential(recorder, 0, "delete", "k", null).ok();
    get(recorder, "k", null);
    expect(verdictOf(recorder)).toBe("linearizable");

    const readEmpty = new HistoryRecorder();
    put(readEmpty, "k", "a");
    sequential(readEmpty, 0, "delete", "k", null).ok();
    get(readEmpty, "k", "");
    expect(verdictOf(readEmpty)).toBe("not-linearizable");

    const casEmpty = new HistoryRecorder();
    sequential(casEmpty, 0, "delete", "k", null).ok();
    sequential(casEmpty, 0, "cas", "k", ["", "b"]).ok();
    expect(verdictOf(casEmpty)).toBe("not-linearizable");
  });

  it("reads a never-written key as nil or as the empty string", () => {
    const recorder = new HistoryRecorder();
    get(recorder, "k", "");
    get(recorder, "k", null);
    sequential(recorder, 0, "cas", "k", ["", "a"]).ok();
    sequential(recorder, 0, "append", "k", "b").ok();
    get(recorder, "k", "ab");
    expect(verdictOf(recorder)).toBe("linearizable");
  });

  it("keeps an empty string written by put apart from an absent key", () => {
    const recorder = new HistoryRecorder();
    put(recorder, "k", "");
    get(recorder, "k", null);
    expect(verdictOf(recorder)).toBe("not-linearizable");
  });

  it("checks keys independently and reports each", () => {
    const recorder = new HistoryRecorder();
    put(recorder, "a", "1");
    get(recorder, "b", null);
    get(recorder, "a", "1");
    put(recorder, "b", "2");
    const result = checkOperations(recorder.operations());
    expect(result.verdict).toBe("linearizable");
    expect(result.keys).toEqual([
      { key: "a", verdict: "linearizable", operationCount: 2 },
      { key: "b", verdict: "linearizable", operationCount: 2 },
    ]);

    get(recorder, "b", "1");
    const failing = checkOperations(recorder.operations());
    expect(failing.verdict).toBe("not-linearizable");
    expect(failing.keys.map((key) => key.verdict)).toEqual(["linearizable", "not-linearizable"]);
    expect(failing.witness?.map((operation) => operation.key)).toEqual(["b"]);
  });

  it("leaves gets of unknown outcome out of the search", () => {
    const recorder = new HistoryRecorder();
    recorder.info(recorder.invoke(0, "get", "k", null));
    put(recorder, "k", "a");
    expect(checkOperations(recorder.operations()).keys).toEqual([
      { key: "k", verdict: "linearizable", operationCount: 1 },
    ]);
  });

  it("decides an empty history", () => {
    expect(checkHistoryText("")).toEqual({ verdict: "linearizable", keys: [] });
  });

  it("gives up with verdict unknown when the time limit runs out", () => {
    const started = performance.now();
    const result = checkOperations(pathologicalHistory().operations(), { timeoutMs: 20 });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(result.verdict).toBe("unknown");
    expect(result.keys).toEqual([{ key: "k", verdict: "unknown", operationCount: 15, undecided: "time-limit" }]);
  });

  it("rejects a negative time limit and ill-formed operations", () => {
    expect(() => checkOperations([], { timeoutMs: -1 })).toThrow(
      expect.objectContaining({ code: CheckerErrorCode.Argument }),
    );
    const operation: Operation = {
      id: 0,
      process: 0,
      key: "k",
      f: "put",
      input: "a",
      output: null,
      revision: null,
      createRevision: null,
      applied: null,
      call: 5,
      return: 5,
      status: "ok",
    };
    expect(() => checkOperations([operation])).toThrow(expect.objectContaining({ code: CheckerErrorCode.Argument }));
  });
});
