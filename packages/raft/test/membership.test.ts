import { describe, expect, it } from "vitest";
import { applyChange, decodeConfig, encodeConfig, resolveRaftOptions } from "../src/internal.js";
import { Driver } from "./driver.js";

/** A leader `a` of voters a, b, c, with d running but outside the configuration (started with `join`). */
function clusterWithJoiner(options = {}): Driver {
  const c = new Driver(["a", "b", "c", "d"], options, {}, ["a", "b", "c"]);
  c.elect("a");
  c.tick("a");
  c.stabilize();
  return c;
}

describe("membership configurations", () => {
  it("encode and decode, and a plain list (snapshots before learners existed) reads as voters", () => {
    const config = { voters: ["a", "b"], learners: ["c"] };
    expect(decodeConfig(encodeConfig(config))).toEqual(config);
    expect(decodeConfig(encodeConfig({ voters: ["x"], learners: [] }))).toEqual({ voters: ["x"], learners: [] });
  });

  it("a malformed or duplicated configuration is refused with a Config error", () => {
    expect(() => decodeConfig(new Uint8Array([0xc1]))).toThrow(expect.objectContaining({ code: "QUORATE_CONFIG" }));
    expect(() => decodeConfig(encodeConfig({ voters: ["a", "a"], learners: [] }))).toThrow(/twice/);
  });

  it("impossible changes are explained: an existing member, a non-member, the last voter", () => {
    const config = { voters: ["a"], learners: ["b"] };
    expect(applyChange(config, { type: "add-learner", member: "a" })).toBe("'a' is already a voter");
    expect(applyChange(config, { type: "add-learner", member: "b" })).toBe("'b' is already a learner");
    expect(applyChange(config, { type: "promote", member: "z" })).toMatch(/not a learner/);
    expect(applyChange(config, { type: "remove", member: "z" })).toMatch(/not a member/);
    expect(applyChange(config, { type: "remove", member: "a" })).toMatch(/last voter/);
    expect(applyChange(config, { type: "promote", member: "b" })).toEqual({ voters: ["a", "b"], learners: [] });
  });
});

