import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isQuorateError } from "../../packages/core/src/index.js";
import { KvStateMachine } from "../../packages/kv/src/index.js";
import {
  createKvService,
  KvClient,
  kvShardGroups,
  ShardedKvClient,
  type ShardedKvEvent,
} from "../../packages/kv/src/nats.js";
import { serveReplicated } from "../../packages/service/src/index.js";
import { createMemoryStorage } from "../../packages/storage/src/index.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { type NatsServer, startNats } from "../harness/nats.js";

const IDS = ["n1", "n2", "n3"];
const GROUPS = kvShardGroups(3);
let server: NatsServer;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startNats();
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  await server?.stop();
});

/** One member process: one connection, one Raft member and KV service per group. */
async function startMember(cluster: string, id: string): Promise<void> {
  const nc = await connectNats({ ...server.connectOptions(), name: `${cluster}-${id}` });
  cleanups.push(() => nc.close());
  for (const group of GROUPS) {
    const store = new KvStateMachine();
    const replicated = await serveReplicated({
      protocol: "raft",
      nats: nc,
      cluster,
      group,
      id,
      members: IDS,
      storage: createMemoryStorage(),
      stateMachine: store,
      serve: false,
      tickMs: 20,
    });
    cleanups.push(() => replicated.stop());
    const node = replicated.raft;
    if (node === null) throw new Error("a Raft service without a Raft node");
    const kv = createKvService({ nc, cluster, group, node, store, leadership: replicated.leadership });
    cleanups.push(() => kv.close());
  }
}

async function connection(): Promise<NatsConnection> {
  const nc = await connectNats(server.connectOptions());
  cleanups.push(() => nc.close());
  return nc;
}

describe("a KV sharded over three Raft groups on one connection per member", () => {
  const cluster = "sharded1";
  let kv: ShardedKvClient;

  beforeAll(async () => {
    for (const id of IDS) await startMember(cluster, id);
    kv = await ShardedKvClient.connect({ nats: await connection(), cluster, groups: GROUPS, timeoutMs: 20_000 });
    cleanups.push(() => kv.close());
  }, 60_000);

  it("puts each key in its group only, and reads it back through the sharded client", async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `user/${i}`);
    await Promise.all(keys.map((key) => kv.put(key, `v-${key}`)));
    for (const key of keys) expect(await kv.get(key)).toBe(`v-${key}`);
    // Every group got some keys, and each key is in its own group and no other.
    const used = new Set(keys.map((key) => kv.groupOf(key)));
    expect(used).toEqual(new Set(GROUPS));
    const nc = await connection();
    for (const group of GROUPS) {
      const single = await KvClient.connect({ nats: nc, cluster, group, timeoutMs: 20_000 });
      const held = (await single.keys("user/")).items;
      await single.close();
      expect(held).toEqual(keys.filter((key) => kv.groupOf(key) === group).sort());
    }
  });

  it("pages a range across groups in key order with a continuation", async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `page/${String(i).padStart(2, "0")}`);
    for (const key of keys) await kv.put(key, key);
    const seen: string[] = [];
    let fromKey: string | undefined;
    for (;;) {
      const page = await kv.list("page/", { limit: 7, ...(fromKey === undefined ? {} : { fromKey }) });
      expect(page.items.length).toBeLessThanOrEqual(7);
      seen.push(...page.items.map((item) => item.key));
      for (const item of page.items) expect(item.value).toBe(item.key);
      if (page.next === null) break;
      fromKey = page.next;
    }
    expect(seen).toEqual(keys);
    expect((await kv.keys("page/", { limit: 3 })).items).toEqual(keys.slice(0, 3));
  });

  it("refuses a transaction over two groups, and runs one within a group", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `t/${i}`);
    const a = keys[0] as string;
    const sameGroup = keys.find((key) => key !== a && kv.groupOf(key) === kv.groupOf(a)) as string;
    const otherGroup = keys.find((key) => kv.groupOf(key) !== kv.groupOf(a)) as string;
    const error = await kv
      .txn({ compare: [{ key: a, absent: true }], success: [{ op: "put", key: otherGroup, value: "x" }] })
      .catch((err: unknown) => err);
    expect(isQuorateError(error) && error.code).toBe(ErrorCode.Config);
    const result = await kv.txn({
      compare: [{ key: a, absent: true }],
      success: [
        { op: "put", key: a, value: "1" },
        { op: "put", key: sameGroup, value: "2" },
      ],
    });
    expect(result.succeeded).toBe(true);
    expect([await kv.get(a), await kv.get(sameGroup), await kv.get(otherGroup)]).toEqual(["1", "2", null]);
  });

  it("watches a prefix in every group, each change once, tagged with its group", async () => {
    // Each group's watch starts after a write of its own, so no put below can come before it.
    const fromRevisions: Record<string, number> = {};
    for (const group of GROUPS) fromRevisions[group] = (await kv.client(group).put("w-start", group)) + 1;
    const watch = kv.watch({ prefix: "w/" }, { fromRevisions });
    const keys = Array.from({ length: 12 }, (_, i) => `w/${i}`);
    const revisions = new Map<string, number>();
    for (const key of keys) revisions.set(key, await kv.put(key, key));
    const events: ShardedKvEvent[] = [];
    for await (const event of watch) {
      events.push(event);
      if (events.length === keys.length) break;
    }
    expect(events.map((e) => e.key).sort()).toEqual([...keys].sort());
    for (const event of events) {
      expect(event.group).toBe(kv.groupOf(event.key));
      expect(event.revision).toBe(revisions.get(event.key));
    }
    // Within a group, revision order.
    for (const group of GROUPS) {
      const mine = events.filter((e) => e.group === group).map((e) => e.revision);
      expect(mine).toEqual([...mine].sort((x, y) => x - y));
    }
  });
});
