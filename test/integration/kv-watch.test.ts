import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ConsensusNode,
  ErrorCode,
  packValue,
  QuorateError,
  rpcSubject,
  unpackValue,
} from "../../packages/core/src/index.js";
import { type KvEvent, KvStateMachine } from "../../packages/kv/src/index.js";
import {
  createKvService,
  KV_QUEUE_GROUP,
  KV_SERVICE,
  KvClient,
  type KvKeyEntry,
  MAX_RANGE_LIMIT,
  WATCH_INTEREST_MS,
  watchSubject,
} from "../../packages/kv/src/nats.js";
import { SessionStateMachine } from "../../packages/service/src/index.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { runQuorate as quorate } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";
import { bothProtocols, type ProcessCluster, startProcessCluster } from "../harness/process-cluster.js";
import { eventually } from "../harness/service.js";
import { emptyLedger, writeLoad } from "../harness/write-load.js";

/**
 * Revisions, ranges, transactions and watch on both protocols, members as `quorate node`
 * processes over a real NATS server. What matters for watch: a watcher that lives through
 * kill -9 of every member in turn (the leader among them, and the member it follows) and a NATS
 * restart sees every committed change exactly once, in revision order.
 */

const PROTOCOLS = bothProtocols("itwatch");

/** Every entry under `prefix`, page by page. */
async function listAll(kv: KvClient, prefix: string, limit: number): Promise<KvKeyEntry[]> {
  const all: KvKeyEntry[] = [];
  let fromKey: string | undefined;
  for (;;) {
    const page = await kv.list(prefix, { limit, ...(fromKey === undefined ? {} : { fromKey }) });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    all.push(...page.items);
    if (page.next === null) return all;
    fromKey = page.next;
  }
}

