import { describe, expect, it } from "vitest";
import { checkHistoryText, checkOperations, HistoryRecorder, parseHistory } from "../src/index.js";

/** One event line; `value` and `extra` are EDN text. */
function event(process: number, type: string, f: string, key: string, value: string, extra = ""): string {
  return `{:process ${process}, :type :${type}, :f :${f}, :key ${JSON.stringify(key)}, :value ${value}${extra}}`;
}

/** An operation that completes before the next begins: invocation then completion. */
function op(process: number, f: string, key: string, input: string, output: string, extra = ""): string[] {
  return [event(process, "invoke", f, key, input), event(process, "ok", f, key, output, extra)];
}

const put = (key: string, value: string, revision: number) =>
  op(0, "put", key, `"${value}"`, `"${value}"`, `, :revision ${revision}`);
const list = (prefix: string, entries: string, from = "nil", limit = 10) =>
  op(1, "list", prefix, `[${from} ${limit}]`, `[${entries}]`);
const get = (key: string, value: string) => op(1, "get", key, "nil", value);

function verdict(lines: readonly string[]): string {
  return checkHistoryText(lines.join("\n")).verdict;
}

describe("transactions and ranges: histories a broken store makes are refused", () => {
  it("a range that misses an acknowledged write", () => {
    expect(verdict([...put("a/x", "1", 1), ...list("a/", "")])).toBe("not-linearizable");
    expect(verdict([...put("a/x", "1", 1), ...put("a/y", "2", 2), ...list("a/", '["a/y" "2" 2 2]')])).toBe(
      "not-linearizable",
    );
  });

  it("a range that returns a stale value, a wrong revision, or keys out of order", () => {
    const written = [...put("a/x", "1", 1), ...put("a/x", "2", 2)];
    expect(verdict([...written, ...list("a/", '["a/x" "1" 1 1]')])).toBe("not-linearizable");
    expect(verdict([...written, ...list("a/", '["a/x" "2" 3 1]')])).toBe("not-linearizable");
    const two = [...put("a/x", "1", 1), ...put("a/y", "2", 2)];
    expect(verdict([...two, ...list("a/", '["a/y" "2" 2 2] ["a/x" "1" 1 1]')])).toBe("not-linearizable");
  });

  it("a range whose limit or fromKey skipped a key", () => {
    const two = [...put("a/x", "1", 1), ...put("a/y", "2", 2)];
    expect(verdict([...two, ...list("a/", '["a/y" "2" 2 2]', "nil", 1)])).toBe("not-linearizable");
    expect(verdict([...two, ...list("a/", '["a/x" "1" 1 1]', '"a/x"', 2)])).toBe("not-linearizable");
  });

  it("a transaction that applies half", () => {
    const txn = op(
      0,
      "txn",
      "a/",
      '[[] [[:put "a/x" "1"] [:put "a/y" "2"]] []]',
      "nil",
      ", :succeeded true, :revision 1",
    );
    expect(verdict([...txn, ...get("a/x", '"1"'), ...get("a/y", "nil")])).toBe("not-linearizable");
    expect(verdict([...txn, ...list("a/", '["a/x" "1" 1 1]')])).toBe("not-linearizable");
  });

  it("a transaction of unknown outcome seen half applied", () => {
    const txn = [event(0, "invoke", "txn", "a/", '[[] [[:put "a/x" "1"] [:put "a/y" "2"]] []]')];
    expect(verdict([...txn, ...list("a/", '["a/x" "1" 1 1]')])).toBe("not-linearizable");
  });

  it("a range returning a value written by a failed transaction", () => {
    const input = '[[] [[:put "a/x" "v"]] []]';
    const failed = [event(0, "invoke", "txn", "a/", input), event(0, "fail", "txn", "a/", input)];
    expect(verdict([...failed, ...list("a/", '["a/x" "v" 1 1]')])).toBe("not-linearizable");
    // Compared false, so the success branch did not run.
    const compareFailed = op(
      0,
      "txn",
      "a/",
      '[[[:value "a/y" "w"]] [[:put "a/x" "v"]] []]',
      "nil",
      ", :succeeded false, :revision 0",
    );
    expect(verdict([...compareFailed, ...list("a/", '["a/x" "v" 1 1]')])).toBe("not-linearizable");
  });

  it("a transaction that ran the wrong branch", () => {
    const txn = (succeeded: boolean) =>
      op(
        1,
        "txn",
        "a/",
        '[[[:value "a/x" "1"]] [[:put "a/y" "s"]] [[:put "a/y" "f"]]]',
        "nil",
        `, :succeeded ${succeeded}, :revision 2`,
      );
    expect(verdict([...put("a/x", "2", 1), ...txn(true)])).toBe("not-linearizable");
    expect(verdict([...put("a/x", "1", 1), ...txn(false)])).toBe("not-linearizable");
    expect(verdict([...put("a/x", "1", 1), ...txn(true), ...get("a/y", '"f"')])).toBe("not-linearizable");
  });

  it("a transaction's write at a revision not above the key's last", () => {
    const txn = op(0, "txn", "a/", '[[] [[:put "a/x" "2"]] []]', "nil", ", :succeeded true, :revision 1");
    expect(verdict([...put("a/x", "1", 5), ...txn])).toBe("not-linearizable");
  });
});

