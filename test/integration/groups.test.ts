import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { learnerStorageIn, proposerStorageIn } from "../../packages/paxos/src/index.js";
import {
  msgpackStateMachine,
  ReplicatedClient,
  type ReplicatedGroups,
  serveGroups,
} from "../../packages/service/src/index.js";
import {
  createMemoryAcceptorStorage,
  createMemoryStorage,
  type LmdbGroups,
  openLmdbGroups,
} from "../../packages/storage/src/index.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { type CounterCommand, type CounterQuery, countersWith } from "../harness/counters.mjs";
import { type NatsServer, startNats } from "../harness/nats.js";
import { eventually } from "../harness/service.js";

// Many Raft groups per member, in this process: 3 members × 6 groups on one NATS server, each
// member with one connection, one LMDB environment and one tick timer for all its groups.

const IDS = ["n1", "n2", "n3"];
const GROUPS = Array.from({ length: 6 }, (_, i) => `g${i}`);
const cluster = "groups";

interface Member {
  readonly id: string;
  readonly nc: NatsConnection;
  readonly storage: LmdbGroups;
  readonly groups: ReplicatedGroups;
  readonly dir: string;
}

let server: NatsServer;
const members: Member[] = [];
let nc: NatsConnection;

async function startMember(id: string): Promise<Member> {
  const dir = await mkdtemp(join(tmpdir(), `quorate-groups-${id}-`));
  const memberNc = await connectNats({ ...server.connectOptions(), name: `${cluster}-${id}` });
  const storage = await openLmdbGroups({ dir, cluster, member: id });
  const groups = await serveGroups({
    nats: memberNc,
    cluster,
    id,
    groups: GROUPS,
    tickMs: 20,
    placement: { intervalMs: 300 },
    group: (group) => ({
      protocol: "raft",
      members: IDS,
      storage: storage.storage(group),
      stateMachine: countersWith(msgpackStateMachine),
    }),
  });
  return { id, nc: memberNc, storage, groups, dir };
}

function ledBy(member: Member): string[] {
  return GROUPS.filter((group) => member.groups.service(group).raft?.role() === "leader");
}

beforeAll(async () => {
  server = await startNats();
  for (const id of IDS) members.push(await startMember(id));
  nc = await connectNats({ ...server.connectOptions(), name: `${cluster}-clients` });
});

afterAll(async () => {
  for (const member of members) {
    await member.groups.stop();
    await member.storage.close();
    await member.nc.close();
    await rm(member.dir, { recursive: true, force: true });
  }
  await nc?.close();
  await server?.stop();
});

describe("serveGroups: many Raft groups per member", () => {
  it("elects a leader in every group, each group with its own state, and shares flushes across groups", async () => {
    const clients = await Promise.all(
      GROUPS.map((group) =>
        ReplicatedClient.connect<CounterCommand, number, CounterQuery, number>({
          nats: nc,
          cluster,
          group,
          timeoutMs: 30_000,
        }),
      ),
    );
    // Group gi counts to 10 × (i + 1): its own counter, however the others move.
    await Promise.all(
      clients.flatMap((client, i) => Array.from({ length: 10 }, () => client.command({ add: "x", by: i + 1 }))),
    );
    for (const [i, client] of clients.entries()) expect(await client.query({ get: "x" })).toBe(10 * (i + 1));
    await Promise.all(clients.map((client) => client.close()));

    for (const member of members) {
      expect(member.groups.status().map((s) => s.group)).toEqual(GROUPS);
      for (const group of GROUPS) expect(member.groups.leaders().get(group)).toMatch(/^n[123]$/);
      // Groups wrote in the same turns: fewer flushes than writes.
      const { flushes, writes } = member.storage.stats;
      expect(flushes).toBeGreaterThan(0);
      expect(flushes).toBeLessThan(writes);
    }
  });

  it("spreads leaders: with 3 members and 6 groups, each member ends leading 2", async () => {
    const counts = () => members.map((member) => ledBy(member).length);
    await eventually(
      "each member leads 2 groups",
      async () => (counts().every((count) => count === 2) ? true : undefined),
      30_000,
      () => `leaders per member: ${counts()}`,
    );
    // Stable: a second later nothing has moved.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(counts()).toEqual([2, 2, 2]);
  });

  it("spreads them again after every group's leadership was moved to one member", async () => {
    const [n1] = members as [Member, ...Member[]];
    const movesBefore = n1.groups.placementMoves;
    for (const group of GROUPS) {
      const leader = members.find((member) => ledBy(member).includes(group));
      if (leader !== undefined && leader !== n1) await leader.groups.service(group).raft?.transferLeadership("n1");
    }
    const counts = () => members.map((member) => ledBy(member).length);
    await eventually(
      "each member leads 2 groups again",
      async () => (counts().every((count) => count === 2) ? true : undefined),
      30_000,
      () => `leaders per member: ${counts()}`,
    );
    // n1 shed what it was handed: placement moved at least the groups above its limit of 2.
    expect(n1.groups.placementMoves - movesBefore).toBeGreaterThanOrEqual(1);
  });

  it("refuses a group it does not host, with a code", () => {
    expect(() => members[0]?.groups.service("g99")).toThrow(expect.objectContaining({ code: "QUORATE_CONFIG" }));
  });
});

describe("serveGroups: many Paxos groups per member", () => {
  const paxosCluster = "groups-paxos";
  const paxosGroups = ["p0", "p1", "p2"];
  const hosts: { nc: NatsConnection; groups: ReplicatedGroups }[] = [];

  beforeAll(async () => {
    for (const id of IDS) {
      const memberNc = await connectNats({ ...server.connectOptions(), name: `${paxosCluster}-${id}` });
      const groups = await serveGroups({
        nats: memberNc,
        cluster: paxosCluster,
        id,
        groups: paxosGroups,
        tickMs: 20,
        group: () => ({
          protocol: "paxos",
          acceptors: IDS,
          proposers: IDS,
          learners: IDS,
          storage: {
            acceptor: createMemoryAcceptorStorage(),
            proposer: proposerStorageIn(createMemoryStorage()),
            learner: learnerStorageIn(createMemoryStorage()),
          },
          stateMachine: countersWith(msgpackStateMachine),
        }),
      });
      hosts.push({ nc: memberNc, groups });
    }
  });

  afterAll(async () => {
    for (const host of hosts) {
      await host.groups.stop();
      await host.nc.close();
    }
  });

  it("serves each group's commands and queries with its own state, and a leader per group", async () => {
    for (const [i, group] of paxosGroups.entries()) {
      const client = await ReplicatedClient.connect<CounterCommand, number, CounterQuery, number>({
        nats: nc,
        cluster: paxosCluster,
        group,
        timeoutMs: 30_000,
      });
      for (let n = 0; n <= i; n++) await client.command({ add: "x", by: 1 });
      expect(await client.query({ get: "x" })).toBe(i + 1);
      await client.close();
    }
    for (const group of paxosGroups) {
      const leading = hosts.filter((host) => host.groups.leaders().get(group) !== null);
      expect(leading.length, `members whose proposer leads ${group}`).toBe(1);
    }
    expect(hosts[0]?.groups.status().map((s) => s.protocol)).toEqual(["paxos", "paxos", "paxos"]);
  });
});