describe.each(PROTOCOLS)("KV revisions and watch on $name over real NATS", (protocol) => {
  let cluster: ProcessCluster;
  let clients: KvClient[];

  beforeAll(async () => {
    cluster = await startProcessCluster(protocol, "kv-watch-test");
    clients = await cluster.connectClients(4);
  });

  afterAll(async () => {
    await Promise.all((clients ?? []).map((c) => c.close()));
    await cluster?.stop();
  });

  it("put, entry, create, update, compare-and-delete and txn follow revisions", async () => {
    const kv = clients[0] as KvClient;
    const r1 = await kv.put("acct/a", "1");
    expect(await kv.entry("acct/a")).toEqual({ value: "1", revision: r1, createRevision: r1, version: 1 });
    expect(await kv.create("acct/a", "other")).toBeNull();
    const r2 = (await kv.update("acct/a", "2", r1)) as number;
    expect(r2).toBeGreaterThan(r1);
    expect(await kv.update("acct/a", "stale", r1)).toBeNull();
    expect(await kv.entry("acct/a")).toEqual({ value: "2", revision: r2, createRevision: r1, version: 2 });
    expect(await kv.delete("acct/a", { revision: r1 })).toBe(false);
    const rb = (await kv.create("acct/b", new Uint8Array([10]))) as number;
    expect(rb).toBeGreaterThan(r2);
    expect(await kv.entry("acct/b")).toEqual({
      value: new Uint8Array([10]),
      revision: rb,
      createRevision: rb,
      version: 1,
    });

    const move = {
      compare: [
        { key: "acct/a", revision: r2 },
        { key: "acct/c", absent: true as const },
      ],
      success: [
        { op: "put" as const, key: "acct/c", value: "moved" },
        { op: "delete" as const, key: "acct/b" },
      ],
      failure: [{ op: "put" as const, key: "acct/failed", value: "yes" }],
    };
    const done = await kv.txn(move);
    expect(done.succeeded).toBe(true);
    expect(done.revision).toBeGreaterThan(rb);
    expect(await kv.entry("acct/c")).toEqual({
      value: "moved",
      revision: done.revision,
      createRevision: done.revision,
      version: 1,
    });
    expect(await kv.get("acct/b")).toBeNull();
    // The same transaction again: acct/c is no longer absent, so only the failure branch runs.
    const again = await kv.txn(move);
    expect(again.succeeded).toBe(false);
    expect(await kv.entry("acct/failed")).toMatchObject({ value: "yes", revision: again.revision });
    expect(await kv.get("acct/c")).toBe("moved");

    expect(await kv.delete("acct/a", { revision: r2 })).toBe(true);
    expect(await kv.delete("acct/a")).toBe(false);
    await expect(kv.update("acct/a", "x", -1)).rejects.toMatchObject({ code: ErrorCode.Config });
    await expect(
      kv.txn({
        compare: [],
        success: [
          { op: "put", key: "k", value: "1" },
          { op: "delete", key: "k" },
        ],
      }),
    ).rejects.toMatchObject({ code: ErrorCode.Config });
  });

  it("keys and list page through a prefix in key order with a continuation", async () => {
    const kv = clients[1] as KvClient;
    const keys = Array.from({ length: 25 }, (_, i) => `range/${String(i).padStart(2, "0")}`);
    const revisions = await Promise.all(keys.map((key, i) => kv.put(key, `v${i}`)));
    await kv.put("rangeX", "outside the prefix");
    const listed = await listAll(kv, "range/", 7);
    expect(listed.map((e) => e.key)).toEqual(keys);
    expect(listed.map((e) => e.value)).toEqual(keys.map((_, i) => `v${i}`));
    expect(listed.map((e) => e.revision)).toEqual(revisions);
    const firstPage = await kv.keys("range/", { limit: 10 });
    expect(firstPage).toEqual({ items: keys.slice(0, 10), next: keys[10] });
    const lastPage = await kv.keys("range/", { limit: 10, fromKey: keys[20] });
    expect(lastPage).toEqual({ items: keys.slice(20), next: null });
    expect((await kv.keys("range")).items).toEqual([...keys, "rangeX"]);
    await expect(kv.keys("range/", { limit: MAX_RANGE_LIMIT + 1 })).rejects.toMatchObject({ code: ErrorCode.Config });
  });

  it("the CLI: put from stdin, get --json with revisions, del exits 1 when nothing was deleted, ls, watch", async () => {
    const { nats } = cluster;
    const target = ["--cluster", protocol.cluster, "--nats", nats.url, "--user", nats.user, "--password", nats.pass];
    const put = await quorate(["kv", "put", "cli/a", "--json", ...target], "from stdin\n");
    expect(put.code, put.stderr).toBe(0);
    const { revision } = JSON.parse(put.stdout) as { revision: number };
    const get = await quorate(["kv", "get", "cli/a", "--json", ...target]);
    expect(JSON.parse(get.stdout)).toEqual({
      key: "cli/a",
      found: true,
      value: "from stdin\n",
      revision,
      createRevision: revision,
      version: 1,
    });
    expect((await quorate(["kv", "put", "cli/b", "2", ...target])).stdout).toBe("OK\n");
    expect((await quorate(["kv", "ls", "cli/", ...target])).stdout).toBe("cli/a\ncli/b\n");
    const missing = await quorate(["kv", "del", "cli/missing", ...target]);
    expect(missing).toMatchObject({ code: 1, stdout: "not found\n" });

    const watched = quorate(
      ["kv", "watch", "--prefix", "cli/", "--from-revision", String(revision), "--json", ...target],
      "",
      (out) => out.split("\n").length > 3,
    );
    expect((await quorate(["kv", "del", "cli/b", ...target])).code).toBe(0);
    const watch = await watched;
    expect(watch.code, watch.stderr).toBe(0);
    const events = watch.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as KvEvent);
    expect(events.map((e) => [e.op, e.key])).toEqual([
      ["put", "cli/a"],
      ["put", "cli/b"],
      ["delete", "cli/b"],
    ]);
    expect(events[0]?.revision).toBe(revision);
  });

  it("watch delivers every committed change once, in order, through kill -9 of each member and a NATS restart", async () => {
    const { nats, members, ready } = cluster;
    const writer = clients[2] as KvClient;
    const start = await writer.put("w/start", "0");
    const watcher = await KvClient.connect({ nats: nats.connectOptions(), cluster: protocol.cluster });
    const events: KvEvent[] = [];
    const watch = watcher.watch({ prefix: "w/" }, { fromRevision: start });
    const consuming = (async () => {
      for await (const event of watch) events.push(event);
    })();
    // A write outside the prefix is not delivered.
    await writer.put("elsewhere", "x");
    const ledger = emptyLedger();
    try {
      for (const member of members) {
        await writeLoad(clients, `w/${member.id}`, 120, ledger, () => member.kill());
        member.start();
        await ready();
      }
      await writeLoad(clients, "w/natsrestart", 120, ledger, () => nats.restart());
      await ready();
      await writeLoad(clients, "w/after", 30, ledger);

      const committed = await listAll(writer, "w/", 200);
      expect(committed.length).toBeGreaterThan(ledger.acknowledged.size);
      await eventually(
        "the watcher delivered every committed change",
        async () => (events.length >= committed.length ? true : undefined),
        60_000,
        () => `(${events.length} of ${committed.length})`,
      );
      // In revision order, each change once (every key was written once).
      for (let i = 1; i < events.length; i++) {
        expect((events[i] as KvEvent).revision).toBeGreaterThan((events[i - 1] as KvEvent).revision);
      }
      expect(events[0]).toEqual({ op: "put", key: "w/start", value: "0", revision: start });
      const byRevision = (a: { revision: number }, b: { revision: number }) => a.revision - b.revision;
      expect(events.map(({ key, value, revision }) => ({ key, value, revision }))).toEqual(
        committed.map(({ key, value, revision }) => ({ key, value, revision })).sort(byRevision),
      );
      for (const [key, value] of ledger.acknowledged) expect(committed.find((e) => e.key === key)?.value).toBe(value);
    } finally {
      await watch.return();
      await consuming;
      await watcher.close();
    }
  });
});

