import { ErrorCode, packValue } from "@quorate/core";
import {
  decodeKvResult,
  encodeKvCommand,
  type KvChange,
  type KvCommand,
  type KvCompare,
  type KvResult,
  type KvRevisionCommand,
  KvStateMachine,
  type KvTxnOp,
  MAX_KEY_LENGTH,
  MAX_TXN_OPS,
} from "@quorate/kv";
import { describe, expect, it } from "vitest";

const bytes = (...b: number[]) => new Uint8Array(b);

/** The last log index applied to each store: `run` applies at the next one, as consensus does. */
const applied = new WeakMap<KvStateMachine, number>();

function run(store: KvStateMachine, command: KvCommand | KvRevisionCommand | Uint8Array, index?: number): KvResult {
  const data = command instanceof Uint8Array ? command : encodeKvCommand(command);
  const at = index ?? (applied.get(store) ?? store.revision) + 1;
  applied.set(store, at);
  const result = decodeKvResult(store.apply(data, at));
  if (result === null) throw new Error("undecodable result");
  return result;
}

function value(result: KvResult): unknown {
  if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.message}`);
  return result.value;
}

describe("KvStateMachine", () => {
  it("puts, gets and deletes", () => {
    const store = new KvStateMachine();
    expect(value(run(store, { op: "get", key: "a" }))).toBeNull();
    expect(value(run(store, { op: "put", key: "a", value: "1" }))).toBe(2);
    expect(value(run(store, { op: "get", key: "a" }))).toBe("1");
    expect(value(run(store, { op: "put", key: "a", value: "2" }))).toBe(4);
    expect(store.read("a")).toBe("2");
    expect(value(run(store, { op: "delete", key: "a" }))).toBe(true);
    expect(value(run(store, { op: "delete", key: "a" }))).toBe(false);
    expect(store.read("a")).toBeNull();
    expect(store.size).toBe(0);
  });

  it("keeps strings and bytes apart", () => {
    const store = new KvStateMachine();
    run(store, { op: "put", key: "s", value: "\u0001" });
    run(store, { op: "put", key: "b", value: bytes(1) });
    expect(store.read("s")).toBe("\u0001");
    const stored = store.read("b");
    expect(stored).toBeInstanceOf(Uint8Array);
    expect([...(stored as Uint8Array)]).toEqual([1]);
    expect(value(run(store, { op: "get", key: "b" }))).toBeInstanceOf(Uint8Array);
    // Same content, other type: no match.
    expect(value(run(store, { op: "cas", key: "s", expected: bytes(1), value: "x" }))).toBe(false);
    expect(value(run(store, { op: "cas", key: "b", expected: "\u0001", value: "x" }))).toBe(false);
    expect(value(run(store, { op: "cas", key: "b", expected: bytes(1), value: "x" }))).toBe(true);
    expect(store.read("b")).toBe("x");
  });

  it("cas: absent (null) and expected values", () => {
    const store = new KvStateMachine();
    expect(value(run(store, { op: "cas", key: "k", expected: null, value: "v1" }))).toBe(true);
    expect(value(run(store, { op: "cas", key: "k", expected: null, value: "v2" }))).toBe(false);
    expect(value(run(store, { op: "cas", key: "k", expected: "nope", value: "v2" }))).toBe(false);
    expect(store.read("k")).toBe("v1");
    expect(value(run(store, { op: "cas", key: "k", expected: "v1", value: bytes(9, 9) }))).toBe(true);
    expect(value(run(store, { op: "cas", key: "k", expected: bytes(9), value: "x" }))).toBe(false);
    expect(value(run(store, { op: "cas", key: "k", expected: bytes(9, 9), value: "v3" }))).toBe(true);
    expect(store.read("k")).toBe("v3");
    expect(value(run(store, { op: "cas", key: "missing", expected: "v", value: "x" }))).toBe(false);
    expect(store.read("missing")).toBeNull();
  });

  it("accepts keys up to MAX_KEY_LENGTH and rejects longer or empty ones", () => {
    const store = new KvStateMachine();
    expect(run(store, { op: "put", key: "k".repeat(MAX_KEY_LENGTH), value: "v" }).ok).toBe(true);
    for (const key of ["k".repeat(MAX_KEY_LENGTH + 1), ""]) {
      expect(run(store, { op: "put", key, value: "v" })).toMatchObject({ ok: false, code: ErrorCode.Rejected });
    }
    expect(store.size).toBe(1);
  });

  it("rejects malformed commands without throwing or changing state", () => {
    const store = new KvStateMachine();
    run(store, { op: "put", key: "a", value: "1" });
    const before = store.snapshot();
    const bad: Uint8Array[] = [
      bytes(0xc1),
      bytes(),
      packValue(null),
      packValue({ op: "put", key: "a" }),
      packValue({ op: "put", key: "a", value: 42 }),
      packValue({ op: "put", key: 7, value: "x" }),
      packValue({ op: "cas", key: "a", value: "x" }),
      packValue({ op: "cas", key: "a", expected: 1, value: "x" }),
      packValue({ op: "drop", key: "a" }),
      packValue(["put", "a", "x"]),
    ];
    for (const command of bad) {
      expect(run(store, command)).toMatchObject({ ok: false, code: ErrorCode.Rejected });
    }
    expect(Buffer.from(store.snapshot()).equals(Buffer.from(before))).toBe(true);
  });

  it("snapshots canonically and restores, revisions included", () => {
    const one = new KvStateMachine();
    run(one, { op: "put", key: "b", value: bytes(2) });
    run(one, { op: "put", key: "a", value: "1" });
    run(one, { op: "put", key: "z", value: "gone" });
    run(one, { op: "delete", key: "z" });
    run(one, { op: "put", key: "a", value: "2" });

    const copy = new KvStateMachine();
    run(copy, { op: "put", key: "old", value: "x" });
    copy.restore(one.snapshot());
    expect(copy.read("old")).toBeNull();
    expect(copy.entry("a")).toEqual({ value: "2", revision: 5, createRevision: 2, version: 2 });
    expect(copy.entry("b")).toMatchObject({ revision: 1, createRevision: 1, version: 1 });
    expect([...(copy.read("b") as Uint8Array)]).toEqual([2]);
    expect(copy.revision).toBe(5);
    // Restored keys were inserted in another order: the bytes are the same all the same.
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(one.snapshot()))).toBe(true);
    // The copy goes on from the snapshot's revision, as the original does.
    expect(value(run(copy, { op: "put", key: "a", value: "3" }, 9))).toBe(9);
    expect(value(run(one, { op: "put", key: "a", value: "3" }, 9))).toBe(9);
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(one.snapshot()))).toBe(true);
  });

  it("restores a version 1 snapshot (no revisions) at revision 0", () => {
    const store = new KvStateMachine();
    store.restore(
      packValue({
        version: 1,
        entries: [
          ["a", "1"],
          ["b", bytes(2)],
        ],
      }),
    );
    expect(store.entry("a")).toEqual({ value: "1", revision: 0, createRevision: 0, version: 1 });
    expect(store.revision).toBe(0);
    expect(value(run(store, { op: "update", key: "a", value: "2", revision: 0 }, 3))).toBe(3);
    expect(store.entry("a")).toEqual({ value: "2", revision: 3, createRevision: 0, version: 2 });
    expect([...store.range("")].map(([key]) => key)).toEqual(["a", "b"]);
  });

  it("refuses a malformed snapshot with a Storage error and keeps its state", () => {
    const store = new KvStateMachine();
    run(store, { op: "put", key: "a", value: "1" });
    for (const snapshot of [bytes(0xc1), packValue({ version: 1, entries: [["", "x"]] }), packValue({ entries: [] })]) {
      expect(() => store.restore(snapshot)).toThrow(expect.objectContaining({ code: ErrorCode.Storage }));
    }
    expect(store.read("a")).toBe("1");
  });
});

describe("KvStateMachine revisions", () => {
  it("gives each write the index it was applied at; reads and failed conditions change no revision", () => {
    const store = new KvStateMachine();
    expect(value(run(store, { op: "put", key: "k", value: "a" }, 3))).toBe(3);
    expect(store.entry("k")).toEqual({ value: "a", revision: 3, createRevision: 3, version: 1 });
    expect(value(run(store, { op: "get", key: "k" }, 4))).toBe("a");
    expect(value(run(store, { op: "create", key: "k", value: "b" }, 5))).toBeNull();
    expect(value(run(store, { op: "update", key: "k", value: "b", revision: 2 }, 6))).toBeNull();
    expect(store.revision).toBe(3);
    expect(value(run(store, { op: "update", key: "k", value: "b", revision: 3 }, 7))).toBe(7);
    expect(store.entry("k")).toEqual({ value: "b", revision: 7, createRevision: 3, version: 2 });
    expect(run(store, { op: "delete", key: "k", revision: 3 }, 8)).toEqual({ ok: true, value: false });
    // A delete that deleted also carries its revision; value stays the boolean.
    expect(run(store, { op: "delete", key: "k", revision: 7 }, 9)).toEqual({ ok: true, value: true, revision: 9 });
    expect(store.entry("k")).toBeNull();
    expect(store.revision).toBe(9);
    // Created again: a new create revision, version from 1.
    expect(value(run(store, { op: "create", key: "k", value: "c" }, 10))).toBe(10);
    expect(store.entry("k")).toEqual({ value: "c", revision: 10, createRevision: 10, version: 1 });
  });

  it("refuses an index that does not pass the store's revision: an invariant of consensus", () => {
    const store = new KvStateMachine();
    run(store, { op: "put", key: "k", value: "a" }, 5);
    expect(() => store.apply(encodeKvCommand({ op: "put", key: "k", value: "b" }), 5)).toThrow(
      expect.objectContaining({ code: ErrorCode.Invariant }),
    );
  });

  it("txn: applies the success writes when every compare holds, the failure writes otherwise, at one revision", () => {
    const store = new KvStateMachine();
    run(store, { op: "put", key: "a", value: "1" }, 1);
    run(store, { op: "put", key: "b", value: bytes(2) }, 2);
    const txn = (compare: KvCompare[], index: number) =>
      value(
        run(
          store,
          {
            op: "txn",
            compare,
            success: [
              { op: "put", key: "c", value: "yes" },
              { op: "delete", key: "a" },
            ],
            failure: [{ op: "put", key: "c", value: "no" }],
          },
          index,
        ),
      );
    expect(
      txn(
        [
          { key: "a", value: "1" },
          { key: "b", revision: 1 },
        ],
        3,
      ),
    ).toEqual({ succeeded: false, revision: 3 });
    expect(store.entry("c")).toMatchObject({ value: "no", revision: 3 });
    expect(store.read("a")).toBe("1");
    expect(txn([{ key: "b", value: "\u0002" }], 4)).toEqual({ succeeded: false, revision: 4 });
    expect(txn([{ key: "zz", revision: 0 }], 5)).toEqual({ succeeded: false, revision: 5 });
    const compare: KvCompare[] = [
      { key: "a", value: "1" },
      { key: "b", revision: 2 },
      { key: "zz", absent: true },
    ];
    expect(txn(compare, 6)).toEqual({ succeeded: true, revision: 6 });
    expect(store.read("a")).toBeNull();
    expect(store.entry("c")).toEqual({ value: "yes", revision: 6, createRevision: 3, version: 4 });
    expect(store.changesAfter(5)).toEqual([
      {
        previous: 5,
        revision: 6,
        events: [
          { op: "put", key: "c", value: "yes", revision: 6 },
          { op: "delete", key: "a", value: null, revision: 6 },
        ],
      },
    ]);
    // A branch that changes nothing leaves the revision alone.
    expect(value(run(store, { op: "txn", compare: [], success: [{ op: "delete", key: "a" }] }, 7))).toEqual({
      succeeded: true,
      revision: 6,
    });
  });

  it("txn: refuses more than MAX_TXN_OPS operations and a branch that writes a key twice", () => {
    const store = new KvStateMachine();
    const puts = (n: number) => Array.from({ length: n }, (_, i) => ({ op: "put" as const, key: `k${i}`, value: "v" }));
    expect(run(store, { op: "txn", compare: [], success: puts(MAX_TXN_OPS) }).ok).toBe(true);
    expect(run(store, { op: "txn", compare: [], success: puts(MAX_TXN_OPS + 1) })).toMatchObject({ ok: false });
    const twice: KvTxnOp[] = [
      { op: "put", key: "a", value: "1" },
      { op: "delete", key: "a" },
    ];
    expect(run(store, { op: "txn", compare: [], success: twice })).toMatchObject({ ok: false });
    expect(run(store, { op: "txn", compare: [], success: [], failure: twice })).toMatchObject({ ok: false });
  });

  it("ranges: keys by prefix in code-unit order, from a key on", () => {
    const store = new KvStateMachine();
    for (const key of ["b/2", "a", "b/1", "b/10", "b0", "b/", "c"]) run(store, { op: "put", key, value: key });
    run(store, { op: "delete", key: "b/10" });
    expect([...store.range("b/")].map(([key]) => key)).toEqual(["b/", "b/1", "b/2"]);
    expect([...store.range("b/", "b/10")].map(([key]) => key)).toEqual(["b/2"]);
    expect([...store.range("b/", "a")].map(([key]) => key)).toEqual(["b/", "b/1", "b/2"]);
    expect([...store.range("")].map(([key]) => key)).toEqual(["a", "b/", "b/1", "b/2", "b0", "c"]);
    expect([...store.range("x")]).toEqual([]);
    expect(store.range("b/1").next().value).toEqual([
      "b/1",
      { value: "b/1", revision: 3, createRevision: 3, version: 1 },
    ]);
  });

  it("watch window: keeps the newest changes up to watchWindow events and says what it dropped", () => {
    const store = new KvStateMachine({ watchWindow: 3 });
    const seen: KvChange[] = [];
    store.onChange((change) => seen.push(change));
    expect(store.oldestWatchableRevision).toBe(1);
    for (let i = 1; i <= 5; i++) run(store, { op: "put", key: `k${i}`, value: "v" }, i * 2);
    expect(seen.map((c) => [c.previous, c.revision])).toEqual([
      [0, 2],
      [2, 4],
      [4, 6],
      [6, 8],
      [8, 10],
    ]);
    expect(store.oldestWatchableRevision).toBe(5);
    expect(store.changesAfter(3)).toBeNull();
    expect(store.changesAfter(4)?.map((c) => c.revision)).toEqual([6, 8, 10]);
    expect(store.changesAfter(7)?.map((c) => c.revision)).toEqual([8, 10]);
    expect(store.changesAfter(10)).toEqual([]);
    // After a restore the changes before the snapshot are unknown here.
    store.restore(new KvStateMachine().snapshot());
    expect(store.oldestWatchableRevision).toBe(1);
    const other = new KvStateMachine();
    run(other, { op: "put", key: "x", value: "v" }, 20);
    store.restore(other.snapshot());
    expect(store.oldestWatchableRevision).toBe(21);
    expect(store.changesAfter(19)).toBeNull();
  });

  it("refuses a watchWindow that is not a positive integer", () => {
    for (const watchWindow of [0, -1, 1.5]) {
      expect(() => new KvStateMachine({ watchWindow })).toThrow(expect.objectContaining({ code: ErrorCode.Config }));
    }
  });
});
