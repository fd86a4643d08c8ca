import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Election, Mutex } from "../../packages/concurrency/src/index.js";
import type { KvClient } from "../../packages/kv/src/nats.js";
import { runQuorate } from "../harness/members.js";
import { bothProtocols, type ProcessCluster, startProcessCluster } from "../harness/process-cluster.js";

/**
 * @quorate/concurrency over real NATS on both protocols: clients contend for one Mutex and a
 * shared ledger (a resource that checks fencing tokens) proves that no two holds overlapped and
 * that every token was larger than the last; a holder that stops keeping its lease alive (a
 * crash) loses the lock to the next waiter, and its late write is refused by token.
 */

const PROTOCOLS = bothProtocols("itlock");

/** A resource protected by fencing tokens: it refuses a write with a token below the highest it accepted. */
class FencedLedger {
  highest = 0;
  readonly holds: { token: number; who: number; enteredAt: number; leftAt: number }[] = [];
  readonly refused: number[] = [];

  write(token: number): boolean {
    if (token < this.highest) {
      this.refused.push(token);
      return false;
    }
    this.highest = token;
    return true;
  }
}

describe.each(PROTOCOLS)("Mutex and Election on $name over real NATS", (protocol) => {
  let cluster: ProcessCluster;
  let clients: KvClient[];

  beforeAll(async () => {
    cluster = await startProcessCluster(protocol, "concurrency-test");
    clients = await cluster.connectClients(4);
  });

  afterAll(async () => {
    await Promise.all((clients ?? []).map((c) => c.close()));
    await cluster?.stop();
  });

  it("contending clients: holds never overlap and fencing tokens strictly increase", async () => {
    const ledger = new FencedLedger();
    await Promise.all(
      clients.map(async (kv, who) => {
        const lease = await kv.lease(5_000);
        const mutex = new Mutex(kv);
        for (let round = 0; round < 3; round++) {
          const held = await mutex.lock("ledger", { lease });
          const enteredAt = performance.now();
          expect(ledger.write(held.token)).toBe(true);
          await new Promise((r) => setTimeout(r, 20));
          ledger.holds.push({ token: held.token, who, enteredAt, leftAt: performance.now() });
          expect(await held.unlock()).toBe(true);
        }
        await lease.revoke();
      }),
    );
    expect(ledger.holds).toHaveLength(12);
    const byToken = [...ledger.holds].sort((a, b) => a.token - b.token);
    for (let i = 1; i < byToken.length; i++) {
      const [before, after] = [byToken[i - 1], byToken[i]] as const;
      expect(after?.token).toBeGreaterThan(before?.token as number);
      // In token order, each hold began after the one before it ended.
      expect(after?.enteredAt).toBeGreaterThanOrEqual(before?.leftAt as number);
    }
    expect(ledger.refused).toEqual([]);
  });

  it("a holder that stops keeping its lease alive loses the lock; its late write is refused by token", async () => {
    const [crashed, waiter] = clients as [KvClient, KvClient];
    const ledger = new FencedLedger();
    const crashedLease = await crashed.lease(1_500);
    const stale = await new Mutex(crashed).lock("crash", { lease: crashedLease });
    expect(ledger.write(stale.token)).toBe(true);
    const waiterLease = await waiter.lease(10_000);
    const next = new Mutex(waiter).lock("crash", { lease: waiterLease });
    // The holder "crashes": no unlock, no more keep-alives.
    crashedLease.stop();
    const held = await next;
    expect(held.token).toBeGreaterThan(stale.token);
    expect(ledger.write(held.token)).toBe(true);
    // The crashed holder wakes up and writes with its old token: refused.
    expect(ledger.write(stale.token)).toBe(false);
    expect(await stale.unlock()).toBe(false);
    expect(await held.unlock()).toBe(true);
    await waiterLease.revoke();
  });

  it("election: one leader at a time, observe sees each change, a lost lease hands over", async () => {
    const [a, b, watcher] = clients as [KvClient, KvClient, KvClient];
    const seen: (string | null)[] = [];
    const observing = (async () => {
      for await (const leader of new Election(watcher, "primary").observe()) {
        seen.push(leader === null ? null : String(leader.value));
        if (seen.length === 5) return;
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    const leaseA = await a.lease(1_500);
    const leaseB = await b.lease(10_000);
    const ea = new Election(a, "primary");
    const eb = new Election(b, "primary");
    await ea.campaign("a", { lease: leaseA });
    const bLeads = eb.campaign("b", { lease: leaseB });
    await ea.proclaim("a2");
    expect((await eb.leader())?.value).toBe("a2");
    leaseA.stop(); // a crashes: its leadership ends with its lease
    await bLeads;
    expect((await ea.leader())?.value).toBe("b");
    await eb.resign();
    await observing;
    expect(seen).toEqual([null, "a", "a2", "b", null]);
    await leaseB.revoke();
  });

  it("quorate lock runs the command holding the lock with its token, exits with its code, releases on exit and signal", async () => {
    const { nats } = cluster;
    const auth = ["--cluster", protocol.cluster, "--nats", nats.url, "--user", nats.user, "--password", nats.pass];
    const node = process.execPath;
    const printed = await runQuorate([
      "lock",
      "cli",
      ...auth,
      "--",
      node,
      "-e",
      "console.log(process.env.QUORATE_LOCK_TOKEN); process.exit(3)",
    ]);
    expect(printed.code, printed.stderr).toBe(3);
    expect(Number(printed.stdout.trim())).toBeGreaterThan(0);

    // Two at once: the command takes a marker file exclusively; a second holder inside would fail to.
    const dir = mkdtempSync(join(tmpdir(), "quorate-lock-"));
    try {
      const exclusive = `const fs = require("node:fs"); const f = ${JSON.stringify(join(dir, "held"))}; fs.closeSync(fs.openSync(f, "wx")); setTimeout(() => fs.rmSync(f), 300);`;
      const runs = await Promise.all(
        [1, 2, 3].map(() => runQuorate(["lock", "cli", ...auth, "--", node, "-e", exclusive])),
      );
      expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // Ctrl-C while the command runs: the command gets it, the lock is released at once.
    const interrupted = await runQuorate(
      ["lock", "cli", ...auth, "--", node, "-e", "console.log('started'); setTimeout(() => {}, 60000)"],
      "",
      (out) => out.includes("started"),
    );
    expect(interrupted.code).toBe(128 + 2);
    const started = performance.now();
    expect((await runQuorate(["lock", "cli", ...auth, "--", node, "-e", ""])).code).toBe(0);
    // Released, not left to expire with its lease (10 s by default).
    expect(performance.now() - started).toBeLessThan(8_000);
    const wrong = await runQuorate(["lock", "cli", ...auth]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("QUORATE_CONFIG");
  });

  it("quorate elect leads and resigns on Ctrl-C; --observe prints each change", async () => {
    const { nats } = cluster;
    const auth = ["--cluster", protocol.cluster, "--nats", nats.url, "--user", nats.user, "--password", nats.pass];
    const observed = runQuorate(["elect", "cli", "--observe", ...auth], "", (out) => out.split("\n").length > 3);
    await new Promise((r) => setTimeout(r, 1_500));
    const led = await runQuorate(["elect", "cli", "n7", ...auth], "", (out) => out.includes("leading"));
    expect(led.code, led.stderr).toBe(0);
    expect(led.stdout).toBe("leading cli as n7\n");
    const changes = await observed;
    expect(changes.stdout).toBe("no leader\nn7\nno leader\n");
  });
});