/** One member whose commands apply as soon as they are proposed: enough to test the watch protocol alone. */
class InstantNode implements ConsensusNode {
  readonly id = "m1";
  readonly store = new KvStateMachine({ watchWindow: 5 });
  readonly #machine = new SessionStateMachine(this.store);
  #index = 0;
  get appliedIndex(): number {
    return this.#index;
  }
  leader(): string {
    return this.id;
  }
  propose(command: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(this.#machine.apply(command, ++this.#index));
  }
  readBarrier(): Promise<void> {
    return Promise.resolve();
  }
}

describe("KV watch against one in-process member", () => {
  const CLUSTER = "itwatchone";
  let nats: NatsServer;
  let nc: NatsConnection;
  let node: InstantNode;
  let kv: KvClient;
  let close: () => Promise<void>;

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "kv-watch-one" });
    node = new InstantNode();
    const service = createKvService({ nc, cluster: CLUSTER, node, store: node.store, watchHeartbeatMs: 200 });
    kv = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, watchIdleMs: 1_000 });
    close = () => service.close();
  });

  afterAll(async () => {
    await kv?.close();
    await close?.();
    await nc?.close();
    await nats?.stop();
  });

  it("fails with QUORATE_COMPACTED and the oldest revision when the window no longer holds the start", async () => {
    const first = await kv.put("c/0", "0");
    for (let i = 1; i < 10; i++) await kv.put(`c/${i}`, `${i}`);
    const oldest = node.store.oldestWatchableRevision;
    expect(oldest).toBeGreaterThan(first);
    const compacted = kv.watch({ prefix: "c/" }, { fromRevision: first });
    await expect(compacted.next()).rejects.toMatchObject({
      code: ErrorCode.Compacted,
      oldestRevision: oldest,
      name: "KvCompactedError",
    });
    // From the oldest revision on, the window serves it.
    const served = kv.watch({ prefix: "c/" }, { fromRevision: oldest });
    const event = (await served.next()).value as KvEvent;
    expect(event.revision).toBe(oldest);
    await served.return();
  });

  it("a watch without fromRevision starts at the call, not at the first next()", async () => {
    const watch = kv.watch({ key: "eager" });
    await new Promise((r) => setTimeout(r, 500));
    const r = await kv.put("eager", "1");
    expect((await watch.next()).value).toEqual({ op: "put", key: "eager", value: "1", revision: r });
    await watch.return();
  });

  it("return() ends a watch that is waiting for a change, and closing the client ends the others", async () => {
    const waiting = kv.watch({ key: "quiet" });
    const pending = waiting.next();
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    expect(await waiting.return()).toEqual({ done: true, value: undefined });
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(performance.now() - started).toBeLessThan(2_500);

    const other = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER });
    const open = other.watch({ prefix: "" });
    const next = open.next();
    await new Promise((r) => setTimeout(r, 300));
    await other.close();
    expect(await next).toEqual({ done: true, value: undefined });
  });

  it("closing the client while a watch waits for a reply ends the watch without an error", async () => {
    const cluster = "itwatchsilent";
    // A member that takes requests and never answers.
    const silent = nc.subscribe(rpcSubject({ cluster }, KV_SERVICE), { queue: KV_QUEUE_GROUP, callback: () => {} });
    await nc.flush();
    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster });
    const watch = client.watch({ key: "k" });
    const next = watch.next();
    await new Promise((r) => setTimeout(r, 300));
    await client.close();
    expect(await next).toEqual({ done: true, value: undefined });
    silent.unsubscribe();
  });

  it("from now on by default; one key only; a publication that skips revisions is caught up by request, never delivered", async () => {
    await kv.put("k", "before");
    const watch = kv.watch({ key: "k" });
    const first = watch.next();
    // Let the watch reach the member before writing.
    await new Promise((r) => setTimeout(r, 500));
    await kv.put("other", "x");
    const r = await kv.put("k", "after");
    expect((await first).value).toEqual({ op: "put", key: "k", value: "after", revision: r });

    // A forged change far ahead of the member: its `previous` shows a gap, so the watcher asks
    // the member, which knows nothing of it.
    const forged = {
      previous: r + 100,
      revision: r + 101,
      events: [{ op: "put", key: "k", value: "forged", revision: r + 101 }],
    };
    nc.publish(watchSubject({ cluster: CLUSTER }, node.id), packValue(forged));
    const next = watch.next();
    await new Promise((r) => setTimeout(r, 500));
    expect(await kv.delete("k")).toBe(true);
    const deleted = (await next).value as KvEvent;
    expect(deleted).toMatchObject({ op: "delete", key: "k", value: null });
    expect(deleted.revision).toBeGreaterThan(r);
    expect(deleted.revision).toBeLessThan(r + 100);
    await watch.return();
  });
});

