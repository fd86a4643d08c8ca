import { RequestError } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isQuorateError, packValue, rpcSubject, unpackValue } from "../../packages/core/src/index.js";
import { learnerStorageIn, proposerStorageIn } from "../../packages/paxos/src/index.js";
import {
  msgpackStateMachine,
  ReplicatedClient,
  type ReplicatedService,
  serveReplicated,
} from "../../packages/service/src/index.js";
import { createMemoryAcceptorStorage, createMemoryStorage } from "../../packages/storage/src/index.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { type CounterCommand, type CounterQuery, countersWith } from "../harness/counters.mjs";
import { type NatsServer, startNats } from "../harness/nats.js";

const counters = () => countersWith(msgpackStateMachine);

const IDS = ["n1", "n2", "n3"];
let server: NatsServer;
let clusterSeq = 0;

beforeAll(async () => {
  server = await startNats();
});

afterAll(async () => {
  await server?.stop();
});

interface Member {
  readonly nc: NatsConnection;
  readonly service: ReplicatedService;
}

async function startMember(
  protocol: "raft" | "paxos",
  cluster: string,
  id: string,
  learners: readonly string[] = IDS,
): Promise<Member> {
  // Each member has its own connection, as a process of its own would.
  const nc = await connectNats({ ...server.connectOptions(), name: `${cluster}-${id}` });
  const common = { nats: nc, cluster, group: "counters", id, stateMachine: counters(), tickMs: 20 };
  const service =
    protocol === "raft"
      ? await serveReplicated({ ...common, protocol, members: IDS, storage: createMemoryStorage() })
      : await serveReplicated({
          ...common,
          protocol,
          acceptors: IDS,
          proposers: IDS,
          learners,
          roles: learners.includes(id) ? ["acceptor", "learner", "proposer"] : ["acceptor", "proposer"],
          storage: {
            acceptor: createMemoryAcceptorStorage(),
            proposer: proposerStorageIn(createMemoryStorage()),
            learner: learnerStorageIn(createMemoryStorage()),
          },
        });
  return { nc, service };
}

async function stopMember(member: Member): Promise<void> {
  await member.service.stop();
  await member.nc.close();
}

