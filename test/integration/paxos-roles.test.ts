import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemberStatus } from "../../packages/cli/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { cliProcess, type MemberProcess, memberSet, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";
import { emptyLedger, writeLoad } from "../harness/write-load.js";

/**
 * Multi-Paxos over a real NATS server with every role in its own process (`quorate paxos
 * <role>`): 3 acceptors, 2 proposers, 2 learners (each serving KV). Kill -9 of the active
 * proposer, an acceptor down and back on its data directory; then `quorate node --protocol
 * paxos` ×3 with all roles per process. What matters: every acknowledged write is readable,
 * and the learners end with identical state.
 */

const ACCEPTORS = ["a1", "a2", "a3"];
const PROPOSERS = ["p1", "p2"];
const LEARNERS = ["l1", "l2"];

/** One `quorate paxos <role>` process, restartable on its data directory. */
function roleProcess(
  root: string,
  nats: NatsServer,
  cluster: string,
  role: "acceptor" | "proposer" | "learner",
  id: string,
): MemberProcess {
  const dataDir = join(root, id);
  return cliProcess(id, dataDir, [
    "paxos",
    role,
    ...["--cluster", cluster, "--id", id, "--data", dataDir, "--nats", nats.url],
    ...["--acceptors", ACCEPTORS.join(","), "--proposers", PROPOSERS.join(","), "--learners", LEARNERS.join(",")],
    ...["--user", nats.user, "--password", nats.pass, "--checkpoint-interval", "200", "--log-level", "info"],
  ]);
}

const activeProposer = (s: MemberStatus[]) => s.find((m) => m.role === "proposer:active");
const learnersAgree = (s: MemberStatus[], count: number) => {
  const learners = s.filter((m) => m.role === "learner");
  return (
    learners.length === count &&
    new Set(learners.map((m) => m.appliedIndex)).size === 1 &&
    new Set(learners.map((m) => m.stateDigest)).size === 1
  );
};

