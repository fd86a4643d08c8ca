import { ErrorCode, isQuorateError } from "@quorate/core";
import { MemoryRaftStorage } from "@quorate/storage";
import { MemoryDisk } from "@quorate/storage/internal";
import { MemoryNetwork } from "@quorate/transport-memory";
import { afterEach, describe, expect, it } from "vitest";
import { RaftNode } from "../src/index.js";
import { encode, ListMachine, LocalCluster } from "./cluster.js";

let cluster: LocalCluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

describe("RaftNode bounds the requests it holds", () => {
  it("a proposal beyond maxPendingProposals fails at once with Busy; a place frees once one is applied", async () => {
    cluster = new LocalCluster(["a"], { maxPendingProposals: 2 });
    await cluster.startAll();
    const leader = await cluster.leader();
    const held = [leader.propose(encode("1")), leader.propose(encode("2"))];
    await expect(leader.propose(encode("3"))).rejects.toMatchObject({
      code: ErrorCode.Busy,
      message: expect.stringContaining("maxPendingProposals"),
    });
    await Promise.all(held);
    await leader.propose(encode("4"));
    expect(cluster.machines.get("a")?.items).toEqual(["1", "2", "4"]);
  });

  it("a read barrier beyond maxPendingReads fails at once with Busy; a place frees once one resolves", async () => {
    cluster = new LocalCluster(["a"], { maxPendingReads: 1 });
    await cluster.startAll();
    const leader = await cluster.leader();
    const held = leader.readBarrier();
    await expect(leader.readBarrier()).rejects.toMatchObject({
      code: ErrorCode.Busy,
      message: expect.stringContaining("maxPendingReads"),
    });
    await held;
    await leader.readBarrier();
  });

  it("membership changes and leadership transfers count against maxPendingProposals", async () => {
    cluster = new LocalCluster(["a"], { maxPendingProposals: 1 });
    await cluster.startAll();
    const leader = await cluster.leader();
    const held = leader.propose(encode("1"));
    // Both asked for while the proposal still holds the one place.
    const change = leader.changeMembership({ type: "add-learner", member: "b" });
    const transfer = leader.transferLeadership();
    await expect(change).rejects.toMatchObject({ code: ErrorCode.Busy });
    await expect(transfer).rejects.toMatchObject({ code: ErrorCode.Busy });
    await held;
    await leader.changeMembership({ type: "add-learner", member: "b" });
  });

  it("refuses a limit that is not a positive integer, with Config", async () => {
    const err = await RaftNode.start({
      id: "a",
      members: ["a"],
      transport: new MemoryNetwork().connect({ cluster: "test", group: "kv", self: "a" }),
      storage: new MemoryRaftStorage(new MemoryDisk()),
      stateMachine: new ListMachine(),
      maxPendingReads: 0,
    }).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.Config)).toBe(true);
    expect((err as Error).message).toContain("maxPendingReads");
  });
});
