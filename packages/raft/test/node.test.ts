import { ErrorCode, isQuorateError, unpackValue } from "@quorate/core";
import { afterEach, describe, expect, it } from "vitest";
import { encode, LocalCluster } from "./cluster.js";

let cluster: LocalCluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

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