describe("Multi-Paxos over real NATS, one process per role", () => {
  const CLUSTER = "itpaxos";
  let nats: NatsServer;
  let nc: NatsConnection;
  let root: string;
  let processes: Map<string, MemberProcess>;
  let clients: KvClient[];
  const ledger = emptyLedger();
  const status = (predicate: (s: MemberStatus[]) => boolean, timeoutMs = 30_000) =>
    waitForCluster(nc, CLUSTER, predicate, timeoutMs);

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "paxos-roles-test" });
    root = mkdtempSync(join(tmpdir(), "quorate-paxos-roles-"));
    processes = new Map();
    for (const id of ACCEPTORS) processes.set(id, roleProcess(root, nats, CLUSTER, "acceptor", id));
    for (const id of LEARNERS) processes.set(id, roleProcess(root, nats, CLUSTER, "learner", id));
    for (const id of PROPOSERS) processes.set(id, roleProcess(root, nats, CLUSTER, "proposer", id));
    for (const p of processes.values()) p.start();
    await status((s) => s.length === 7 && activeProposer(s) !== undefined);
    clients = await Promise.all(
      Array.from({ length: 8 }, () =>
        KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 }),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all((clients ?? []).map((c) => c.close()));
    await Promise.all([...(processes?.values() ?? [])].map((p) => p.kill()));
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
    await nc?.close();
    await nats?.stop();
  });

  it("serves put, get, delete and cas through the learners", async () => {
    const [client] = clients as [KvClient];
    await client.put("greeting", "hello");
    expect(await client.get("greeting")).toBe("hello");
    expect(await client.cas("greeting", "hello", "bye")).toBe(true);
    expect(await client.cas("greeting", "hello", "again")).toBe(false);
    expect(await client.delete("greeting")).toBe(true);
    expect(await client.get("greeting")).toBeNull();
    const s = await status((x) => x.length === 7);
    expect(s.every((m) => m.protocol === "paxos" && Array.isArray(m.ballot))).toBe(true);
  });

  it("kill -9 of the active proposer mid-load: the other takes over and no acknowledged write is lost", async () => {
    const killed: string[] = [];
    await writeLoad(clients, "failover", 900, ledger, async () => {
      const active = activeProposer(await status((s) => activeProposer(s) !== undefined));
      const member = (active?.id ?? "").replace(/-proposer$/, "");
      killed.push(member);
      await processes.get(member)?.kill();
    });
    expect(killed).toHaveLength(1);
    const after = await status((s) => {
      const active = activeProposer(s);
      return active !== undefined && active.id !== `${killed[0]}-proposer`;
    });
    expect(activeProposer(after)?.id).not.toBe(`${killed[0]}-proposer`);
    expect(ledger.acknowledged.size).toBeGreaterThan(800);
    for (const [key, value] of ledger.acknowledged) expect(await clients[0]?.get(key)).toBe(value);
    // The killed proposer comes back passive and stays so while the other is alive.
    processes.get(killed[0] as string)?.start();
    const back = await status((s) => s.length === 7);
    expect(back.find((m) => m.id === `${killed[0]}-proposer`)?.role).toBe("proposer:passive");
  });

  it("progress continues with one acceptor down; restarted on its data directory it rejoins", async () => {
    const down = processes.get("a3") as MemberProcess;
    await down.kill();
    await writeLoad(clients, "oneacceptordown", 200, ledger);
    const whileDown = await status((s) => s.length === 6);
    expect(whileDown.find((m) => m.id === "a3-acceptor")).toBeUndefined();
    down.start();
    const rejoined = await status((s) => s.some((m) => m.id === "a3-acceptor"));
    const before = rejoined.find((m) => m.id === "a3-acceptor")?.lastLogIndex ?? 0;
    // With a1 down too, every choice needs a3's vote: it must be voting again.
    await processes.get("a1")?.kill();
    await writeLoad(clients, "rejoined", 100, ledger);
    const voting = await status((s) => (s.find((m) => m.id === "a3-acceptor")?.lastLogIndex ?? 0) > before);
    expect(voting.find((m) => m.id === "a3-acceptor")?.lastLogIndex).toBeGreaterThan(before);
    processes.get("a1")?.start();
    for (const [key, value] of ledger.acknowledged) expect(await clients[1]?.get(key)).toBe(value);
  });

  it("learners end with identical state", async () => {
    const settled = await status((s) => s.length === 7 && learnersAgree(s, 2), 60_000);
    const learners = settled.filter((m) => m.role === "learner");
    expect(new Set(learners.map((m) => m.stateDigest)).size).toBe(1);
    expect(learners[0]?.appliedIndex).toBeGreaterThan(1200);
    // Truncation: acceptors dropped the prefix learners checkpointed.
    expect(settled.filter((m) => m.role === "acceptor").some((m) => m.appliedIndex > 0)).toBe(true);
  });
});

describe("Multi-Paxos with all roles per process: quorate node --protocol paxos ×3", () => {
  const CLUSTER = "itpaxosnode";
  let nats: NatsServer;
  let nc: NatsConnection;
  let members: MemberProcess[];
  let cleanup: () => Promise<void>;
  let clients: KvClient[];

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "paxos-node-test" });
    ({ members, cleanup } = memberSet({
      cluster: CLUSTER,
      ids: ["n1", "n2", "n3"],
      natsUrl: nats.url,
      user: nats.user,
      pass: nats.pass,
      protocolArgs: ["--protocol", "paxos"],
    }));
    for (const m of members) m.start();
    await waitForCluster(nc, CLUSTER, (s) => s.length === 9 && activeProposer(s) !== undefined);
    clients = await Promise.all(
      Array.from({ length: 4 }, () => KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER })),
    );
  });

  afterAll(async () => {
    await Promise.all((clients ?? []).map((c) => c.close()));
    await cleanup?.();
    await nc?.close();
    await nats?.stop();
  });

  it("replicates writes through every member and the learners agree, also after a member is killed", async () => {
    const ledger = emptyLedger();
    await writeLoad(clients, "node", 300, ledger, async () => {
      const s = await waitForCluster(nc, CLUSTER, (x) => activeProposer(x) !== undefined);
      const leader = activeProposer(s)?.id.replace(/-proposer$/, "");
      await members.find((m) => m.id === leader)?.kill();
    });
    expect(ledger.acknowledged.size).toBeGreaterThan(250);
    for (const [key, value] of ledger.acknowledged) expect(await clients[0]?.get(key)).toBe(value);
    const settled = await waitForCluster(nc, CLUSTER, (s) => learnersAgree(s, 2), 60_000);
    expect(settled.filter((m) => m.role === "learner")).toHaveLength(2);
  });
});
