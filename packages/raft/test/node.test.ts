import { EntryKind, ErrorCode, isQuorateError, unpackValue } from "@quorate/core";
import { afterEach, describe, expect, it } from "vitest";
import type { RaftNode } from "../src/index.js";
import { packEntries } from "../src/messages.js";
import { encode, HandClockCluster, LocalCluster } from "./cluster.js";

let cluster: LocalCluster | undefined;
let handCluster: HandClockCluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
  await handCluster?.stopAll();
  handCluster = undefined;
});

/** A promise's outcome as it stands: settled or not yet. */
function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

describe("RaftNode host", () => {
  it("replicates proposals to every member and returns the state machine's result", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    const results = await Promise.all(["x", "y", "z"].map((c) => leader.propose(encode(c))));
    expect(results.map((r) => unpackValue(r))).toEqual([1, 2, 3]);
    await cluster.waitFor(() => [...cluster!.machines.values()].every((m) => m.items.length === 3));
    for (const m of cluster.machines.values()) expect(m.items).toEqual(["x", "y", "z"]);
  });

  it("batches concurrent proposals into one log append", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    const before = leader.log.lastIndex;
    await Promise.all(Array.from({ length: 50 }, (_, i) => leader.propose(encode(`c${i}`))));
    expect(leader.log.lastIndex - before).toBe(50);
    expect(leader.log.term(before + 50)).toBe(leader.status().term);
  });

  it("a follower refuses proposals and reads with NotLeader naming the leader", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    const follower = [...cluster.nodes.values()].find((n) => n !== leader);
    await cluster.waitFor(() => follower?.leader() === leader.id);
    const err = await follower?.propose(encode("nope")).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.NotLeader)).toBe(true);
    expect((err as { leader: string }).leader).toBe(leader.id);
    const readErr = await follower?.readBarrier().catch((e: unknown) => e);
    expect(isQuorateError(readErr, ErrorCode.NotLeader)).toBe(true);
  });

  it("readBarrier resolves once the leader's state machine reflects earlier commits", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    await leader.propose(encode("w"));
    await leader.readBarrier();
    expect(cluster.machines.get(leader.id)?.items).toContain("w");
    expect(leader.appliedIndex).toBeGreaterThanOrEqual(leader.status().commitIndex);
  });

  it("a restarted member recovers term, vote and log from its disk and catches up", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    const victim = [...cluster.nodes.values()].find((n) => n !== leader)?.id as string;
    await leader.propose(encode("before"));
    await cluster.waitFor(() => cluster!.machines.get(victim)?.items.includes("before") === true);
    const term = cluster.node(victim).status().term;
    await cluster.crash(victim);
    await leader.propose(encode("while-down"));
    const restarted = await cluster.start(victim);
    expect(restarted.status().term).toBeGreaterThanOrEqual(term);
    await cluster.waitFor(() => cluster!.machines.get(victim)?.items.join(",") === "before,while-down");
  });

  it("a new leader is elected after the leader crashes, and committed entries survive", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    await leader.propose(encode("kept"));
    await cluster.crash(leader.id);
    const next = await cluster.leader();
    expect(next.id).not.toBe(leader.id);
    await next.propose(encode("after"));
    expect(cluster.machines.get(next.id)?.items).toEqual(["kept", "after"]);
  });

  it("pending proposals of a killed leader fail as Indeterminate, not as a definite error", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    // Cut the leader off so its proposal is appended but cannot commit.
    cluster.network.isolate(leader.id, cluster.ids);
    const pending = leader.propose(encode("limbo")).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 30));
    leader.kill();
    const err = await pending;
    expect(isQuorateError(err, ErrorCode.Indeterminate)).toBe(true);
    cluster.nodes.delete(leader.id);
  });

  it("a proposal that is never applied in time fails as Indeterminate", async () => {
    cluster = new LocalCluster(["a", "b", "c"], { proposalTimeoutMs: 100 });
    await cluster.startAll();
    const leader = await cluster.leader();
    cluster.network.isolate(leader.id, cluster.ids);
    const err = await leader.propose(encode("stuck")).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.Indeterminate)).toBe(true);
  });

  it("stop() fails later calls with Closed", async () => {
    cluster = new LocalCluster(["solo"]);
    await cluster.startAll();
    const node = await cluster.leader();
    await node.stop();
    const err = await node.propose(encode("late")).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.Closed)).toBe(true);
    cluster.nodes.clear();
  });
});