describe("KV watch publications follow interest", () => {
  const CLUSTER = "itwatchinterest";
  let nats: NatsServer;
  let nc: NatsConnection;
  let node: InstantNode;
  let kv: KvClient;
  let close: () => Promise<void>;
  /** Every publication on the member's watch subject: changes carry events, heartbeats none. */
  const published: { events: unknown[] }[] = [];
  const changesPublished = () => published.filter((p) => p.events.length > 0).length;

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "kv-watch-interest" });
    node = new InstantNode();
    const service = createKvService({ nc, cluster: CLUSTER, node, store: node.store, watchHeartbeatMs: 200 });
    nc.subscribe(watchSubject({ cluster: CLUSTER }, node.id), {
      callback: (err, msg) => {
        if (err === null) published.push(unpackValue(msg.data) as { events: unknown[] });
      },
    });
    kv = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, watchIdleMs: 1_000 });
    close = () => service.close();
  });

  afterAll(async () => {
    await kv?.close();
    await close?.();
    await nc?.close();
    await nats?.stop();
  });

  it(
    "a member publishes changes only while a watch follows it, which renews its interest past WATCH_INTEREST_MS",
    async () => {
      for (let i = 0; i < 5; i++) await kv.put(`quiet/${i}`, "x");
      await new Promise((r) => setTimeout(r, 500));
      // No watcher: heartbeats only, no socket write per change.
      expect(published.length).toBeGreaterThan(0);
      expect(changesPublished()).toBe(0);
      const watch = kv.watch({ prefix: "w/" });
      const first = watch.next();
      await new Promise((r) => setTimeout(r, 500));
      const r1 = await kv.put("w/1", "1");
      expect((await first).value).toMatchObject({ key: "w/1", revision: r1 });
      // The test's own subscription may hear the publication after the watch did.
      await eventually("the change published", async () => (changesPublished() === 1 ? true : undefined), 2_000);
      // Waiting longer than the member's interest lasts (as a for-await loop does, with a next()
      // pending): the watch's renewals keep changes flowing.
      const second = watch.next();
      await new Promise((r) => setTimeout(r, WATCH_INTEREST_MS + 1_000));
      const r2 = await kv.put("w/2", "2");
      expect((await second).value).toMatchObject({ key: "w/2", revision: r2 });
      await eventually("the change published", async () => (changesPublished() === 2 ? true : undefined), 2_000);
      await watch.return();
    },
    WATCH_INTEREST_MS + 15_000,
  );
});

/** A KV state machine that counts the watch catch-ups it served. */
class CountingWindow extends KvStateMachine {
  catchUps = 0;
  override changesAfter(afterRevision: number) {
    this.catchUps++;
    return super.changesAfter(afterRevision);
  }
}