describe.each(["raft", "paxos"] as const)("serveReplicated and ReplicatedClient on %s", (protocol) => {
  const cluster = `replicated-${protocol}-${++clusterSeq}`;
  const members: Member[] = [];
  let nc: NatsConnection;

  beforeAll(async () => {
    for (const id of IDS) members.push(await startMember(protocol, cluster, id));
    nc = await connectNats({ ...server.connectOptions(), name: `${cluster}-clients` });
  });

  afterAll(async () => {
    for (const member of members) await stopMember(member);
    await nc?.close();
  });

  it("applies every acknowledged command once, and a query after it sees them all", async () => {
    const clients = await Promise.all(
      Array.from({ length: 4 }, () =>
        ReplicatedClient.connect<CounterCommand, number, CounterQuery, number>({
          nats: nc,
          cluster,
          group: "counters",
          timeoutMs: 20_000,
        }),
      ),
    );
    const results = await Promise.all(
      clients.flatMap((client) => Array.from({ length: 25 }, () => client.command({ add: "hits", by: 1 }))),
    );
    // Each increment returned the counter after it: 1..100, each once.
    expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (const client of clients) expect(await client.query({ get: "hits" })).toBe(100);
    await Promise.all(clients.map((c) => c.close()));
  });

  it("refuses a command and a query the state machine does not accept, definitely", async () => {
    const client = await ReplicatedClient.connect<unknown, unknown, unknown, unknown>({
      nats: nc,
      cluster,
      group: "counters",
    });
    for (const call of [() => client.command({ remove: "hits" }), () => client.query({ list: true })]) {
      const error = await call().then(
        () => null,
        (err: unknown) => err,
      );
      expect(isQuorateError(error, ErrorCode.Rejected)).toBe(true);
    }
    await client.close();
  });

  it("answers raw requests on the group's subject with the reply envelope", async () => {
    const reply = unpackValue(
      (
        await nc.request(
          rpcSubject({ cluster }, "counters"),
          packValue({ op: "query", query: packValue({ get: "hits" }) }),
        )
      ).data,
    ) as { ok: boolean; value: Uint8Array; servedBy: string };
    expect(reply.ok).toBe(true);
    expect(unpackValue(reply.value)).toBe(100);
    expect(IDS.some((id) => reply.servedBy.startsWith(id))).toBe(true);
  });

  it("every member's replies steer clients to the leading member (Paxos: the learner beside the active proposer)", async () => {
    const leading = members.find((m) => m.service.leadership() !== null);
    const target = protocol === "raft" ? leading?.service.id : leading?.service.learner?.id;
    expect(target).toBeDefined();
    for (const member of members) {
      // Paxos: requests sent there reach the active proposer without a NATS hop (colocated roles).
      if (protocol === "paxos") expect(member.service.steerTo()).toBe(target);
      const reply = unpackValue(
        (
          await nc.request(
            rpcSubject({ cluster }, "counters", member.service.node?.id),
            packValue({ op: "query", query: packValue({ get: "hits" }) }),
          )
        ).data,
      ) as { ok: boolean; servedBy: string };
      expect(reply).toEqual(expect.objectContaining({ ok: true, servedBy: target }));
    }
  });

  it("reports status and metrics, and keeps serving when the leading member stops", async () => {
    const leading = members.find((m) => m.service.leadership() !== null);
    expect(leading).toBeDefined();
    const status = leading?.service.status();
    expect(status?.protocol).toBe(protocol);
    expect(status?.roles.length).toBe(protocol === "raft" ? 1 : 3);
    expect(leading?.service.metrics().sessions).toBeGreaterThan(0);
    expect(Object.values(leading?.service.metrics().transport ?? {}).some((t) => t.sent > 0)).toBe(true);

    const client = await ReplicatedClient.connect<CounterCommand, number, CounterQuery, number>({
      nats: nc,
      cluster,
      group: "counters",
      timeoutMs: 30_000,
    });
    await stopMember(leading as Member);
    members.splice(members.indexOf(leading as Member), 1);
    expect(await client.command({ add: "hits", by: 5 })).toBe(105);
    expect(await client.query({ get: "hits" })).toBe(105);
    await client.close();
  });
});

describe("a Paxos member without a learner", () => {
  const cluster = `replicated-paxos-partial-${++clusterSeq}`;
  const learners = ["n1", "n2"];
  const members: Member[] = [];
  let nc: NatsConnection;

  beforeAll(async () => {
    for (const id of IDS) members.push(await startMember("paxos", cluster, id, learners));
    nc = await connectNats({ ...server.connectOptions(), name: `${cluster}-clients` });
  });

  afterAll(async () => {
    for (const member of members) await stopMember(member);
    await nc?.close();
  });

  it("serves no requests, and the members with a learner serve them all", async () => {
    const [, , n3] = members as [Member, Member, Member];
    expect(n3.service.node).toBeNull();
    expect(n3.service.learner).toBeNull();
    expect(n3.service.status().roles.map((r) => r.role.split(":")[0])).toEqual(["acceptor", "proposer"]);
    // Nothing listens on its own subject: no member would answer there.
    const ownSubject = rpcSubject({ cluster }, "counters", "n3");
    const noResponders = await nc.request(ownSubject, packValue({ op: "query", query: packValue({ get: "x" }) })).then(
      () => false,
      (err: unknown) => err instanceof RequestError && err.isNoResponders(),
    );
    expect(noResponders).toBe(true);

    const client = await ReplicatedClient.connect<CounterCommand, number, CounterQuery, number>({
      nats: nc,
      cluster,
      group: "counters",
      timeoutMs: 20_000,
    });
    const results = await Promise.all(Array.from({ length: 20 }, () => client.command({ add: "x", by: 1 })));
    expect(Math.max(...results)).toBe(20);
    expect(await client.query({ get: "x" })).toBe(20);
    await client.close();
  });
});
