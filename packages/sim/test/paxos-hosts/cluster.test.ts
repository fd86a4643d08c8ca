import { unpackValue } from "@quorate/core";
import { decodeKvResult, encodeKvCommand } from "@quorate/kv";
import { decodeSessionResult, encodeSessionCommand } from "@quorate/service";
import { afterEach, describe, expect, it } from "vitest";
import { PaxosCluster } from "./cluster.js";

const MEMBERS = { acceptors: ["n1", "n2", "n3"], proposers: ["n1", "n2"], learners: ["n1", "n2", "n3"] };

function put(key: string, value: string): Uint8Array {
  return encodeSessionCommand(null, encodeKvCommand({ op: "put", key, value }));
}

function sameApplied(cluster: PaxosCluster): void {
  const [first, ...rest] = [...cluster.applied.values()];
  for (const other of rest) {
    for (const [slot, value] of other) {
      const mine = first?.get(slot);
      if (mine !== undefined) expect(value, `slot ${slot}`).toEqual(mine);
    }
  }
}

let cluster: PaxosCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe("an in-process Multi-Paxos cluster over the memory transport", () => {
  it("decides and applies concurrent proposals through several learners identically", async () => {
    cluster = await new PaxosCluster(MEMBERS).start();
    const c = cluster;
    await c.waitFor(() => c.activeProposer() !== undefined, 10_000, "an active proposer");
    await c.waitFor(
      () => [...c.learners.values()].every((l) => l.leader() !== null),
      5_000,
      "learners know the leader",
    );
    const learners = [...c.learners.values()];
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => learners[i % learners.length]?.propose(put(`k${i}`, `v${i}`))),
    );
    for (const r of results) {
      const session = decodeSessionResult(r as Uint8Array);
      expect(session.ok).toBe(true);
      // A put answers with its revision: the slot it was applied at.
      if (session.ok) expect(decodeKvResult(session.result)).toEqual({ ok: true, value: expect.any(Number) });
    }
    const high = Math.max(...learners.map((l) => l.appliedIndex));
    await c.waitFor(() => learners.every((l) => l.appliedIndex >= high), 5_000, "learners converge");
    sameApplied(c);
    const digests = new Set([...c.stateMachines.values()].map((sm) => Buffer.from(sm.snapshot()).toString("hex")));
    expect(digests.size).toBe(1);
    // Every command was applied exactly once.
    const commands = [...(c.applied.values().next().value?.values() ?? [])].filter((v) => v.kind === 0);
    expect(commands).toHaveLength(300);
    expect(unpackValue(commands[0]?.data as Uint8Array)).toBeDefined();
  });

  it("a read barrier waits for a marker applied after every earlier write", async () => {
    cluster = await new PaxosCluster(MEMBERS).start();
    const c = cluster;
    await c.waitFor(() => [...c.learners.values()].every((l) => l.leader() !== null), 10_000, "a leader");
    const [a, b] = [...c.learners.values()];
    await a?.propose(put("x", "1"));
    await b?.readBarrier();
    expect(c.stateMachines.get("n2-learner")?.snapshot()).toEqual(c.stateMachines.get("n1-learner")?.snapshot());
  });
});