describe("RaftNode snapshots and compaction", () => {
  it("compacts the log after a snapshot, and a member that was down catches up from the snapshot in chunks", async () => {
    cluster = new LocalCluster(["a", "b", "c"], { snapshotThreshold: 20 });
    await cluster.startAll();
    const leader = await cluster.leader();
    const laggard = cluster.ids.find((id) => id !== leader.id) as string;
    await cluster.crash(laggard);
    // Big commands make the snapshot span several 256 KiB chunks.
    const big = "x".repeat(40_000);
    for (let i = 0; i < 60; i++) await leader.propose(encode(`${i}:${big}`));
    await cluster.waitFor(() => leader.log.firstIndex > 20);
    expect(leader.log.firstIndex).toBeGreaterThan(20);
    const restarted = await cluster.start(laggard);
    await cluster.waitFor(() => cluster!.machines.get(laggard)?.items.length === 60, 10_000);
    expect(cluster.machines.get(laggard)?.items).toEqual(cluster.machines.get(leader.id)?.items);
    // It installed a snapshot rather than replaying from index 1, and keeps replicating after it.
    expect(restarted.log.firstIndex).toBeGreaterThan(1);
    await leader.propose(encode("after-snapshot"));
    await cluster.waitFor(() => cluster!.machines.get(laggard)?.items.at(-1) === "after-snapshot");
  });

  it("a member restarted on its disk recovers from its own snapshot plus the log after it", async () => {
    cluster = new LocalCluster(["a", "b", "c"], { snapshotThreshold: 10 });
    await cluster.startAll();
    const leader = await cluster.leader();
    for (let i = 0; i < 35; i++) await leader.propose(encode(`c${i}`));
    const follower = cluster.ids.find((id) => id !== leader.id) as string;
    await cluster.waitFor(() => cluster!.machines.get(follower)?.items.length === 35);
    await cluster.waitFor(() => cluster!.node(follower).log.firstIndex > 1);
    await cluster.crash(follower);
    const restarted = await cluster.start(follower);
    expect(restarted.log.firstIndex).toBeGreaterThan(1);
    await cluster.waitFor(() => cluster!.machines.get(follower)?.items.length === 35);
    expect(cluster.machines.get(follower)?.items).toEqual(Array.from({ length: 35 }, (_, i) => `c${i}`));
  });
});

describe("RaftNode leadership transfer", () => {
  it("transferLeadership hands leadership to the named member", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    const target = cluster.ids.find((id) => id !== leader.id) as string;
    await leader.propose(encode("before"));
    expect(await leader.transferLeadership(target)).toBe(target);
    await cluster.waitFor(() => cluster!.node(target).role() === "leader");
    expect(unpackValue(await cluster.node(target).propose(encode("after")))).toBe(2);
  });

  it("a follower cannot transfer leadership, and an unknown target is refused", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    const follower = [...cluster.nodes.values()].find((n) => n !== leader);
    expect(isQuorateError(await follower?.transferLeadership().catch((e: unknown) => e), ErrorCode.NotLeader)).toBe(
      true,
    );
    expect(isQuorateError(await leader.transferLeadership("zz").catch((e: unknown) => e), ErrorCode.Config)).toBe(true);
  });

  it("a leader that stops hands leadership over first, so the others need no election timeout", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    await leader.propose(encode("x"));
    const termBefore = leader.status().term;
    await leader.stop();
    cluster.nodes.delete(leader.id);
    const next = [...cluster.nodes.values()].find((n) => n.role() === "leader");
    expect(next).toBeDefined();
    // A transfer campaign takes exactly one more term.
    expect(next?.status().term).toBe(termBefore + 1);
  });

  it("an AppendEntries whose configuration entry does not decode is dropped, and the member carries on", async () => {
    cluster = new LocalCluster(["a", "b", "c"]);
    await cluster.startAll();
    const leader = await cluster.leader();
    const follower = [...cluster.nodes.values()].find((n) => n !== leader) as RaftNode;
    const before = follower.status();
    const rogue = cluster.network.connect({ cluster: "test", group: "kv", self: "rogue" });
    rogue.send(follower.id, "raft.append", {
      term: before.term + 1,
      prevLogIndex: before.lastLogIndex,
      prevLogTerm: follower.log.term(before.lastLogIndex) ?? 0,
      leaderCommit: 0,
      entries: packEntries([{ term: before.term + 1, kind: EntryKind.Config, data: new Uint8Array([0xc1]) }]),
      seq: 1,
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(follower.failure).toBeNull();
    expect(follower.status().term).toBe(before.term);
    expect(follower.log.lastIndex).toBe(before.lastLogIndex);
    await rogue.close();
  });
});

