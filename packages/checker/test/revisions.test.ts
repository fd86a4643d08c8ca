import { describe, expect, it } from "vitest";
import { checkHistoryText, checkOperations, HistoryRecorder, type OperationRequest } from "../src/index.js";

/**
 * Small hand-made histories of the revision-aware operations (create, update, entry,
 * compare-and-delete, writes that record their revision). Each process runs one operation at a
 * time; `alone` runs one to completion before the next begins.
 */
class Script {
  readonly recorder = new HistoryRecorder();

  alone(request: OperationRequest, completion: Completion = {}, key = "k"): this {
    this.complete(this.recorder.invoke(0, request.f, key, request.input), completion);
    return this;
  }

  invoke(process: number, request: OperationRequest, key = "k"): number {
    return this.recorder.invoke(process, request.f, key, request.input);
  }

  complete(handle: number, completion: Completion): this {
    if (completion.info === true) this.recorder.info(handle);
    else this.recorder.ok(handle, completion.value ?? null, completion);
    return this;
  }

  verdict(): string {
    return checkOperations(this.recorder.operations()).verdict;
  }
}

interface Completion {
  readonly value?: string | null;
  readonly revision?: number | null;
  readonly createRevision?: number | null;
  readonly applied?: boolean;
  readonly info?: true;
}

const put = (value: string): OperationRequest => ({ f: "put", input: value });
const create = (value: string): OperationRequest => ({ f: "create", input: value });
const update = (revision: number, value: string): OperationRequest => ({ f: "update", input: [revision, value] });
const remove = (revision: number | null = null): OperationRequest => ({ f: "delete", input: revision });
const entry: OperationRequest = { f: "entry", input: null };

describe("the revision model: linearizable histories pass", () => {
  it("create, update with the revision an entry read, compare-and-delete, create again", () => {
    const script = new Script()
      .alone(create("a"), { revision: 3, applied: true })
      .alone(entry, { value: "a", revision: 3, createRevision: 3 })
      .alone(update(3, "b"), { revision: 5, applied: true })
      .alone(update(3, "c"), { applied: false })
      .alone(create("d"), { applied: false })
      .alone(entry, { value: "b", revision: 5, createRevision: 3 })
      .alone(remove(4), { applied: false })
      .alone(remove(5), { revision: 9, applied: true })
      .alone(entry, { value: null })
      .alone(create("e"), { revision: 12, applied: true });
    expect(script.verdict()).toBe("linearizable");
  });

  it("concurrent creates: exactly one wins, in the order the revisions say", () => {
    const script = new Script();
    const first = script.invoke(0, create("a"));
    const second = script.invoke(1, create("b"));
    script.complete(second, { revision: 4, applied: true }).complete(first, { applied: false });
    script.alone(entry, { value: "b", revision: 4, createRevision: 4 });
    expect(script.verdict()).toBe("linearizable");
  });

  it("a write of unknown outcome may have happened at a revision first seen by a later entry", () => {
    const script = new Script().alone(put("a"), { revision: 2 });
    const lost = script.invoke(1, update(2, "b"));
    script.complete(lost, { info: true });
    script.alone(entry, { value: "b", revision: 7, createRevision: 2 });
    script.alone(update(7, "c"), { revision: 8, applied: true });
    expect(script.verdict()).toBe("linearizable");
  });

  it("a write of unknown outcome may not have happened: the old revision still conditions an update", () => {
    const script = new Script().alone(put("a"), { revision: 2 });
    script.complete(script.invoke(1, put("b")), { info: true });
    script.alone(update(2, "c"), { revision: 6, applied: true });
    expect(script.verdict()).toBe("linearizable");
  });

  it("a put that recorded no revision leaves its revision open, above the last one known", () => {
    const script = new Script().alone(put("a"), { revision: 2 }).alone(put("b"));
    script.alone(update(5, "c"), { revision: 6, applied: true });
    expect(script.verdict()).toBe("linearizable");
  });

  it("round-trips through EDN with the same verdict", () => {
    const script = new Script()
      .alone(create("a"), { revision: 3, applied: true })
      .alone(update(3, "b"), { revision: 5, applied: true })
      .alone(entry, { value: "b", revision: 5, createRevision: 3 })
      .alone(remove(5), { revision: 6, applied: true });
    const edn = script.recorder.toEdn();
    expect(edn).toContain(':f :update, :key "k", :value [3 "b"], :revision 5, :applied true');
    expect(checkHistoryText(edn).verdict).toBe("linearizable");
    const broken = edn.replace(":revision 5, :create-revision 3", ":revision 4, :create-revision 3");
    expect(broken).not.toBe(edn);
    expect(checkHistoryText(broken).verdict).toBe("not-linearizable");
  });
});