describe("failures in the in-process cluster", () => {
  it("the passive proposer takes over when the active one crashes, and nothing chosen changes", async () => {
    cluster = await new PaxosCluster(MEMBERS).start();
    const c = cluster;
    await c.waitFor(() => [...c.learners.values()].every((l) => l.leader() !== null), 10_000, "a leader");
    const learners = [...c.learners.values()];
    await Promise.all(Array.from({ length: 50 }, (_, i) => learners[i % 3]?.propose(put(`a${i}`, "1"))));
    const first = c.activeProposer();
    expect(first).toBeDefined();
    const chosenBefore = new Map(c.applied.get("n1-learner"));
    c.crash(first?.id as string);
    // Proposals during the failover either succeed or fail as NotLeader/Indeterminate; retry until done.
    const done = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        for (let attempt = 0; attempt < 200; attempt++) {
          try {
            return await learners[i % 3]?.propose(put(`b${i}`, "2"));
          } catch {
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        throw new Error("never applied");
      }),
    );
    expect(done).toHaveLength(50);
    const second = c.activeProposer();
    expect(second?.id).not.toBe(first?.id);
    for (const [slot, value] of chosenBefore) expect(c.applied.get("n1-learner")?.get(slot)).toEqual(value);
    const high = Math.max(...learners.map((l) => l.appliedIndex));
    await c.waitFor(() => learners.every((l) => l.appliedIndex >= high), 5_000, "learners converge");
    sameApplied(c);
  });

  it("an active proposer that hears no acceptor (a one-way cut) steps down, and another takes over", async () => {
    cluster = await new PaxosCluster(MEMBERS).start();
    const c = cluster;
    await c.waitFor(() => [...c.learners.values()].every((l) => l.leader() !== null), 10_000, "a leader");
    const cutOff = c.activeProposer();
    expect(cutOff).toBeDefined();
    // Its heartbeats still reach everyone; nothing from an acceptor reaches it.
    for (const acceptor of c.topology.acceptors) c.network.block(acceptor, cutOff?.id as string);
    await c.waitFor(
      () => c.activeProposer() !== undefined && c.activeProposer() !== cutOff,
      10_000,
      "another proposer takes over",
    );
    expect(cutOff?.mode).not.toBe("active");
    const learners = [...c.learners.values()];
    const done = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        for (let attempt = 0; attempt < 200; attempt++) {
          try {
            return await learners[i % 3]?.propose(put(`f${i}`, "6"));
          } catch {
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        throw new Error("never applied");
      }),
    );
    expect(done).toHaveLength(10);
    sameApplied(c);
  });

  it("progress continues with one acceptor down, and a restarted acceptor rejoins from its disk", async () => {
    cluster = await new PaxosCluster(MEMBERS).start();
    const c = cluster;
    await c.waitFor(() => [...c.learners.values()].every((l) => l.leader() !== null), 10_000, "a leader");
    const learners = [...c.learners.values()];
    c.crash("n3-acceptor");
    await Promise.all(Array.from({ length: 30 }, (_, i) => learners[i % 3]?.propose(put(`c${i}`, "3"))));
    const restarted = await c.startAcceptor("n3-acceptor");
    c.crash("n1-acceptor");
    await Promise.all(Array.from({ length: 30 }, (_, i) => learners[i % 3]?.propose(put(`d${i}`, "4"))));
    expect(restarted.status().lastLogIndex).toBeGreaterThan(30);
    sameApplied(c);
  });

  it("acceptors truncate below learner checkpoints, and a lagging learner restores a snapshot", async () => {
    cluster = await new PaxosCluster(MEMBERS, { checkpointInterval: 20 }).start();
    const c = cluster;
    await c.waitFor(() => [...c.learners.values()].every((l) => l.leader() !== null), 10_000, "a leader");
    c.crash("n3-learner");
    const live = [c.learners.get("n1-learner"), c.learners.get("n2-learner")];
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => live[i % 2]?.propose(put(`e${round}-${i}`, "5"))));
    }
    await c.waitFor(
      () => [...c.acceptors.values()].every((a) => a.truncated >= 60),
      5_000,
      "acceptors truncate below the checkpoints",
    );
    const acceptor = c.acceptors.get("n1-acceptor");
    expect(acceptor?.accepted(1)).toBeUndefined();
    // The crashed learner comes back with nothing: the prefix is gone from the acceptors.
    c.raftDisks.delete("n3-learner");
    const lagging = await c.startLearner("n3-learner");
    const target = c.learners.get("n1-learner")?.appliedIndex ?? 0;
    await c.waitFor(() => lagging.appliedIndex >= target, 10_000, "the lagging learner catches up");
    expect(c.observations.some((o) => o.kind === "restored" && o.learner === "n3-learner")).toBe(true);
    expect(c.stateMachines.get("n3-learner")?.snapshot()).toEqual(c.stateMachines.get("n1-learner")?.snapshot());
  });
});