/** Members that apply every proposal at once, all at the same index: a log without consensus. */
class SharedLogNode implements ConsensusNode {
  readonly store = new CountingWindow();
  readonly machine = new SessionStateMachine(this.store);
  constructor(
    readonly id: string,
    private readonly log: { index: number; members: SharedLogNode[] },
  ) {
    log.members.push(this);
  }
  get appliedIndex(): number {
    return this.log.index;
  }
  leader(): string {
    return this.id;
  }
  propose(command: Uint8Array): Promise<Uint8Array> {
    const at = this.log.members.indexOf(this);
    if (at < 0) {
      // No longer applying: it refuses writes as a member cut off from the leader does.
      const leader = this.log.members[0]?.id ?? null;
      return Promise.reject(new QuorateError(ErrorCode.NotLeader, `${this.id} does not apply`, { leader }));
    }
    const index = ++this.log.index;
    const results = this.log.members.map((m) => m.machine.apply(command, index));
    return Promise.resolve(results[at] as Uint8Array);
  }
  readBarrier(): Promise<void> {
    return Promise.resolve();
  }
}

describe("KV watch against two in-process members, one restored from a snapshot", () => {
  const CLUSTER = "itwatchtwo";
  let nats: NatsServer;
  let nc: NatsConnection;
  let kv: KvClient;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "kv-watch-two" });
    kv = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER });
  });

  afterAll(async () => {
    await kv?.close();
    for (const close of closers) await close();
    await nc?.close();
    await nats?.stop();
  });

  it("a watch that reaches a member lacking its start asks another before failing with QUORATE_COMPACTED", async () => {
    const log = { index: 0, members: [] as SharedLogNode[] };
    const full = new SharedLogNode("full", log);
    const restored = new SharedLogNode("restored", log);
    const serve = (node: SharedLogNode) => {
      const service = createKvService({ nc, cluster: CLUSTER, node, store: node.store });
      closers.push(() => service.close());
      return service;
    };
    const first = serve(full);
    const revisions: number[] = [];
    for (let i = 0; i < 5; i++) revisions.push(await kv.put(`p/${i}`, `${i}`));
    // The second member restores a snapshot, as a lagging member does: its window starts after it.
    restored.machine.restore(full.machine.snapshot());
    expect(restored.store.oldestWatchableRevision).toBeGreaterThan(revisions[0] as number);
    await first.close();

    // Only the restored member answers the watch's first request...
    const second = serve(restored);
    const watch = kv.watch({ prefix: "p/" }, { fromRevision: revisions[0] as number });
    await eventually("the restored member answered", async () => (restored.store.catchUps > 0 ? true : undefined));
    // ...then only the member that keeps every change.
    await second.close();
    serve(full);
    const events: KvEvent[] = [];
    for (let i = 0; i < 5; i++) events.push((await watch.next()).value as KvEvent);
    expect(events.map((e) => e.revision)).toEqual(revisions);
    await watch.return();
  });

  it("a watch following a member that stopped applying (its heartbeats behind the watch) moves to another", async () => {
    const cluster = "itwatchstuck";
    const log = { index: 0, members: [] as SharedLogNode[] };
    const live = new SharedLogNode("live", log);
    const stuck = new SharedLogNode("stuck", log);
    const serve = (node: SharedLogNode) => {
      const service = createKvService({ nc, cluster, node, store: node.store, watchHeartbeatMs: 200 });
      closers.push(() => service.close());
      return service;
    };
    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster, watchIdleMs: 1_000 });
    closers.push(() => client.close());
    const writes = serve(live);
    const before = await client.put("s/0", "0");
    // The stuck member stops applying; it keeps answering, and its heartbeats say `before`.
    log.members.splice(log.members.indexOf(stuck), 1);
    const r1 = await client.put("s/1", "1");
    expect(before).toBeLessThan(r1);
    await writes.close();
    // Only the stuck member answers the watch's first requests...
    serve(stuck);
    const watch = client.watch({ prefix: "s/" }, { fromRevision: r1 + 1 });
    await eventually("the watch follows the stuck member", async () => (stuck.store.catchUps > 1 ? true : undefined));
    // ...then both do: the watch must leave the stuck member to see the next write.
    serve(live);
    const r2 = await client.put("s/2", "2");
    expect((await watch.next()).value).toEqual({ op: "put", key: "s/2", value: "2", revision: r2 });
    await watch.return();
  });
});