describe("transactions and ranges: linearizable histories pass", () => {
  it("ranges with limit and fromKey page through the keys in order", () => {
    const written = [...put("a/x", "1", 1), ...put("a/y", "2", 2), ...put("b/z", "3", 3)];
    expect(verdict([...written, ...list("a/", '["a/x" "1" 1 1] ["a/y" "2" 2 2]')])).toBe("linearizable");
    expect(verdict([...written, ...list("a/", '["a/x" "1" 1 1]', "nil", 1)])).toBe("linearizable");
    expect(verdict([...written, ...list("a/", '["a/y" "2" 2 2]', '"a/xa"', 1)])).toBe("linearizable");
    expect(verdict([...written, ...op(1, "keys", "a/", "[nil 5]", '[["a/x" nil 1 1] ["a/y" nil 2 2]]')])).toBe(
      "linearizable",
    );
    expect(verdict([...written, ...list("c/", "")])).toBe("linearizable");
  });

  it("a range concurrent with a write may see it or not", () => {
    const concurrent = (entries: string) => [
      event(0, "invoke", "put", "a/x", '"1"'),
      event(1, "invoke", "list", "a/", "[nil 10]"),
      event(1, "ok", "list", "a/", `[${entries}]`),
      event(0, "ok", "put", "a/x", '"1"', ", :revision 1"),
    ];
    expect(verdict(concurrent(""))).toBe("linearizable");
    expect(verdict(concurrent('["a/x" "1" 1 1]'))).toBe("linearizable");
  });

  it("a transaction of unknown outcome is seen whole or not at all", () => {
    const txn = [event(0, "invoke", "txn", "a/", '[[[:absent "a/x"]] [[:put "a/x" "1"] [:put "a/y" "2"]] []]')];
    expect(verdict([...txn, ...list("a/", "")])).toBe("linearizable");
    expect(verdict([...txn, ...list("a/", '["a/x" "1" 7 7] ["a/y" "2" 7 7]')])).toBe("linearizable");
  });

  it("transactions compare values, revisions and absence, and run the failure branch", () => {
    const history = [
      ...put("a/x", "1", 1),
      ...op(
        0,
        "txn",
        "a/",
        '[[[:value "a/x" "1"] [:absent "a/y"]] [[:put "a/y" "2"] [:delete "a/x"]] []]',
        "nil",
        ", :succeeded true, :revision 2",
      ),
      ...op(
        0,
        "txn",
        "a/",
        '[[[:revision "a/y" 1]] [[:put "a/y" "no"]] [[:put "a/x" "3"]]]',
        "nil",
        ", :succeeded false, :revision 3",
      ),
      ...op(0, "txn", "a/", '[[[:revision "a/y" 2]] [[:delete "a/z"]] []]', "nil", ", :succeeded true, :revision 3"),
      ...list("a/", '["a/x" "3" 3 3] ["a/y" "2" 2 2]'),
    ];
    expect(verdict(history)).toBe("linearizable");
  });

  it("a compare on a revision the history did not record may hold", () => {
    const history = [
      ...op(0, "put", "a/x", '"1"', '"1"'),
      ...op(0, "txn", "a/", '[[[:revision "a/x" 4]] [[:put "a/y" "2"]] []]', "nil", ", :succeeded true, :revision 5"),
      ...list("a/", '["a/x" "1" 4 4] ["a/y" "2" 5 5]'),
    ];
    expect(verdict(history)).toBe("linearizable");
    // But not once a read showed the revision is another.
    const contradicted = [
      ...history.slice(0, 2),
      ...op(1, "entry", "a/x", "nil", '"1"', ", :revision 3, :create-revision 3"),
      ...history.slice(2),
    ];
    expect(verdict(contradicted)).toBe("not-linearizable");
  });

  it("keys tied by transactions or ranges are checked together; other keys alone", () => {
    const result = checkHistoryText(
      [
        ...put("a/x", "1", 1),
        ...put("a/y", "2", 2),
        ...put("b/z", "3", 3),
        ...list("a/", '["a/x" "1" 1 1] ["a/y" "2" 2 2]'),
      ].join("\n"),
    );
    expect(result.verdict).toBe("linearizable");
    expect(result.keys.map(({ key, keys, operationCount }) => ({ key, keys, operationCount }))).toEqual([
      { key: "a/x", keys: ["a/x", "a/y"], operationCount: 3 },
      { key: "b/z", keys: undefined, operationCount: 1 },
    ]);
  });

  // Simulator seed 332 (raft, safety): a range left without a completion is dropped as a read of
  // unknown outcome, but it still tied a/x and a/y into one part, whose remaining single-key
  // operations were then checked by a one-key model: a/y's write moved the state a/x's read saw.
  const unansweredRange = [
    ...put("a/x", "1.1", 4),
    ...put("a/y", "1.3", 14),
    ...op(1, "entry", "a/x", "nil", '"1.1"', ", :revision 4, :create-revision 4"),
    event(2, "invoke", "keys", "a/", "[nil 3]"),
  ];

  it("a range of unknown outcome is dropped and ties no keys", () => {
    const result = checkHistoryText(unansweredRange.join("\n"));
    expect(result.verdict).toBe("linearizable");
    expect(result.keys.map(({ key, keys, operationCount }) => ({ key, keys, operationCount }))).toEqual([
      { key: "a/x", keys: undefined, operationCount: 2 },
      { key: "a/y", keys: undefined, operationCount: 1 },
    ]);
  });
});