describe("Membership changes (thesis §4.1, one server at a time)", () => {
  it("a learner receives the log but does not count towards commit and never campaigns", () => {
    const c = clusterWithJoiner();
    const outcome = c.reconfigure("a", { type: "add-learner", member: "d" });
    expect(outcome).toMatchObject({ ok: true, config: { voters: ["a", "b", "c"], learners: ["d"] } });
    c.stabilize();
    c.tick("a");
    c.stabilize();
    expect(c.member("d").log.lastIndex).toBe(c.member("a").log.lastIndex);
    expect(c.member("d").log.config.learners).toEqual(["d"]);
    // With b and c silent, a and the learner d are not a quorum of the voters a, b, c.
    c.propose("a", "x");
    c.stabilize((e) => e.to !== "b" && e.to !== "c");
    expect(c.ctx("a").commitIndex).toBeLessThan(c.member("a").log.lastIndex);
    // A learner that hears nothing never campaigns.
    c.drop(() => true);
    c.tick("d", 5 * c.options.electionTicks);
    expect(c.role("d")).toBe("follower");
    expect(c.ctx("d").term).toBe(c.ctx("a").term);
  });

  it("a learner that has caught up is promoted and then counts towards the quorum", () => {
    const c = clusterWithJoiner();
    c.reconfigure("a", { type: "add-learner", member: "d" });
    c.stabilize();
    c.tick("a");
    c.stabilize();
    expect(c.reconfigure("a", { type: "promote", member: "d" })).toMatchObject({
      ok: true,
      config: { voters: ["a", "b", "c", "d"], learners: [] },
    });
    c.stabilize();
    c.tick("a");
    c.stabilize();
    // Four voters: a quorum is three. a, d and one more commit; a and d alone do not.
    c.propose("a", "y");
    c.stabilize((e) => e.to !== "b" && e.to !== "c");
    expect(c.ctx("a").commitIndex).toBeLessThan(c.member("a").log.lastIndex);
    c.stabilize();
    expect(c.ctx("a").commitIndex).toBe(c.member("a").log.lastIndex);
  });

  it("a learner that trails the log is not promoted yet", () => {
    const c = clusterWithJoiner({ maxPromotionLag: 2 });
    c.reconfigure("a", { type: "add-learner", member: "d" });
    c.stabilize((e) => e.to !== "d");
    c.drop((e) => e.to === "d");
    c.propose("a", "1", "2", "3", "4");
    c.stabilize((e) => e.to !== "d");
    c.tick("a");
    c.stabilize((e) => e.to !== "d");
    expect(c.reconfigure("a", { type: "promote", member: "d" })).toMatchObject({
      ok: false,
      reason: "not-caught-up",
    });
  });

  it("one change at a time: a second change is refused until the first commits", () => {
    const c = clusterWithJoiner();
    c.reconfigure("a", { type: "add-learner", member: "d" });
    expect(c.reconfigure("a", { type: "remove", member: "c" })).toMatchObject({ ok: false, reason: "in-progress" });
    c.stabilize();
    c.tick("a");
    c.stabilize();
    expect(c.reconfigure("a", { type: "remove", member: "c" })).toMatchObject({ ok: true });
  });

  it("a new leader refuses changes until it has committed an entry of its own term (single-server change bug)", () => {
    const c = new Driver(["a", "b", "c"]);
    c.campaign("a");
    c.stabilize((e) => e.message.type !== "raft.append.resp");
    expect(c.role("a")).toBe("leader");
    expect(c.reconfigure("a", { type: "remove", member: "c" })).toMatchObject({ ok: false, reason: "in-progress" });
    c.stabilize();
    expect(c.reconfigure("a", { type: "remove", member: "c" })).toMatchObject({ ok: true });
  });

  it("impossible changes and changes sent to a follower are refused", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    expect(c.reconfigure("a", { type: "add-learner", member: "b" })).toMatchObject({
      ok: false,
      reason: "invalid",
      message: "'b' is already a voter",
    });
    expect(c.reconfigure("b", { type: "add-learner", member: "d" })).toMatchObject({
      ok: false,
      reason: "not-leader",
      leader: "a",
    });
  });

  it("a configuration takes effect when appended, and a truncated configuration entry brings back the previous one", () => {
    const voters = ["a", "b", "c", "d", "e"];
    const c = new Driver([...voters, "f"], { checkQuorum: false }, {}, voters);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    c.reconfigure("a", { type: "add-learner", member: "f" });
    // Only b receives the change; then a is cut off and c leads with d and e.
    c.stabilize((e) => e.to === "b" && e.message.type === "raft.append");
    expect(c.member("b").log.config.learners).toEqual(["f"]);
    c.drop(() => true);
    c.campaign("c");
    c.stabilize((e) => e.from !== "a" && e.to !== "a");
    expect(c.role("c")).toBe("leader");
    expect(c.member("b").log.config).toMatchObject({ index: 0, voters, learners: [] });
  });

  it("no voter is removed from two voters: a crash or a cut before the change commits would wedge the cluster", () => {
    // The change takes effect as it is appended. Removing the leader: cut off, it holds the only
    // copy, in which it is no voter, and the other voter needs its vote. Removing the other: the
    // leader's own write may be lost in a crash while the removed voter keeps the change, and the
    // longest log, and no longer campaigns (found by 10,000 liveness seeds: raft seed 5459).
    const c = new Driver(["a", "b"]);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    for (const member of ["a", "b"]) {
      const refused = c.reconfigure("a", { type: "remove", member });
      expect(refused).toMatchObject({ ok: false, reason: "invalid" });
      expect(refused?.ok === false && refused.message).toMatch(/add a third voter first/);
    }
    expect(c.member("a").log.config.voters).toEqual(["a", "b"]);
  });

  it("a leader that removes itself leads until the removal commits, without counting itself, then hands off", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    expect(c.reconfigure("a", { type: "remove", member: "a" })).toMatchObject({ ok: true });
    expect(c.role("a")).toBe("leader");
    // The new voters are b and c: a's own copy does not count, b's alone is not a quorum of them.
    c.stabilize((e) => e.to === "b" || (e.from === "b" && e.to === "a"));
    expect(c.ctx("a").commitIndex).toBeLessThan(c.member("a").log.lastIndex);
    c.stabilize();
    expect(c.role("a")).toBe("follower");
    const timeoutNow = c.batches.flatMap((b) => b.messages).find((e) => e.message.type === "raft.timeout-now");
    expect(timeoutNow?.from).toBe("a");
    c.stabilize();
    expect(["b", "c"].some((id) => c.role(id) === "leader")).toBe(true);
    // The removed member never campaigns again.
    c.drop(() => true);
    c.tick("a", 5 * c.options.electionTicks);
    expect(c.role("a")).toBe("follower");
  });
});