describe("RaftNode time: ticks follow the monotonic clock (a paused process catches up before it acts)", () => {
  it("a leader paused for several election timeouts does not serve a lease read when it resumes", async () => {
    handCluster = new HandClockCluster(["a", "b", "c"], { raft: { leaseReads: true, electionTicks: 10 } });
    const c = handCluster;
    await c.startAll();
    const old = await c.leader();
    const write = track(old.propose(encode("before")));
    await c.runUntil(() => write.settled);
    await c.run(30);
    // The lease holds: cut off from everyone, the leader still serves a read at once.
    c.network.isolate(old.id, c.ids);
    const leased = track(old.readBarrier());
    await c.run(1);
    expect(leased.settled).toBe(true);
    expect(leased.error).toBeUndefined();
    // Paused for five election timeouts; meanwhile the others elect a leader and commit a write.
    c.paused.add(old.id);
    const others = c.ids.filter((id) => id !== old.id);
    await c.runUntil(() => others.some((id) => c.node(id).role() === "leader"));
    const next = others.map((id) => c.node(id)).find((n) => n.role() === "leader") as RaftNode;
    const newer = track(next.propose(encode("after")));
    await c.runUntil(() => newer.settled);
    expect(newer.error).toBeUndefined();
    await c.run(Math.max(0, 500 - c.nowMs));
    // A read reaches the resumed leader before any of its timers fires: it must not be answered
    // from the lease, which expired while the process was stopped.
    c.paused.delete(old.id);
    const stale = track(old.readBarrier());
    await c.run(5);
    expect(c.machines.get(old.id)?.items).not.toContain("after");
    expect(stale.settled).toBe(true);
    expect(isQuorateError(stale.error, ErrorCode.NotLeader)).toBe(true);
    expect(old.role()).not.toBe("leader");
  });
});

describe("RaftNode waiters: every proposal's caller learns an outcome", () => {
  it("a proposal whose index a later term's leader re-uses fails with NotLeader (retry safe)", async () => {
    handCluster = new HandClockCluster(["a", "b", "c"], { proposalTimeoutMs: 60_000 });
    const c = handCluster;
    await c.startAll();
    const first = await c.leader();
    const base = track(first.propose(encode("base")));
    await c.runUntil(() => base.settled);
    const firstTerm = first.status().term;
    const lastBefore = first.log.lastIndex;
    // Cut off, the leader appends three entries it can never commit.
    c.network.isolate(first.id, c.ids);
    const lost = ["l1", "l2", "l3"].map((command) => track(first.propose(encode(command))));
    await c.run(1);
    expect(first.log.lastIndex).toBe(lastBefore + 3);
    // The others elect a leader, whose no-op takes the first of those indexes.
    const others = c.ids.filter((id) => id !== first.id);
    await c.runUntil(() => others.some((id) => c.node(id).role() === "leader"));
    const second = others.map((id) => c.node(id)).find((n) => n.role() === "leader") as RaftNode;
    await c.runUntil(() => second.status().commitIndex === lastBefore + 1);
    // Rejoined, the first leader's log is cut back to the second's, then leadership comes back to it.
    c.network.heal();
    await c.runUntil(() => first.log.lastIndex === lastBefore + 1 && first.log.term(lastBefore + 1) !== firstTerm);
    const transfer = track(second.transferLeadership(first.id));
    await c.runUntil(() => transfer.settled && first.role() === "leader");
    expect(first.status().term).toBeGreaterThan(firstTerm);
    // Its no-op takes the second index; a new proposal re-uses the third, where l3 still waits.
    expect(first.log.lastIndex).toBe(lastBefore + 2);
    const again = track(first.propose(encode("again")));
    await c.runUntil(() => again.settled);
    expect(again.error).toBeUndefined();
    for (const outcome of lost) {
      expect(outcome.settled).toBe(true);
      expect(isQuorateError(outcome.error, ErrorCode.NotLeader)).toBe(true);
    }
  });
});
