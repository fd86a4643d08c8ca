import { afterAll, beforeAll, expect, it } from "vitest";
import { KvClient, kvShardGroups, ShardedKvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { memberSet, quorateCommand, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";

// `quorate node --groups 3`: three member processes, three KV groups each, one row per group
// in `quorate status`, and a KvClient per group with state of its own.

const cluster = "cli-groups";
const IDS = ["n1", "n2", "n3"];
const GROUPS = ["kv-0", "kv-1", "kv-2"];
let server: NatsServer;
let nc: NatsConnection;
let set: ReturnType<typeof memberSet>;

beforeAll(async () => {
  server = await startNats();
  set = memberSet({
    cluster,
    ids: IDS,
    natsUrl: server.url,
    user: server.user,
    pass: server.pass,
    protocolArgs: ["--protocol", "raft", "--groups", "3", "--tick-ms", "20"],
  });
  for (const member of set.members) member.start();
  nc = await connectNats({ ...server.connectOptions(), name: `${cluster}-test` });
});

afterAll(async () => {
  await nc?.close();
  await set?.cleanup();
  await server?.stop();
});

it("hosts every group on every member, each electing a leader, each with its own KV state", async () => {
  const statuses = await waitForCluster(
    nc,
    cluster,
    (rows) =>
      rows.length === IDS.length * GROUPS.length &&
      GROUPS.every((group) => rows.filter((r) => r.group === group && r.role === "leader").length === 1),
  );
  expect([...new Set(statuses.map((s) => s.group))].sort()).toEqual(GROUPS);

  for (const [i, group] of GROUPS.entries()) {
    const kv = await KvClient.connect({ nats: nc, cluster, group, timeoutMs: 20_000 });
    await kv.put("owner", group);
    await kv.put(`only-in-${i}`, "yes");
    await kv.close();
  }
  for (const [i, group] of GROUPS.entries()) {
    const kv = await KvClient.connect({ nats: nc, cluster, group, timeoutMs: 20_000 });
    expect(await kv.get("owner")).toBe(group);
    for (const j of [0, 1, 2]) expect(await kv.get(`only-in-${j}`)).toBe(i === j ? "yes" : null);
    await kv.close();
  }

  // A watch follows its own group's changes only.
  const [kv0, kv1] = await Promise.all(
    ["kv-0", "kv-1"].map((group) => KvClient.connect({ nats: nc, cluster, group, timeoutMs: 20_000 })),
  );
  const watch = kv1?.watch({ key: "watched" });
  const first = watch?.next();
  await kv0?.put("watched", "in kv-0");
  await kv1?.put("watched", "in kv-1");
  expect((await first)?.value).toMatchObject({ op: "put", key: "watched", value: "in kv-1" });
  await watch?.return();
  await Promise.all([kv0?.close(), kv1?.close()]);

  const table = await quorateCommand(cluster, server)("status");
  const [header, ...rows] = table.trim().split("\n");
  expect(header?.split(/\s+/).slice(0, 3)).toEqual(["GROUP", "ID", "ROLE"]);
  expect(rows).toHaveLength(IDS.length * GROUPS.length);
  for (const group of GROUPS) expect(rows.filter((row) => row.startsWith(`${group} `))).toHaveLength(IDS.length);
});

it("a ShardedKvClient spreads keys over the members' groups and merges a range across them", async () => {
  const kv = await ShardedKvClient.connect({ nats: nc, cluster, groups: kvShardGroups(3), timeoutMs: 20_000 });
  try {
    const keys = Array.from({ length: 24 }, (_, i) => `shard/${String(i).padStart(2, "0")}`);
    await Promise.all(keys.map((key) => kv.put(key, key)));
    expect((await kv.list("shard/")).items.map((e) => [e.key, e.value])).toEqual(keys.map((k) => [k, k]));
    for (const group of GROUPS) {
      const held = (await kv.client(group).keys("shard/")).items;
      expect(held).toEqual(keys.filter((key) => kv.groupOf(key) === group));
      expect(held.length).toBeGreaterThan(0);
    }
  } finally {
    await kv.close();
  }
});