describe("Lease reads (thesis §6.4.1)", () => {
  const leased = { leaseReads: true, electionTicks: 10 };

  /** With lease reads, members refuse votes for their first election timeout: let that pass, then elect a. */
  function leasedCluster(): Driver {
    const c = new Driver(["a", "b", "c"], leased);
    for (const id of ["b", "c"]) c.tick(id, c.options.electionTicks);
    c.drop(() => true);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    return c;
  }

  it("require CheckQuorum and a drift bound below 100%", () => {
    expect(() => resolveRaftOptions({ leaseReads: true, checkQuorum: false })).toThrow(/requires checkQuorum/);
    expect(() => resolveRaftOptions({ maxClockDriftPercent: 100 })).toThrow(/below 100/);
  });

  it("the leader answers at once while a quorum acknowledged a recent heartbeat", () => {
    const c = leasedCluster();
    c.send("a", { type: "read", id: 1 });
    expect(c.reads).toEqual([{ id: 1, ok: true, index: c.ctx("a").commitIndex }]);
  });

  it("once the lease has run out without acknowledgements, a read waits for a heartbeat quorum", () => {
    const c = leasedCluster();
    c.tick("a", 9);
    c.drop(() => true);
    c.send("a", { type: "read", id: 2 });
    expect(c.reads).toHaveLength(0);
    c.stabilize();
    expect(c.reads).toEqual([{ id: 2, ok: true, index: c.ctx("a").commitIndex }]);
  });

  it("no lease while leadership moves: the transfer target may win before the lease runs out", () => {
    const c = leasedCluster();
    c.send("a", { type: "transfer", to: "b" });
    c.drop(() => true);
    c.send("a", { type: "read", id: 3 });
    expect(c.reads).toHaveLength(0);
  });

  it("once a TimeoutNow went out in a term, the lease is neither used nor extended for the rest of it", () => {
    // The transfer aborts, but the TimeoutNow may still arrive late and elect the target, which
    // may then commit before the old leader's lease would have run out.
    const c = leasedCluster();
    c.send("a", { type: "transfer", to: "b" });
    expect(c.queue.some((e) => e.to === "b" && e.message.type === "raft.timeout-now")).toBe(true);
    for (let i = 0; i < c.options.electionTicks; i++) {
      c.tick("a");
      c.stabilize((e) => e.message.type !== "raft.timeout-now");
      c.drop((e) => e.message.type === "raft.timeout-now");
    }
    expect(c.ctx("a").transferee).toBeNull();
    expect(c.role("a")).toBe("leader");
    const lease = c.ctx("a").leaseExpiresAtTick;
    c.tick("a");
    c.stabilize();
    expect(c.ctx("a").leaseExpiresAtTick).toBe(lease);
    c.drop(() => true);
    c.send("a", { type: "read", id: 4 });
    expect(c.reads.filter((r) => r.id === 4)).toEqual([]);
    c.stabilize();
    expect(c.reads.filter((r) => r.id === 4)).toEqual([{ id: 4, ok: true, index: c.ctx("a").commitIndex }]);
  });

  it("a member that just started refuses votes for an election timeout: it may have backed a lease", () => {
    const c = new Driver(["a", "b", "c"], { ...leased, preVote: false });
    c.send("b", {
      type: "message",
      from: "c",
      message: { type: "raft.vote", body: { term: 5, lastLogIndex: 0, lastLogTerm: 0, preVote: false } },
    });
    expect(c.ctx("b").term).toBe(0);
    c.drop(() => true);
    c.tick("b", c.options.electionTicks);
    c.drop(() => true);
    c.send("b", {
      type: "message",
      from: "c",
      message: { type: "raft.vote", body: { term: 5, lastLogIndex: 0, lastLogTerm: 0, preVote: false } },
    });
    expect(c.ctx("b").vote).toBe("c");
  });
});
