import { ErrorCode, packValue } from "@quorate/core";
import {
  decodeKvResult,
  encodeKvCommand,
  type KvCommand,
  type KvResult,
  KvStateMachine,
  MAX_KEY_LENGTH,
} from "@quorate/kv";
import { describe, expect, it } from "vitest";

const bytes = (...b: number[]) => new Uint8Array(b);

function run(store: KvStateMachine, command: KvCommand | Uint8Array): KvResult {
  const data = command instanceof Uint8Array ? command : encodeKvCommand(command);
  const result = decodeKvResult(store.apply(data, 1));
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
    expect(value(run(store, { op: "put", key: "a", value: "1" }))).toBeNull();
    expect(value(run(store, { op: "get", key: "a" }))).toBe("1");
    expect(value(run(store, { op: "put", key: "a", value: "2" }))).toBeNull();
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

  it("snapshots canonically and restores", () => {
    const one = new KvStateMachine();
    const two = new KvStateMachine();
    run(one, { op: "put", key: "b", value: bytes(2) });
    run(one, { op: "put", key: "a", value: "1" });
    run(two, { op: "put", key: "a", value: "0" });
    run(two, { op: "put", key: "a", value: "1" });
    run(two, { op: "put", key: "z", value: "gone" });
    run(two, { op: "put", key: "b", value: bytes(2) });
    run(two, { op: "delete", key: "z" });
    expect(Buffer.from(one.snapshot()).equals(Buffer.from(two.snapshot()))).toBe(true);

    const copy = new KvStateMachine();
    run(copy, { op: "put", key: "old", value: "x" });
    copy.restore(one.snapshot());
    expect(copy.read("old")).toBeNull();
    expect(copy.read("a")).toBe("1");
    expect(copy.read("b")).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(one.snapshot()))).toBe(true);
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