describe("the revision model: non-linearizable histories are refused", () => {
  it("an update that succeeded against a stale revision", () => {
    const script = new Script()
      .alone(put("a"), { revision: 2 })
      .alone(update(2, "b"), { revision: 4, applied: true })
      .alone(update(2, "c"), { revision: 6, applied: true });
    expect(script.verdict()).toBe("not-linearizable");
  });

  it("an update that failed although the revision was current", () => {
    const script = new Script().alone(put("a"), { revision: 2 }).alone(update(2, "b"), { applied: false });
    expect(script.verdict()).toBe("not-linearizable");
  });

  it("a create that succeeded over an existing key", () => {
    const script = new Script()
      .alone(create("a"), { revision: 2, applied: true })
      .alone(create("b"), { revision: 3, applied: true });
    expect(script.verdict()).toBe("not-linearizable");
  });

  it("a create that failed on an absent key", () => {
    expect(new Script().alone(create("a"), { applied: false }).verdict()).toBe("not-linearizable");
  });

  it("revisions going backwards on one key", () => {
    const script = new Script().alone(put("a"), { revision: 5 }).alone(put("b"), { revision: 4 });
    expect(script.verdict()).toBe("not-linearizable");
    const deleted = new Script().alone(put("a"), { revision: 5 }).alone(remove(), { revision: 5, applied: true });
    expect(deleted.verdict()).toBe("not-linearizable");
  });

  it("an entry showing a revision nobody wrote", () => {
    const script = new Script()
      .alone(put("a"), { revision: 2 })
      .alone(entry, { value: "a", revision: 3, createRevision: 2 });
    expect(script.verdict()).toBe("not-linearizable");
    const created = new Script()
      .alone(put("a"), { revision: 2 })
      .alone(put("b"), { revision: 3 })
      .alone(entry, { value: "b", revision: 3, createRevision: 3 });
    expect(created.verdict()).toBe("not-linearizable");
  });

  it("an entry below the revision a write of unknown revision must have had", () => {
    const script = new Script()
      .alone(put("a"), { revision: 4 })
      .alone(put("b"))
      .alone(entry, { value: "b", revision: 4, createRevision: 4 });
    expect(script.verdict()).toBe("not-linearizable");
  });

  it("a compare-and-delete that deleted at a stale revision", () => {
    const script = new Script()
      .alone(put("a"), { revision: 2 })
      .alone(put("b"), { revision: 3 })
      .alone(remove(2), { revision: 4, applied: true });
    expect(script.verdict()).toBe("not-linearizable");
  });

  it("an update of unknown outcome cannot explain a value nobody wrote", () => {
    const script = new Script().alone(put("a"), { revision: 2 });
    script.complete(script.invoke(1, update(2, "b")), { info: true });
    script.alone(entry, { value: "c", revision: 7, createRevision: 2 });
    expect(script.verdict()).toBe("not-linearizable");
  });
});

describe("the revision order across keys", () => {
  /** k holds "a" at revision 2; a write of "b" to k (revision 4) is in flight while j is written at revision 5; then k is read. */
  function readAfterAnotherKeysWrite(read: Completion): Script {
    const script = new Script().alone(put("a"), { revision: 2 });
    const inFlight = script.invoke(1, put("b"));
    script.alone(put("z"), { revision: 5 }, "j");
    script.alone(entry, read);
    return script.complete(inFlight, { revision: 4 });
  }

  it("accepts a read that comes after every write another key's earlier write follows", () => {
    expect(readAfterAnotherKeysWrite({ value: "b", revision: 4, createRevision: 2 }).verdict()).toBe("linearizable");
  });

  it("refuses a read older than a write that precedes, in revision order, a write that completed before it", () => {
    const result = checkOperations(
      readAfterAnotherKeysWrite({ value: "a", revision: 2, createRevision: 2 }).recorder.operations(),
    );
    expect(result.verdict).toBe("not-linearizable");
    expect(result.revisionOrder?.reason).toMatch(/later in revision order/);
    expect(result.witness?.map((op) => [op.key, op.f])).toEqual([
      ["j", "put"],
      ["k", "entry"],
    ]);
  });

  it("refuses revisions going backwards across keys in real time", () => {
    const script = new Script().alone(put("a"), { revision: 5 }, "x").alone(put("b"), { revision: 3 }, "y");
    expect(script.verdict()).toBe("not-linearizable");
  });

  it("accepts concurrent writes to two keys whose revisions go either way", () => {
    const script = new Script();
    const x = script.invoke(0, put("a"), "x");
    const y = script.invoke(1, put("b"), "y");
    script.complete(x, { revision: 5 }).complete(y, { revision: 3 });
    expect(script.verdict()).toBe("linearizable");
  });

  it("checks the revision a delete reports (KvResult.revision) as a write's: above the key's last, one of its own, in real time", () => {
    // What a store reporting the deleted value's revision as the delete's own produces.
    const own = new Script().alone(put("a"), { revision: 5 }).alone(remove(), { revision: 5, applied: true });
    expect(checkOperations(own.recorder.operations()).revisionOrder?.reason).toBe("two writes got revision 5");
    const another = new Script()
      .alone(put("a"), { revision: 5 }, "x")
      .alone(put("b"), { revision: 6 }, "y")
      .alone(remove(), { revision: 6, applied: true }, "x");
    expect(checkOperations(another.recorder.operations()).revisionOrder?.reason).toBe("two writes got revision 6");
    const backwards = new Script()
      .alone(put("a"), { revision: 5 }, "x")
      .alone(put("b"), { revision: 8 }, "y")
      .alone(remove(), { revision: 7, applied: true }, "x");
    expect(checkOperations(backwards.recorder.operations()).revisionOrder?.reason).toMatch(/later in revision order/);
    const right = new Script()
      .alone(put("a"), { revision: 5 }, "x")
      .alone(put("b"), { revision: 8 }, "y")
      .alone(remove(), { revision: 9, applied: true }, "x")
      .alone(entry, { value: null }, "x");
    expect(right.verdict()).toBe("linearizable");
  });

  it("refuses two writes with one revision, and an entry showing another key's revision", () => {
    const twice = new Script().alone(put("a"), { revision: 5 }, "x").alone(put("b"), { revision: 5 }, "y");
    expect(checkOperations(twice.recorder.operations()).revisionOrder?.reason).toBe("two writes got revision 5");
    const borrowed = new Script()
      .alone(put("a"), { revision: 5 }, "x")
      .alone(put("b"), { revision: 6 }, "y")
      .alone(put("c"), { info: true }, "x")
      .alone(entry, { value: "c", revision: 6, createRevision: 5 }, "x");
    expect(checkOperations(borrowed.recorder.operations()).revisionOrder?.reason).toMatch(/written to another key/);
  });
});
