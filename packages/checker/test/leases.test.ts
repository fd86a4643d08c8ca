import { describe, expect, it } from "vitest";
import {
  CheckerError,
  checkHistoryText,
  checkOperations,
  HistoryRecorder,
  type OperationKind,
  type OperationRequest,
  parseHistory,
} from "../src/index.js";

/**
 * Hand-made histories of leases: grants, writes attaching keys to a lease, keep-alives, revokes
 * and ticks of the lease clock (as the member that leads proposes them: `[by term elapsedMs]`).
 * `alone` runs one operation to completion before the next begins. Revisions are only given where
 * a test needs them (a grant's is its lease's id).
 */
class Script {
  readonly recorder = new HistoryRecorder();

  alone(request: OperationRequest, completion: Completion = {}): this {
    this.complete(this.invoke(0, request), completion);
    return this;
  }

  invoke(process: number, request: OperationRequest): number {
    const key = leaseKinds.includes(request.f) ? "" : "k";
    const lease = "lease" in request ? request.lease : undefined;
    return this.recorder.invoke(process, request.f, key, request.input, lease);
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
  readonly revision?: number;
  readonly applied?: boolean;
  readonly info?: true;
}

const leaseKinds: readonly OperationKind[] = ["grant", "keepAlive", "revoke", "tick"];
const grant = (ttlMs: number): OperationRequest => ({ f: "grant", input: ttlMs });
const keepAlive = (lease: number): OperationRequest => ({ f: "keepAlive", input: lease });
const revoke = (lease: number): OperationRequest => ({ f: "revoke", input: lease });
const tick = (elapsedMs: number, by = "n1", term = 1): OperationRequest => ({
  f: "tick",
  input: [by, term, elapsedMs],
});
const put = (value: string, lease?: number): OperationRequest =>
  lease === undefined ? { f: "put", input: value } : { f: "put", input: value, lease };
const create = (value: string, lease: number): OperationRequest => ({ f: "create", input: value, lease });
const get: OperationRequest = { f: "get", input: null };

/** The lease clock held by n1 in term 1 (its first tick counts 0), a lease 2 of 1000 ms, and k put with it. */
function leasedKey(): Script {
  return new Script()
    .alone(tick(0))
    .alone(grant(1000), { revision: 2 })
    .alone(put("a", 2), { revision: 3 })
    .alone(get, { value: "a" });
}

describe("leases: linearizable histories pass", () => {
  it("a key attached to a lease is present until the tick that reaches its TTL, absent after", () => {
    const script = leasedKey()
      .alone(tick(600))
      .alone(get, { value: "a" })
      .alone(tick(400))
      .alone(get, { value: null })
      .alone(keepAlive(2), { applied: false })
      .alone(revoke(2), { applied: false });
    expect(script.verdict()).toBe("linearizable");
  });

  it("a revoke deletes the lease's keys; a key written without the lease since is not its any more", () => {
    expect(leasedKey().alone(revoke(2), { applied: true }).alone(get, { value: null }).verdict()).toBe("linearizable");
    const detached = leasedKey()
      .alone(put("b"), { revision: 5 })
      .alone(revoke(2), { applied: true })
      .alone(get, { value: "b" });
    expect(detached.verdict()).toBe("linearizable");
  });

  it("a keep-alive gives the lease its full TTL again, from the clock's reading", () => {
    const script = leasedKey()
      .alone(tick(600))
      .alone(keepAlive(2), { applied: true })
      .alone(tick(900))
      .alone(get, { value: "a" })
      .alone(tick(100))
      .alone(get, { value: null });
    expect(script.verdict()).toBe("linearizable");
  });

  it("a tick from a new leader counts nothing and renews every live lease to its full TTL", () => {
    const script = leasedKey()
      .alone(tick(900))
      .alone(tick(0, "n2", 2))
      .alone(tick(900, "n2", 2))
      .alone(get, { value: "a" })
      .alone(tick(100, "n2", 2))
      .alone(get, { value: null });
    expect(script.verdict()).toBe("linearizable");
  });

  it("a read concurrent with the tick that ends the lease may see the key or not", () => {
    for (const value of ["a", null]) {
      const script = leasedKey();
      const ticking = script.invoke(1, tick(1000));
      script.alone(get, { value }).complete(ticking, {});
      expect(script.verdict()).toBe("linearizable");
    }
  });

  it("a tick of unknown outcome may have applied, or not", () => {
    for (const value of ["a", null]) {
      const script = leasedKey();
      script.complete(script.invoke(1, tick(1000)), { info: true });
      expect(script.alone(get, { value }).verdict()).toBe("linearizable");
    }
  });

  it("a create with a lease, as a Mutex takes its key, ends with the lease", () => {
    const script = new Script()
      .alone(tick(0))
      .alone(grant(500), { revision: 2 })
      .alone(create("holder", 2), { revision: 3, applied: true })
      .alone(create("other", 2), { applied: false })
      .alone(tick(500))
      .alone(get, { value: null });
    expect(script.verdict()).toBe("linearizable");
  });

  it("the part of the lease operations holds the keys attached to leases; other keys stay apart", () => {
    const script = leasedKey();
    script.recorder.ok(script.recorder.invoke(0, "put", "other", "x"), null, { revision: 9 });
    const result = checkOperations(script.recorder.operations());
    expect(result.keys.map(({ key, leases, operationCount }) => ({ key, leases, operationCount }))).toEqual([
      { key: "k", leases: true, operationCount: 4 },
      { key: "other", leases: undefined, operationCount: 1 },
    ]);
  });

  it("a grant of unknown outcome is left out: no one learnt its lease", () => {
    const script = leasedKey();
    script.complete(script.invoke(1, grant(1000)), { info: true });
    expect(checkOperations(script.recorder.operations()).keys[0]?.operationCount).toBe(4);
  });
});

describe("leases: histories a broken store makes are refused", () => {
  it("a revoke that forgets to delete the lease's keys", () => {
    expect(leasedKey().alone(revoke(2), { applied: true }).alone(get, { value: "a" }).verdict()).toBe(
      "not-linearizable",
    );
  });

  it("a lease that expires early, by the clock or across a change of leader", () => {
    expect(leasedKey().alone(tick(500)).alone(get, { value: null }).verdict()).toBe("not-linearizable");
    // The store kept counting across the new leader's first tick instead of renewing the lease.
    const failover = leasedKey()
      .alone(tick(900))
      .alone(tick(200, "n2", 2))
      .alone(get, { value: null });
    expect(failover.verdict()).toBe("not-linearizable");
  });

  it("a lease that outlives its TTL", () => {
    expect(leasedKey().alone(tick(1000)).alone(get, { value: "a" }).verdict()).toBe("not-linearizable");
    expect(leasedKey().alone(tick(1000)).alone(keepAlive(2), { applied: true }).verdict()).toBe("not-linearizable");
  });

  it("a keep-alive or revoke that found a live lease not found", () => {
    expect(leasedKey().alone(keepAlive(2), { applied: false }).verdict()).toBe("not-linearizable");
    expect(leasedKey().alone(revoke(2), { applied: false }).verdict()).toBe("not-linearizable");
  });

  it("a write that attached its key to a lease that had ended", () => {
    const script = leasedKey().alone(revoke(2), { applied: true }).alone(put("b", 2), { revision: 7 });
    expect(script.verdict()).toBe("not-linearizable");
  });

  it("a grant at a revision another write had", () => {
    const script = new Script().alone(put("a"), { revision: 2 }).alone(grant(1000), { revision: 2 });
    expect(checkOperations(script.recorder.operations()).revisionOrder?.reason).toBe("two writes got revision 2");
  });
});

describe("lease operations in histories", () => {
  const lines = [
    '{:process 0, :type :invoke, :f :tick, :key "", :value ["n1" 1 0]}',
    '{:process 0, :type :ok, :f :tick, :key "", :value ["n1" 1 0]}',
    '{:process 0, :type :invoke, :f :grant, :key "", :value 1000}',
    '{:process 0, :type :ok, :f :grant, :key "", :value 1000, :revision 2}',
    '{:process 0, :type :invoke, :f :put, :key "k", :value "a", :lease 2}',
    '{:process 0, :type :ok, :f :put, :key "k", :value "a", :revision 3}',
    '{:process 0, :type :invoke, :f :revoke, :key "", :value 2}',
    '{:process 0, :type :ok, :f :revoke, :key "", :value 2, :applied true}',
    '{:process 0, :type :invoke, :f :get, :key "k", :value nil}',
    '{:process 0, :type :ok, :f :get, :key "k", :value nil}',
  ];

  it("parse from EDN, and the recorder writes the same EDN", () => {
    expect(checkHistoryText(lines.join("\n")).verdict).toBe("linearizable");
    expect(parseHistory(lines.join("\n"))[2]).toMatchObject({ f: "put", key: "k", input: "a", lease: 2 });
    const script = new Script()
      .alone(tick(0))
      .alone(grant(1000), { revision: 2 })
      .alone(put("a", 2), { revision: 3 })
      .alone(revoke(2), { applied: true })
      .alone(get, { value: null });
    expect(script.recorder.toEdn()).toBe(`${lines.join("\n")}\n`);
  });

  it("refuse a lease on an operation that takes none, a lease operation naming a key, a malformed tick", () => {
    const invoke = (rest: string) => `{:process 0, :type :invoke, ${rest}}`;
    expect(() => parseHistory(invoke(':f :get, :key "k", :value nil, :lease 2'))).toThrow(/only :put, :create/);
    expect(() => parseHistory(invoke(':f :put, :key "k", :value "a", :lease 0'))).toThrow(/:lease must be/);
    expect(() => parseHistory(invoke(':f :grant, :key "k", :value 1000'))).toThrow(/names no key/);
    expect(() => parseHistory(invoke(':f :tick, :key "", :value ["n1" 1]'))).toThrow(/:tick invocation/);
  });

  it("refuse to check a lease no completed grant returned", () => {
    const script = new Script().alone(tick(0)).alone(put("a", 7), { revision: 3 });
    expect(() => checkOperations(script.recorder.operations())).toThrow(CheckerError);
    expect(() => checkOperations(script.recorder.operations())).toThrow(/lease 7 was not returned/);
  });
});