describe("transactions in the revision order across keys", () => {
  const txn = (input: string, succeeded: boolean, revision: number) =>
    op(0, "txn", "a/", input, "nil", `, :succeeded ${succeeded}, :revision ${revision}`);

  it("refuses a transaction's put and another write at one revision, or against real time", () => {
    const putsAt5 = txn('[[] [[:put "a/x" "1"]] []]', true, 5);
    const sameRevision = checkHistoryText([...putsAt5, ...put("b/z", "2", 5)].join("\n"));
    expect(sameRevision.revisionOrder?.reason).toBe("two writes got revision 5");
    const backwards = checkHistoryText([...putsAt5, ...put("b/z", "2", 3)].join("\n"));
    expect(backwards.revisionOrder?.reason).toMatch(/comes later in revision order/);
  });

  it("does not take the revision of a transaction that only deleted as its own", () => {
    // Nothing to delete: the transaction reports the store's revision, the put's.
    const history = [...put("b/z", "2", 5), ...txn('[[] [[:delete "a/x"]] []]', true, 5)];
    expect(verdict(history)).toBe("linearizable");
  });
});

describe("the store model's limit", () => {
  it("a part whose unknown outcomes would make a state of more than 4096 stores is undecided", () => {
    const recorder = new HistoryRecorder();
    // Thirteen puts of unknown outcome on keys one range ties together: 2^13 possible stores.
    for (let process = 0; process < 13; process++) recorder.invoke(process, "put", `a/${process}`, "v");
    recorder.ok(recorder.invoke(99, "list", "a/", { fromKey: null, limit: 20 }), null, { entries: [] });
    const result = checkOperations(recorder.operations());
    expect(result.verdict).toBe("unknown");
    expect(result.keys).toMatchObject([{ key: "a/0", verdict: "unknown", undecided: "search-too-large" }]);
  });
});

describe("HistoryRecorder with transactions and ranges", () => {
  it("records them as EDN that parses back to the same operations", () => {
    const recorder = new HistoryRecorder();
    const txn = recorder.invoke(0, "txn", "a/", {
      compare: [
        { key: "a/x", absent: true },
        { key: "a/y", revision: 3 },
        { key: "a/z", value: "q" },
      ],
      success: [{ key: "a/x", put: "1" }],
      failure: [{ key: "a/y", delete: true }],
    });
    recorder.ok(txn, null, { succeeded: false, revision: 4 });
    const range = recorder.invoke(1, "list", "a/", { fromKey: "a/x", limit: 2 });
    recorder.ok(range, null, { entries: [{ key: "a/z", value: "q", revision: 2, createRevision: 1 }] });
    const keys = recorder.invoke(1, "keys", "a/", { fromKey: null, limit: 1 });
    recorder.info(keys);
    expect(parseHistory(recorder.toEdn())).toEqual(recorder.operations());
    const [recordedTxn, recordedRange] = recorder.operations();
    expect(recordedTxn).toMatchObject({ f: "txn", succeeded: false, revision: 4 });
    expect(recordedRange).toMatchObject({ f: "list", entries: [{ key: "a/z", value: "q" }] });
    // No write ever made a/z, so the range cannot have returned it.
    expect(checkOperations(recorder.operations()).verdict).toBe("not-linearizable");
  });

  it("refuses entries on an operation that is not a range", () => {
    const recorder = new HistoryRecorder();
    const handle = recorder.invoke(0, "get", "k", null);
    expect(() => recorder.ok(handle, null, { entries: [] })).toThrow(/only a range completes with entries/);
  });

  it("parse errors name the malformed transaction or range", () => {
    expect(() => parseHistory(event(0, "invoke", "txn", "a/", '[[] [[:put "a/x" "1"] [:put "a/x" "2"]] []]'))).toThrow(
      /a :txn invocation must have/,
    );
    expect(() => parseHistory(event(0, "invoke", "list", "a/", "[nil 0]"))).toThrow(/a :list invocation must have/);
    expect(() =>
      parseHistory([event(0, "invoke", "keys", "a/", "[nil 1]"), event(0, "ok", "keys", "a/", '["a/x"]')].join("\n")),
    ).toThrow(/a :keys completion must have/);
  });
});
