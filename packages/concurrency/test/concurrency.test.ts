import { Election, type ElectionLeader, Mutex } from "@quorate/concurrency";
import { ErrorCode } from "@quorate/core";
import { describe, expect, it } from "vitest";
import { MemoryKv } from "./memory-kv.js";

const turn = () => new Promise((r) => setTimeout(r, 5));

describe("Mutex", () => {
  it("mutual exclusion with strictly increasing fencing tokens, first come first served", async () => {
    const kv = new MemoryKv();
    const mutex = new Mutex(kv);
    const leases = await Promise.all(Array.from({ length: 6 }, () => kv.grant(10_000)));
    /** The shared ledger: every hold, in the order holders entered. */
    const ledger: { lease: number; token: number }[] = [];
    let inside = 0;
    await Promise.all(
      leases.map(async (lease) => {
        for (let round = 0; round < 3; round++) {
          const held = await mutex.lock("job", { lease });
          inside += 1;
          expect(inside).toBe(1);
          ledger.push({ lease, token: held.token });
          await turn();
          inside -= 1;
          expect(await held.unlock()).toBe(true);
        }
      }),
    );
    expect(ledger).toHaveLength(18);
    for (let i = 1; i < ledger.length; i++) {
      expect((ledger[i] as { token: number }).token).toBeGreaterThan((ledger[i - 1] as { token: number }).token);
    }
    expect((await kv.list("quorate/lock/job/")).items).toEqual([]);
  });

  it("the lock dies with its lease: the next waiter takes over with a larger token", async () => {
    const kv = new MemoryKv();
    const mutex = new Mutex(kv);
    await kv.tick(0);
    const first = await kv.grant(1_000);
    const second = await kv.grant(60_000);
    const held = await mutex.lock("report", { lease: first });
    let taken: number | null = null;
    const waiting = mutex.lock("report", { lease: second }).then((lock) => {
      taken = lock.token;
      return lock;
    });
    await turn();
    expect(taken).toBeNull();
    await kv.tick(1_000); // the first holder's lease expires by the lease clock
    const next = await waiting;
    expect(next.token).toBeGreaterThan(held.token);
    // The stale holder's unlock deletes nothing of the new holder's.
    expect(await held.unlock()).toBe(false);
    expect((await kv.list("quorate/lock/report/")).items.map((e) => e.key)).toEqual([next.key]);
  });

  it("each waiter watches only its predecessor: a waiter leaving the middle hands its place on", async () => {
    const kv = new MemoryKv();
    const mutex = new Mutex(kv);
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => kv.grant(60_000)));
    const held = await mutex.lock("q", { lease: a as number });
    const abort = new AbortController();
    const bWaits = mutex.lock("q", { lease: b as number, signal: abort.signal });
    const cWaits = mutex.lock("q", { lease: c as number });
    await turn();
    abort.abort(new Error("gave up"));
    await expect(bWaits).rejects.toThrow("gave up");
    // b left the queue: c now waits for a, and gets the lock when a releases.
    expect((await kv.list("quorate/lock/q/")).items).toHaveLength(2);
    await held.unlock();
    const cHeld = await cWaits;
    expect(cHeld.token).toBeGreaterThan(held.token);
    // b watched a; c watched b, then (b gone) a: never the whole queue, never its own key.
    expect([...kv.watched].sort()).toEqual([held.key, held.key, `quorate/lock/q/${b}`].sort());
  });

  it("fails with QUORATE_LEASE_NOT_FOUND for an ended lease and QUORATE_CONFIG for a bad name or a lease already queued", async () => {
    const kv = new MemoryKv();
    const mutex = new Mutex(kv);
    const lease = await kv.grant(60_000);
    await mutex.lock("x", { lease });
    await expect(mutex.lock("x", { lease })).rejects.toMatchObject({ code: ErrorCode.Config });
    await expect(mutex.lock("a/b", { lease })).rejects.toMatchObject({ code: ErrorCode.Config });
    await kv.revoke(lease);
    await expect(mutex.lock("y", { lease })).rejects.toMatchObject({ code: ErrorCode.LeaseNotFound });
  });
});

describe("Election", () => {
  it("one leader at a time; proclaim, resign, and observe sees every change in order", async () => {
    const kv = new MemoryKv();
    const [one, two] = await Promise.all([kv.grant(60_000), kv.grant(60_000)]);
    const e1 = new Election(kv, "primary");
    const e2 = new Election(kv, "primary");
    const observer = new Election(kv, "primary");
    expect(await observer.leader()).toBeNull();
    const seen: (string | null)[] = [];
    const observing = (async () => {
      for await (const leader of observer.observe()) {
        seen.push(leader === null ? null : String(leader.value));
        if (seen.length === 5) return;
      }
    })();
    await turn();
    await e1.campaign("n1", { lease: one as number });
    let e2Leads = false;
    const e2Campaign = e2.campaign("n2", { lease: two as number }).then(() => {
      e2Leads = true;
    });
    await turn();
    expect(e2Leads).toBe(false);
    expect((await observer.leader())?.value).toBe("n1");
    await e1.proclaim("n1-v2");
    expect((await observer.leader()) as ElectionLeader).toMatchObject({ value: "n1-v2" });
    expect(await e1.resign()).toBe(true);
    await e2Campaign;
    expect(e2Leads).toBe(true);
    await e2.resign();
    await observing;
    expect(seen).toEqual([null, "n1", "n1-v2", "n2", null]);
    await expect(e1.proclaim("late")).rejects.toMatchObject({ code: ErrorCode.Config });
  });

  it("a leader whose lease ends loses leadership: proclaim fails, the next candidate leads", async () => {
    const kv = new MemoryKv();
    await kv.tick(0);
    const short = await kv.grant(1_000);
    const long = await kv.grant(60_000);
    const e1 = new Election(kv, "svc");
    const e2 = new Election(kv, "svc");
    await e1.campaign("a", { lease: short });
    const second = e2.campaign("b", { lease: long });
    await kv.tick(1_000);
    await second;
    expect((await e2.leader())?.value).toBe("b");
    await expect(e1.proclaim("a2")).rejects.toMatchObject({ code: ErrorCode.LeaseNotFound });
  });

  it("observe's return() stops it while it waits for a change", async () => {
    const kv = new MemoryKv();
    const changes = new Election(kv, "idle").observe();
    expect((await changes.next()).value).toBeNull();
    const pending = changes.next();
    await turn();
    await changes.return();
    expect(await pending).toEqual({ done: true, value: undefined });
  });
});
