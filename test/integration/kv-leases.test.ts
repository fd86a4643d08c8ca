import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../packages/core/src/index.js";
import type { KvEvent } from "../../packages/kv/src/index.js";
import type { KvClient } from "../../packages/kv/src/nats.js";
import { waitForCluster } from "../harness/members.js";
import { bothProtocols, type ProcessCluster, startProcessCluster } from "../harness/process-cluster.js";
import { eventually } from "../harness/service.js";

/**
 * Leases on both protocols, members as `quorate node` processes over a real NATS server: a key
 * attached to a lease stays while a client keeps the lease alive (across a kill -9 of the
 * member that leads, which ticks the lease clock) and vanishes, as a revisioned delete that a
 * watcher sees, once the client stops.
 */

const PROTOCOLS = bothProtocols("itlease");

const TTL_MS = 2_000;

describe.each(PROTOCOLS)("KV leases on $name over real NATS", (protocol) => {
  let cluster: ProcessCluster;
  let kv: KvClient;
  let observer: KvClient;

  beforeAll(async () => {
    cluster = await startProcessCluster(protocol, "kv-leases-test");
    [kv, observer] = (await cluster.connectClients(2)) as [KvClient, KvClient];
  });

  afterAll(async () => {
    await Promise.all([kv, observer].map((c) => c?.close()));
    await cluster?.stop();
  });

  it("a leased key stays while kept alive, across a leader kill, and vanishes once the client stops", async () => {
    const lease = await kv.lease(TTL_MS);
    const revision = await kv.put("lease/held", "mine", { lease: lease.id });
    const watch = observer.watch({ key: "lease/held" }, { fromRevision: revision });
    const events: KvEvent[] = [];
    const watching = (async () => {
      for await (const event of watch) {
        events.push(event);
        if (event.op === "delete") return;
      }
    })();
    expect(await observer.entry("lease/held")).toMatchObject({ value: "mine", lease: lease.id });

    // Three TTLs kept alive: still there.
    await new Promise((r) => setTimeout(r, 3 * TTL_MS));
    expect(await observer.get("lease/held")).toBe("mine");
    const info = await observer.timeToLive(lease.id);
    expect(info?.keys).toEqual(["lease/held"]);
    expect(info?.ttlMs).toBe(TTL_MS);

    // The member that leads (and ticks the lease clock) dies; the lease lives on.
    const statuses = await cluster.ready();
    const leader = cluster.members.find((m) => m.id === protocol.leaderOf(statuses));
    expect(leader).toBeDefined();
    await leader?.kill();
    await waitForCluster(
      cluster.nc,
      protocol.cluster,
      (s) => ![undefined, leader?.id].includes(protocol.leaderOf(s)),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 2 * TTL_MS));
    expect(await observer.get("lease/held")).toBe("mine");
    expect(lease.alive).toBe(true);
    leader?.start();
    await cluster.ready();

    // The holder stops keeping it alive: the key goes within the TTL and a few clock ticks.
    const stoppedAt = performance.now();
    lease.stop();
    expect(await lease.done).toBeNull();
    await eventually(
      "the leased key is deleted",
      async () => ((await observer.get("lease/held")) === null ? true : undefined),
      4 * TTL_MS,
    );
    expect(performance.now() - stoppedAt).toBeGreaterThanOrEqual(TTL_MS / 2);
    await watching;
    expect(events.map((e) => e.op)).toEqual(["put", "delete"]);
    expect(events[1]?.revision).toBeGreaterThan(revision);
    expect(await observer.timeToLive(lease.id)).toBeNull();
    await expect(kv.keepAliveOnce(lease.id)).rejects.toMatchObject({ code: ErrorCode.LeaseNotFound });
    await expect(kv.put("lease/late", "x", { lease: lease.id })).rejects.toMatchObject({
      code: ErrorCode.LeaseNotFound,
    });
  });

  it("revoke deletes every attached key at once; an unleased key stays", async () => {
    const lease = await kv.lease(10_000);
    await kv.put("revoke/a", "1", { lease: lease.id });
    await kv.create("revoke/b", "2", { lease: lease.id });
    await kv.put("revoke/c", "3");
    expect(await lease.revoke()).toBe(true);
    expect((await observer.keys("revoke/")).items).toEqual(["revoke/c"]);
    await expect(kv.grant(1)).rejects.toMatchObject({ code: ErrorCode.Config });
  });

  it("keepAlive(id, ttlMs) keeps a lease granted with grant() alive, from a keep-alive sent at once", async () => {
    const id = await kv.grant(TTL_MS);
    await kv.put("kept/k", "v", { lease: id });
    const kept = kv.keepAlive(id, TTL_MS);
    await new Promise((r) => setTimeout(r, 2 * TTL_MS));
    expect(await observer.get("kept/k")).toBe("v");
    expect(kept.expiresAt).toBeGreaterThan(performance.now());
    kept.stop();
    await eventually(
      "the kept key is deleted",
      async () => ((await observer.get("kept/k")) === null ? true : undefined),
      4 * TTL_MS,
    );
    await expect(kv.keepAliveOnce(id)).rejects.toMatchObject({ code: ErrorCode.LeaseNotFound });
  });
});
