import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { type MemberProcess, memberSet, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";
import { emptyLedger, writeLoad } from "../harness/write-load.js";

/**
 * Raft members as separate `quorate node` processes over a real NATS server: concurrent
 * writes, kill -9 of the leader, a restarted member catching up, a NATS restart under load.
 * The outcome that matters: every acknowledged write is readable, and replicas agree.
 */

const CLUSTER = "itraft";
const IDS = ["n1", "n2", "n3"];

describe("Raft KV over real NATS, members as processes", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let members: MemberProcess[];
  let cleanup: () => Promise<void>;
  let clients: KvClient[];
  const ledger = emptyLedger();

  const leaderOf = async () => {
    const status = await waitForCluster(nc, CLUSTER, (s) => s.some((m) => m.role === "leader"));
    const leader = status.find((m) => m.role === "leader");
    return members.find((m) => m.id === leader?.id) as MemberProcess;
  };

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "raft-kv-test" });
    ({ members, cleanup } = memberSet({
      cluster: CLUSTER,
      ids: IDS,
      natsUrl: nats.url,
      user: nats.user,
      pass: nats.pass,
    }));
    for (const m of members) m.start();
    await waitForCluster(nc, CLUSTER, (s) => s.length === 3 && s.some((m) => m.role === "leader"));
    clients = await Promise.all(
      Array.from({ length: 8 }, () =>
        KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 }),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all((clients ?? []).map((c) => c.close()));
    await cleanup?.();
    await nc?.close();
    await nats?.stop();
  });

  it("serves put, get, delete and cas through any member", async () => {
    const [client] = clients as [KvClient];
    await client.put("greeting", "hello");
    expect(await client.get("greeting")).toBe("hello");
    expect(await client.cas("greeting", "hello", "bye")).toBe(true);
    expect(await client.cas("greeting", "hello", "again")).toBe(false);
    expect(await client.cas("fresh", null, "made")).toBe(true);
    await client.delete("greeting");
    expect(await client.get("greeting")).toBeNull();
    await client.put("bytes", new Uint8Array([1, 2, 3]));
    expect(await client.get("bytes")).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("1,000 writes from 8 clients survive kill -9 of the leader mid-load", async () => {
    const killed: string[] = [];
    await writeLoad(clients, "load", 1000, ledger, async () => {
      const leader = await leaderOf();
      killed.push(leader.id);
      await leader.kill();
    });
    expect(killed).toHaveLength(1);
    // A new leader was elected among the survivors and served the rest of the load.
    const status = await waitForCluster(nc, CLUSTER, (s) => s.length === 2 && s.some((m) => m.role === "leader"));
    expect(status.find((m) => m.role === "leader")?.id).not.toBe(killed[0]);
    expect(ledger.acknowledged.size).toBeGreaterThan(900);
    for (const [key, value] of ledger.acknowledged) expect(await clients[0]?.get(key)).toBe(value);

    // The killed member restarts on its data directory and catches up.
    const restarted = members.find((m) => m.id === killed[0]) as MemberProcess;
    restarted.start();
    const caughtUp = await waitForCluster(
      nc,
      CLUSTER,
      (s) =>
        s.length === 3 &&
        s.every(
          (m) =>
            m.appliedIndex === s[0]?.appliedIndex &&
            m.appliedIndex >= (s.find((x) => x.role === "leader")?.commitIndex ?? 1),
        ),
      60_000,
    );
    const digests = new Set(caughtUp.map((m) => m.stateDigest));
    expect(digests.size, JSON.stringify(caughtUp)).toBe(1);
  });

  it("a NATS server restart mid-load loses no acknowledged write", async () => {
    const before = ledger.acknowledged.size;
    await writeLoad(clients, "natsrestart", 300, ledger, async () => {
      await nats.restart();
    });
    expect(ledger.acknowledged.size).toBeGreaterThan(before);
    await waitForCluster(nc, CLUSTER, (s) => s.length === 3 && s.some((m) => m.role === "leader"), 60_000);
    for (const [key, value] of ledger.acknowledged) expect(await clients[1]?.get(key)).toBe(value);
    const settled = await waitForCluster(
      nc,
      CLUSTER,
      (s) => s.length === 3 && new Set(s.map((m) => m.appliedIndex)).size === 1,
      60_000,
    );
    expect(new Set(settled.map((m) => m.stateDigest)).size).toBe(1);
  });

  it("a member shuts down cleanly on SIGTERM", async () => {
    const follower = members.find((m) => m.running && m.id !== "n1") ?? (members[0] as MemberProcess);
    expect(await follower.stop()).toBe(0);
    follower.start();
    await waitForCluster(nc, CLUSTER, (s) => s.length === 3);
  });
});
