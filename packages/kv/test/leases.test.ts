import { ErrorCode, packValue } from "@quorate/core";
import {
  decodeKvResult,
  encodeKvCommand,
  type KvAnyCommand,
  type KvChange,
  type KvResult,
  KvStateMachine,
  MAX_CHANGE_EVENTS,
  MAX_LEASE_KEYS,
  MIN_LEASE_TTL_MS,
} from "@quorate/kv";
import { describe, expect, it } from "vitest";

/** Applies each command at the next index, as consensus does. */
class Replica {
  readonly store = new KvStateMachine();
  readonly changes: KvChange[] = [];
  index = 0;

  constructor() {
    this.store.onChange((change) => this.changes.push(change));
  }

  run(command: KvAnyCommand): KvResult {
    this.index += 1;
    const result = decodeKvResult(this.store.apply(encodeKvCommand(command), this.index));
    if (result === null) throw new Error("undecodable result");
    return result;
  }

  ok(command: KvAnyCommand): unknown {
    const result = this.run(command);
    if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.message}`);
    return result.value;
  }

  grant(ttlMs: number): number {
    return this.ok({ op: "grant", ttlMs }) as number;
  }

  tick(elapsedMs: number, by = "n1", term = 1): void {
    this.ok({ op: "tick", by, term, elapsedMs });
  }
}

describe("KV leases", () => {
  it("expiry at the exact boundary: a lease lives while less than its TTL was counted", () => {
    const r = new Replica();
    r.tick(0); // n1 in term 1 holds the clock from here on
    const lease = r.grant(1000);
    r.ok({ op: "put", key: "held", value: "v", lease });
    r.tick(999);
    expect(r.store.lease(lease)).toEqual({ ttlMs: 1000, remainingMs: 1, keys: ["held"] });
    expect(r.store.read("held")).toBe("v");
    r.tick(1);
    expect(r.store.lease(lease)).toBeNull();
    expect(r.store.read("held")).toBeNull();
    expect(r.store.leaseCount).toBe(0);
    // The deletion is a revisioned change at the tick's index, as a watcher sees it.
    expect(r.changes.at(-1)).toEqual({
      previous: 3, // the put
      revision: r.index,
      events: [{ op: "delete", key: "held", value: null, revision: r.index }],
    });
  });

  it("keepAlive gives the full TTL again; after expiry it fails with QUORATE_LEASE_NOT_FOUND", () => {
    const r = new Replica();
    r.tick(0);
    const lease = r.grant(1000);
    r.tick(900);
    expect(r.ok({ op: "keepAlive", lease })).toBe(1000);
    r.tick(900);
    expect(r.store.lease(lease)?.remainingMs).toBe(100);
    r.tick(100);
    const expired = r.run({ op: "keepAlive", lease });
    expect(expired).toMatchObject({ ok: false, code: ErrorCode.LeaseNotFound });
    expect(r.run({ op: "keepAlive", lease: 12345 })).toMatchObject({ ok: false, code: ErrorCode.LeaseNotFound });
  });

  it("attaching a key to an ended lease fails with QUORATE_LEASE_NOT_FOUND and writes nothing", () => {
    const r = new Replica();
    const lease = r.grant(1000);
    r.ok({ op: "revoke", lease });
    const revision = r.store.revision;
    for (const command of [
      { op: "put", key: "k", value: "v", lease },
      { op: "create", key: "k", value: "v", lease },
    ] as const) {
      expect(r.run(command)).toMatchObject({ ok: false, code: ErrorCode.LeaseNotFound });
    }
    expect(r.store.read("k")).toBeNull();
    expect(r.store.revision).toBe(revision);
  });

  it("revoke deletes the attached keys in one revisioned change, and a put without the lease detaches a key", () => {
    const r = new Replica();
    const lease = r.grant(5000);
    r.ok({ op: "put", key: "b", value: "1", lease });
    r.ok({ op: "create", key: "a", value: "1", lease });
    r.ok({ op: "put", key: "detached", value: "1", lease });
    r.ok({ op: "put", key: "detached", value: "2" });
    expect(r.store.entry("a")?.lease).toBe(lease);
    expect(r.store.entry("detached")?.lease).toBeUndefined();
    expect(r.store.lease(lease)?.keys).toEqual(["a", "b"]);
    const before = r.store.revision;
    expect(r.ok({ op: "revoke", lease })).toBe(true);
    expect(r.changes.at(-1)).toEqual({
      previous: before,
      revision: r.index,
      events: [
        { op: "delete", key: "a", value: null, revision: r.index },
        { op: "delete", key: "b", value: null, revision: r.index },
      ],
    });
    expect(r.store.read("detached")).toBe("2");
    expect(r.ok({ op: "revoke", lease })).toBe(false);
  });

  it("a key deleted by hand leaves its lease; an update moves it to another lease", () => {
    const r = new Replica();
    const one = r.grant(5000);
    const two = r.grant(5000);
    r.ok({ op: "put", key: "k", value: "1", lease: one });
    const revision = r.store.entry("k")?.revision as number;
    r.ok({ op: "update", key: "k", value: "2", revision, lease: two });
    expect(r.store.lease(one)?.keys).toEqual([]);
    expect(r.store.lease(two)?.keys).toEqual(["k"]);
    r.ok({ op: "delete", key: "k" });
    expect(r.store.lease(two)?.keys).toEqual([]);
    r.ok({ op: "put", key: "k", value: "3" });
    expect(r.ok({ op: "revoke", lease: two })).toBe(true);
    expect(r.store.read("k")).toBe("3");
  });

  it("leader change does not expire early: a tick from another proposer or term counts 0 and renews live leases", () => {
    const r = new Replica();
    r.tick(0, "n1", 1);
    const lease = r.grant(1000);
    const gone = r.grant(500);
    r.tick(600, "n1", 1);
    expect(r.store.lease(gone)).toBeNull();
    // n2 takes over in term 2: its first tick, whatever it carries, counts nothing and gives
    // the live lease its whole TTL again (etcd's new leader); the expired one stays expired.
    r.tick(5000, "n2", 2);
    expect(r.store.lease(lease)?.remainingMs).toBe(1000);
    expect(r.store.lease(gone)).toBeNull();
    r.tick(999, "n2", 2);
    expect(r.store.lease(lease)?.remainingMs).toBe(1);
    // n1 leads again, in a new term: its gap is not counted, and the lease is renewed again.
    r.tick(10_000, "n1", 3);
    expect(r.store.lease(lease)?.remainingMs).toBe(1000);
    r.tick(1000, "n1", 3);
    expect(r.store.lease(lease)).toBeNull();
  });

  it("a tick chosen twice counts once: a tick of the same proposer and term whose seq is not above the last counts nothing", () => {
    // Paxos simulator seed 619754182 (liveness, at 9198710): one tick of n5, proposed once, was
    // chosen in slots 29 and 45; both counted, the lease clock ran ahead and a live lease's key
    // vanished (the checker saw it as a non-linearizable history on l/p).
    const r = new Replica();
    const tick = (elapsedMs: number, seq: number) => r.ok({ op: "tick", by: "n5", term: 2, elapsedMs, seq });
    tick(0, 1);
    const lease = r.grant(900);
    tick(250, 2);
    tick(250, 2);
    expect(r.store.clockMs).toBe(250);
    tick(250, 1);
    expect(r.store.clockMs).toBe(250);
    expect(r.store.lease(lease)?.remainingMs).toBe(650);
    tick(600, 3);
    expect(r.store.clockMs).toBe(850);
    // Another proposer's ticks number from 1 again; ticks without a seq (older logs) count as before.
    r.ok({ op: "tick", by: "n1", term: 3, elapsedMs: 0, seq: 1 });
    r.ok({ op: "tick", by: "n1", term: 3, elapsedMs: 100, seq: 2 });
    r.tick(100, "n1", 3);
    expect(r.store.clockMs).toBe(1050);
    // The seq survives a snapshot: a restored replica also counts a duplicate once.
    const copy = new KvStateMachine();
    copy.restore(r.store.snapshot());
    const again = encodeKvCommand({ op: "tick", by: "n1", term: 3, elapsedMs: 100, seq: 2 });
    r.index += 1;
    r.store.apply(again, r.index);
    copy.apply(again, r.index);
    expect(copy.clockMs).toBe(1050);
    expect(copy.snapshot()).toEqual(r.store.snapshot());
  });

  it("a grant counts from the lease clock's reading when applied", () => {
    const r = new Replica();
    r.tick(0);
    r.tick(5000);
    expect(r.store.clockMs).toBe(5000);
    const lease = r.grant(MIN_LEASE_TTL_MS);
    expect(r.store.lease(lease)?.remainingMs).toBe(MIN_LEASE_TTL_MS);
  });

  it("snapshot/restore keeps leases, their keys and the lease clock, and replicas stay identical", () => {
    const r = new Replica();
    r.tick(0, "n1", 4);
    const one = r.grant(1000);
    const two = r.grant(3000);
    r.ok({ op: "put", key: "x", value: "1", lease: one });
    r.ok({ op: "put", key: "y", value: "1", lease: two });
    r.ok({ op: "put", key: "z", value: "1" });
    r.tick(700, "n1", 4);
    const copy = new KvStateMachine();
    copy.restore(r.store.snapshot());
    expect(copy.snapshot()).toEqual(r.store.snapshot());
    expect(copy.lease(one)).toEqual({ ttlMs: 1000, remainingMs: 300, keys: ["x"] });
    expect(copy.entry("y")?.lease).toBe(two);
    // The clock holder survives too: the same proposer's next tick counts on both.
    const tick = encodeKvCommand({ op: "tick", by: "n1", term: 4, elapsedMs: 300 });
    r.index += 1;
    r.store.apply(tick, r.index);
    copy.apply(tick, r.index);
    expect(copy.read("x")).toBeNull();
    expect(copy.lease(one)).toBeNull();
    expect(copy.lease(two)?.remainingMs).toBe(2000);
    expect(copy.snapshot()).toEqual(r.store.snapshot());
  });

  it("restores a version 2 snapshot (no leases) and refuses a key attached to a missing lease", () => {
    const v2 = packValue({ version: 2, revision: 7, entries: [["k", "v", 3, 7, 2]] });
    const store = new KvStateMachine();
    store.restore(v2);
    expect(store.entry("k")).toEqual({ value: "v", revision: 7, createRevision: 3, version: 2 });
    expect(store.leaseCount).toBe(0);
    const broken = packValue({
      version: 3,
      revision: 7,
      clockMs: 0,
      clockHolder: null,
      leases: [],
      entries: [["k", "v", 3, 7, 2, 5]],
    });
    expect(() => store.restore(broken)).toThrow(expect.objectContaining({ code: ErrorCode.Storage }));
  });

  it("limits: a lease takes MAX_LEASE_KEYS keys, and expiry stays within MAX_CHANGE_EVENTS per change", () => {
    const r = new Replica();
    r.tick(0);
    const full = r.grant(1000);
    for (let i = 0; i < MAX_LEASE_KEYS; i++) r.ok({ op: "put", key: `f${i}`, value: "v", lease: full });
    expect(r.run({ op: "put", key: "one-more", value: "v", lease: full })).toMatchObject({
      ok: false,
      code: ErrorCode.LeaseLimit,
    });
    // Rewriting a key already attached is no new key.
    r.ok({ op: "put", key: "f0", value: "w", lease: full });
    const small = r.grant(1000);
    r.ok({ op: "put", key: "s", value: "v", lease: small });
    r.tick(1000);
    // The full lease's keys fill one change; the small lease is dead but ends at the next tick.
    expect(r.changes.at(-1)?.events.length).toBe(MAX_CHANGE_EVENTS);
    expect(r.store.lease(small)).toBeNull();
    expect(r.run({ op: "keepAlive", lease: small })).toMatchObject({ ok: false, code: ErrorCode.LeaseNotFound });
    expect(r.store.read("s")).toBe("v");
    r.tick(0);
    expect(r.store.read("s")).toBeNull();
    expect(r.store.leaseCount).toBe(0);
  });

  it("rejects a grant with a TTL out of range as an invalid command", () => {
    const r = new Replica();
    for (const ttlMs of [0, MIN_LEASE_TTL_MS - 1, 1.5]) {
      expect(r.run({ op: "grant", ttlMs })).toMatchObject({ ok: false, code: ErrorCode.Rejected });
    }
  });
});
