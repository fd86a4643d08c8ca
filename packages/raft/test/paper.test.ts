import { EntryKind } from "@quorate/core";
import { describe, expect, it } from "vitest";
import { packEntries } from "../src/messages.js";
import { Driver } from "./driver.js";

const cmd = (s: string) => ({ term: 0, kind: EntryKind.Command, data: new TextEncoder().encode(s) });
const entry = (term: number, s = `t${term}`) => ({ ...cmd(s), term });

describe("Raft §5.2 leader election", () => {
  it("a follower that hears nothing campaigns and wins a majority", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    expect(c.ctx("a").term).toBe(1);
    expect(c.ctx("b").leader).toBe("a");
    expect(c.ctx("c").leader).toBe("a");
  });

  it("election safety: at most one vote per term, so two candidates cannot both win", () => {
    const c = new Driver(["a", "b", "c"], { preVote: false });
    c.campaign("a");
    c.campaign("b");
    // Both are candidates at term 1; c votes for whichever request it sees first.
    expect(c.role("a")).toBe("candidate");
    expect(c.role("b")).toBe("candidate");
    c.stabilize();
    const leaders = ["a", "b", "c"].filter((id) => c.role(id) === "leader");
    expect(leaders.length).toBeLessThanOrEqual(1);
    expect(c.ctx("c").vote).not.toBeNull();
  });

  it("a single-member cluster elects itself and commits", () => {
    const c = new Driver(["solo"]);
    c.campaign("solo");
    expect(c.role("solo")).toBe("leader");
    c.propose("solo", "x");
    expect(c.ctx("solo").commitIndex).toBe(2);
  });
});

describe("Raft §5.4.1 election restriction", () => {
  it("denies the vote to a candidate whose last log term is older", () => {
    const c = new Driver(
      ["a", "b", "c"],
      { preVote: false },
      {
        a: { term: 1, entries: [entry(1)] },
        b: { term: 2, entries: [entry(1), entry(2)] },
        c: { term: 2, entries: [entry(1), entry(2)] },
      },
    );
    c.campaign("a");
    c.stabilize();
    expect(c.role("a")).not.toBe("leader");
  });

  it("denies the vote to a candidate with the same last term but a shorter log", () => {
    const c = new Driver(
      ["a", "b", "c"],
      { preVote: false },
      {
        a: { term: 1, entries: [entry(1)] },
        b: { term: 1, entries: [entry(1), entry(1)] },
        c: { term: 1, entries: [entry(1), entry(1)] },
      },
    );
    c.campaign("a");
    c.stabilize();
    expect(c.role("a")).not.toBe("leader");
  });
});

describe("Raft §5.3 log replication", () => {
  it("replicates and commits a proposal on every member", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.propose("a", "x", "y");
    c.stabilize();
    c.tick("a"); // the heartbeat carries the new commit index to followers
    c.stabilize();
    for (const id of ["a", "b", "c"]) {
      expect(c.ctx(id).commitIndex).toBe(3);
      expect(new TextDecoder().decode(c.member(id).log.entry(3)?.data)).toBe("y");
    }
  });

  it("batches many proposals into one broadcast AppendEntries", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    const before = c.queue.length;
    c.propose("a", "1", "2", "3", "4");
    const appends = c.queue.slice(before).filter((e) => e.message.type === "raft.append");
    expect(appends).toHaveLength(2); // one broadcast, fanned out to b and c
    expect(appends.every((e) => e.broadcast)).toBe(true);
    const first = appends[0]?.message;
    const terms = first?.type === "raft.append" ? first.body.entries.terms : undefined;
    expect(terms).toHaveLength(4);
  });

  it("log matching: a follower rejects AppendEntries whose prevLogTerm does not match, heartbeats included", () => {
    const c = new Driver(["a", "b"]);
    c.elect("a");
    c.send("b", {
      type: "message",
      from: "a",
      message: {
        type: "raft.append",
        body: { term: 1, prevLogIndex: 5, prevLogTerm: 1, leaderCommit: 0, entries: packEntries([]), seq: 99 },
      },
    });
    const reply = c.queue.find((e) => e.from === "b" && e.message.type === "raft.append.resp");
    expect(reply?.message.body).toMatchObject({ success: false, index: 5, lastIndex: 1 });
  });

  it("truncates only on a real conflict and repairs a divergent follower", () => {
    const c = new Driver(
      ["a", "b", "c"],
      { preVote: false },
      {
        a: { term: 3, entries: [entry(1), entry(3), entry(3)] },
        b: { term: 2, entries: [entry(1), entry(2), entry(2), entry(2)] },
        c: { term: 3, entries: [entry(1), entry(3), entry(3)] },
      },
    );
    c.elect("a");
    c.propose("a", "z");
    c.stabilize();
    c.tick("a");
    c.stabilize();
    const terms = (id: string) =>
      Array.from({ length: c.member(id).log.lastIndex }, (_, i) => c.member(id).log.term(i + 1));
    expect(terms("b")).toEqual(terms("a"));
    expect(c.ctx("b").commitIndex).toBe(c.ctx("a").commitIndex);
  });

  it("a duplicated old AppendEntries does not truncate entries that followed it", () => {
    const c = new Driver(["a", "b"]);
    c.elect("a");
    c.propose("a", "x");
    const first = c.queue.find((e) => e.to === "b" && e.message.type === "raft.append");
    c.stabilize();
    c.propose("a", "y");
    c.stabilize();
    const last = c.member("b").log.lastIndex;
    if (first === undefined) throw new Error("no append");
    c.send("b", { type: "message", from: "a", message: first.message });
    expect(c.member("b").log.lastIndex).toBe(last);
  });
});

describe("Flow control (etcd's Progress: probe, replicate, in-flight limits)", () => {
  const appendsTo = (c: Driver, to: string, from = 0) =>
    c.queue
      .slice(from)
      .filter((e) => e.to === to && e.message.type === "raft.append" && e.message.body.entries.terms.length > 0);

  it("a follower at its in-flight limit gets no further entries until it acknowledges", () => {
    const c = new Driver(["a", "b", "c"], { maxInflightMessages: 2 });
    c.elect("a");
    c.tick("a");
    c.stabilize();
    const before = c.queue.length;
    for (const command of ["1", "2", "3", "4"]) {
      c.propose("a", command);
      // c answers at once; b's acknowledgements are slow.
      c.stabilize((e) => e.to === "c" || e.from === "c");
    }
    expect(appendsTo(c, "b", before)).toHaveLength(2);
    expect(c.ctx("a").commitIndex).toBe(c.member("a").log.lastIndex);
    c.stabilize();
    expect(c.member("b").log.lastIndex).toBe(c.member("a").log.lastIndex);
  });

  it("a pipeline silent for an election timeout falls back to probing, whatever the heartbeat interval", () => {
    const c = new Driver(["a", "b", "c"], { electionTicks: 10, heartbeatTicks: 2 });
    c.elect("a");
    c.tick("a", 2);
    c.stabilize();
    c.propose("a", "x");
    c.drop((e) => e.to === "b");
    c.tickWithout("a", "b", c.options.electionTicks);
    expect(c.role("a")).toBe("leader");
    expect(c.ctx("a").progress.b).toMatchObject({ state: "probe", inflight: [] });
  });

  it("a probing follower gets one AppendEntries until it answers, however much the leader appends", () => {
    // A new leader probes every follower with its no-op; c answers, b has not yet.
    const c = new Driver(["a", "b", "c"]);
    c.campaign("a");
    c.stabilize((e) => e.message.type !== "raft.append" && e.message.type !== "raft.append.resp");
    expect(c.role("a")).toBe("leader");
    c.stabilize((e) => e.to === "c" || e.from === "c");
    expect(c.ctx("a").progress.b?.state).toBe("probe");
    c.propose("a", "x", "y");
    c.propose("a", "z");
    expect(appendsTo(c, "b")).toHaveLength(1);
    expect(appendsTo(c, "c")).toHaveLength(2);
    c.stabilize();
    expect(c.member("b").log.lastIndex).toBe(c.member("a").log.lastIndex);
  });
});

describe("Raft §5.4.2 / Figure 8: committing entries from previous terms", () => {
  it("a new leader does not commit an old-term entry by counting replicas, only through an entry of its own term", () => {
    // a holds an uncommitted term-2 entry replicated to b; a new leader of term 3 must not
    // count replicas of it, and commits it only with its own no-op.
    const c = new Driver(
      ["a", "b", "c"],
      { preVote: false },
      {
        a: { term: 2, entries: [entry(1), entry(2)] },
        b: { term: 2, entries: [entry(1), entry(2)] },
        c: { term: 2, entries: [entry(1)] },
      },
    );
    c.campaign("a");
    c.stabilize((e) => e.message.type === "raft.vote" || e.message.type === "raft.vote.resp");
    expect(c.role("a")).toBe("leader");
    // The leader appended its no-op at index 3. Deliver to b only the part that matches index 2
    // by hand: its acknowledgement of index 2 alone must not commit index 2.
    c.drop(() => true);
    c.send("a", {
      type: "message",
      from: "b",
      message: {
        type: "raft.append.resp",
        body: {
          term: c.ctx("a").term,
          success: true,
          index: 2,
          lastIndex: 2,
          conflictIndex: 0,
          conflictTerm: 0,
          seq: 1,
        },
      },
    });
    expect(c.ctx("a").commitIndex).toBe(0);
    c.send("a", {
      type: "message",
      from: "b",
      message: {
        type: "raft.append.resp",
        body: {
          term: c.ctx("a").term,
          success: true,
          index: 3,
          lastIndex: 3,
          conflictIndex: 0,
          conflictTerm: 0,
          seq: 2,
        },
      },
    });
    expect(c.ctx("a").commitIndex).toBe(3);
  });

  it("a new leader appends a no-op of its term", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    const first = c.member("a").log.entry(1);
    expect(first?.kind).toBe(EntryKind.Noop);
    expect(first?.term).toBe(c.ctx("a").term);
  });
});

describe("Persistence before reply", () => {
  it("a granted vote leaves in the same batch as the durable term and vote, marked to wait for the write", () => {
    const c = new Driver(["a", "b", "c"], { preVote: false });
    c.campaign("a");
    c.stabilize((e) => e.message.type === "raft.vote");
    const batch = c.batches.find((b) => b.from === "b" && b.messages.some((m) => m.message.type === "raft.vote.resp"));
    expect(batch?.hardStateChanged).toBe(true);
    expect(batch?.messages.every((m) => m.afterPersist)).toBe(true);
  });

  it("a candidate's vote requests wait for its new term and self-vote to be durable", () => {
    const c = new Driver(["a", "b", "c"], { preVote: false });
    c.campaign("a");
    const batch = c.batches.find((b) => b.from === "a" && b.messages.some((m) => m.message.type === "raft.vote"));
    expect(batch?.hardStateChanged).toBe(true);
    expect(batch?.messages.every((m) => m.afterPersist)).toBe(true);
  });

  it("a follower's ack of new entries waits for them to be durable; the leader's own append does not", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.propose("a", "x");
    const leaderBatch = c.batches.findLast((b) => b.from === "a" && b.unstableFrom !== null);
    expect(leaderBatch?.messages.some((m) => m.message.type === "raft.append" && !m.afterPersist)).toBe(true);
    c.stabilize((e) => e.message.type === "raft.append");
    const ack = c.batches.findLast(
      (b) => b.from === "b" && b.messages.some((m) => m.message.type === "raft.append.resp"),
    );
    expect(ack?.unstableFrom).not.toBeNull();
    expect(ack?.messages.every((m) => m.afterPersist)).toBe(true);
  });

  it("nothing that depends on a term leaves before that term is durable, whatever the quorum size", () => {
    // One voter and a learner: the voter wins its election alone, at once. Its AppendEntries of
    // the new term must wait for the term and vote to be on disk; otherwise a crash brings it
    // back in the old term, it wins the same term again and writes another entry at the same
    // (index, term) as the one the learner already holds, and the two diverge.
    const c = new Driver(["a", "l"], {}, {}, ["a"]);
    c.elect("a");
    c.reconfigure("a", { type: "add-learner", member: "l" });
    c.stabilize();
    expect(c.member("l").log.config).toMatchObject({ voters: ["a"], learners: ["l"] });
    c.restart("a");
    const before = c.batches.length;
    c.campaign("a");
    expect(c.role("a")).toBe("leader");
    const election = c.batches
      .slice(before)
      .find((b) => b.from === "a" && b.messages.some((m) => m.message.type === "raft.append"));
    expect(election?.hardStateChanged).toBe(true);
    expect(election?.messages.filter((m) => m.message.type === "raft.append").every((m) => m.afterPersist)).toBe(true);
    // Once the term is durable the leader's appends go out in parallel with its own log write again.
    c.stabilize();
    c.propose("a", "x");
    const later = c.batches.findLast((b) => b.from === "a" && b.unstableFrom !== null);
    expect(later?.hardStateChanged).toBe(false);
    expect(later?.messages.some((m) => m.message.type === "raft.append" && !m.afterPersist)).toBe(true);
  });

  it("the leader counts itself towards commit only once its own log is durable", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    const leader = c.ctx("a");
    expect(leader.persistedIndex).toBe(c.member("a").log.lastIndex);
  });
});

describe("CheckQuorum", () => {
  it("a leader that hears from no quorum for an election timeout steps down", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.drop(() => true);
    c.tick("a", 2 * c.options.electionTicks);
    expect(c.role("a")).toBe("follower");
    expect(c.ctx("a").leader).toBeNull();
  });

  it("voters ignore a vote request while they hear from a live leader", () => {
    const c = new Driver(["a", "b", "c"], { preVote: false });
    c.elect("a");
    const term = c.ctx("b").term;
    c.send("b", {
      type: "message",
      from: "c",
      message: { type: "raft.vote", body: { term: term + 1, lastLogIndex: 100, lastLogTerm: 100, preVote: false } },
    });
    expect(c.ctx("b").term).toBe(term);
    expect(c.queue.some((e) => e.from === "b" && e.message.type === "raft.vote.resp")).toBe(false);
  });
});

describe("PreVote", () => {
  it("a partitioned node's pre-vote fails and it does not raise its term, so it cannot disrupt the leader", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    const term = c.ctx("a").term;
    // c is cut off: it times out repeatedly; without PreVote its term would climb.
    for (let i = 0; i < 5; i++) {
      c.tick("c", 2 * c.options.electionTicks);
      c.drop((e) => e.from === "c" || e.to === "c");
    }
    expect(c.ctx("c").term).toBe(term);
    // After healing, the leader keeps its term and leadership.
    c.tick("a");
    c.stabilize();
    expect(c.role("a")).toBe("leader");
    expect(c.ctx("a").term).toBe(term);
    expect(c.ctx("c").leader).toBe("a");
  });

  it("a pre-vote is granted without the voter changing its term or vote", () => {
    const c = new Driver(["a", "b", "c"]);
    c.campaign("a");
    expect(c.role("a")).toBe("preCandidate");
    c.stabilize((e) => e.message.type === "raft.vote" && e.to === "b");
    expect(c.ctx("b").term).toBe(0);
    expect(c.ctx("b").vote).toBeNull();
  });
});

describe("ReadIndex (thesis §6.4)", () => {
  it("confirms leadership with a heartbeat quorum before answering, without writing the log", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    const last = c.member("a").log.lastIndex;
    c.send("a", { type: "read", id: 7 });
    expect(c.reads).toHaveLength(0);
    c.stabilize();
    expect(c.reads).toEqual([{ id: 7, ok: true, index: c.ctx("a").commitIndex }]);
    expect(c.member("a").log.lastIndex).toBe(last);
  });

  it("does not answer while the leader cannot reach a quorum", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    c.send("a", { type: "read", id: 1 });
    c.drop(() => true);
    expect(c.reads).toHaveLength(0);
  });

  it("an acknowledgement confirms a read round only if it answers a heartbeat this leader sent in this term", () => {
    // The review's sequence: a leads term 1 far into its round counter; one of its heartbeats to b
    // is delayed; a restarts (the counter starts again at 0) and wins term 2; the old heartbeat
    // reaches b, whose refusal would echo the old round with b's new term. That refusal must not
    // confirm a read of term 2: meanwhile b and c may have elected another leader and committed.
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    for (let i = 0; i < 40; i++) {
      c.tick("a");
      c.stabilize();
    }
    c.tick("a");
    const delayed = c.queue.filter((e) => e.from === "a" && e.to === "b" && e.message.type === "raft.append");
    expect(delayed.length).toBeGreaterThan(0);
    c.drop(() => true);
    c.restart("a");
    // b and c stop hearing from the old leader for an election timeout; then a wins term 2.
    for (const id of ["b", "c"]) c.tick(id, c.options.electionTicks);
    c.drop(() => true);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    expect(c.ctx("a").term).toBe(2);
    c.queue.push(...delayed);
    c.stabilize((e) => e.to === "b");
    const staleReply = c.queue.filter((e) => e.from === "b" && e.to === "a");
    expect(staleReply.map((e) => e.message.type)).toEqual(["raft.append.resp"]);
    // a is cut off from here on; a read starts, then only the stale refusal arrives.
    c.send("a", { type: "read", id: 11 });
    c.drop(() => true);
    c.queue.push(...staleReply);
    c.stabilize();
    expect(c.reads.filter((r) => r.id === 11)).toEqual([]);
    // b is a correct peer: its refusal must not even look like an answer to a round of term 2.
    expect(c.observations.filter((o) => o.observation.kind === "refused")).toEqual([]);
  });

  it("a leader serves a read only after a quorum acknowledged a heartbeat sent after the read arrived", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.tick("a");
    // Acknowledgements of heartbeats sent before the read are in flight; they do not confirm it.
    const earlier = c.queue.splice(0);
    c.send("a", { type: "read", id: 12 });
    const round = c.queue.splice(0);
    c.queue.push(...earlier);
    c.stabilize();
    expect(c.reads.filter((r) => r.id === 12)).toEqual([]);
    c.queue.push(...round);
    c.stabilize();
    expect(c.reads.filter((r) => r.id === 12)).toEqual([{ id: 12, ok: true, index: c.ctx("a").commitIndex }]);
  });

  it("a follower refuses reads and names the leader", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.send("b", { type: "read", id: 3 });
    expect(c.reads).toEqual([{ id: 3, ok: false, leader: "a" }]);
  });
});

describe("Term hygiene", () => {
  it("a leader that sees a higher term steps down", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    const term = c.ctx("a").term;
    c.send("a", {
      type: "message",
      from: "b",
      message: {
        type: "raft.append.resp",
        body: { term: term + 5, success: false, index: 0, lastIndex: 0, conflictIndex: 0, conflictTerm: 0, seq: 0 },
      },
    });
    expect(c.role("a")).toBe("follower");
    expect(c.ctx("a").term).toBe(term + 5);
  });

  it("a stale leader's AppendEntries is answered with the newer term", () => {
    const c = new Driver(["a", "b"]);
    c.elect("a");
    c.send("b", {
      type: "message",
      from: "a",
      message: {
        type: "raft.append",
        body: { term: 0, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, entries: packEntries([]), seq: 1 },
      },
    });
    const reply = c.queue.findLast((e) => e.from === "b");
    expect(reply?.message.body).toMatchObject({ term: 1, success: false });
  });
});

describe("Leadership transfer (thesis §3.10)", () => {
  it("the leader brings the target up to date, sends TimeoutNow, and the target wins without waiting out a timeout", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    // b misses an entry, so it must be caught up before TimeoutNow.
    c.propose("a", "x");
    c.drop((e) => e.to === "b");
    c.stabilize();
    expect(c.member("b").log.lastIndex).toBeLessThan(c.member("a").log.lastIndex);
    c.send("a", { type: "transfer", to: "b" });
    c.stabilize((e) => e.message.type !== "raft.timeout-now");
    expect(c.member("b").log.lastIndex).toBe(c.member("a").log.lastIndex);
    const timeoutNow = c.queue.find((e) => e.message.type === "raft.timeout-now");
    expect(timeoutNow?.to).toBe("b");
    c.stabilize();
    expect(c.role("b")).toBe("leader");
    expect(c.ctx("b").term).toBe(c.ctx("a").term);
    expect(c.role("a")).toBe("follower");
  });

  it("a transfer campaign is not ignored by voters that still hear the old leader", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.tick("a");
    c.stabilize();
    c.send("a", { type: "transfer", to: "c" });
    c.stabilize();
    expect(c.role("c")).toBe("leader");
  });

  it("proposals are refused during a transfer, naming the target, and accepted by the new leader", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.send("a", { type: "transfer", to: "b" });
    c.propose("a", "during");
    expect(c.proposals.at(-1)).toMatchObject({ ok: false, reason: "transferring", leader: "b" });
    c.stabilize();
    c.propose("b", "after");
    expect(c.proposals.at(-1)).toMatchObject({ ok: true });
  });

  it("a transfer that does not complete within an election timeout is aborted and the leader carries on", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.send("a", { type: "transfer", to: "b" });
    c.drop((e) => e.to === "b");
    c.tickWithout("a", "b", c.options.electionTicks);
    expect(c.role("a")).toBe("leader");
    c.propose("a", "resumed");
    expect(c.proposals.at(-1)).toMatchObject({ ok: true });
  });

  it("a follower refuses to start a transfer", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.send("b", { type: "transfer", to: "c" });
    expect(c.role("b")).toBe("follower");
    expect(c.role("a")).toBe("leader");
  });
});

describe("Raft §7 log compaction and InstallSnapshot", () => {
  const snapshotOf = (c: Driver, leader: string, index: number) => ({
    type: "snapshot" as const,
    from: leader,
    term: c.ctx(leader).term,
    index,
    lastTerm: c.member(leader).log.term(index) ?? 0,
    config: c.member(leader).log.configAt(index),
    data: new TextEncoder().encode(`state@${index}`),
  });

  it("a leader sends a snapshot to a follower that needs entries it has compacted away", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.drop((e) => e.to === "c");
    c.propose("a", "1", "2", "3");
    c.stabilize((e) => e.to !== "c");
    c.tick("a");
    c.stabilize((e) => e.to !== "c");
    const commit = c.ctx("a").commitIndex;
    c.send("a", { type: "compacted", index: commit });
    expect(c.member("a").log.snapshotIndex).toBe(commit);
    c.drop((e) => e.to === "c");
    c.tick("a"); // the heartbeat finds c behind; probing it needs compacted entries
    c.stabilize();
    expect(c.snapshotSends).toContainEqual({ from: "a", to: "c" });
    expect(c.ctx("a").progress.c?.state).toBe("snapshot");
  });

  it("a follower installs a snapshot, discarding a log that does not match it, and acknowledges its index", () => {
    const c = new Driver(["a", "b"]);
    c.elect("a");
    c.propose("a", "x", "y");
    c.stabilize();
    c.tick("a");
    c.stabilize();
    const fresh = new Driver(["a", "b"]);
    fresh.elect("a");
    // b of the fresh cluster has only its own short log; a snapshot at the other leader's index replaces it.
    const snap = { ...snapshotOf(c, "a", 3), term: fresh.ctx("a").term + 1, lastTerm: 9 };
    fresh.send("b", snap);
    expect(fresh.installs.at(-1)).toMatchObject({ at: "b", install: { index: 3, term: 9, discardLog: true } });
    expect(fresh.member("b").log.snapshotIndex).toBe(3);
    expect(fresh.member("b").log.lastIndex).toBe(3);
    expect(fresh.ctx("b").commitIndex).toBe(3);
    const ack = fresh.queue.findLast((e) => e.from === "b" && e.message.type === "raft.append.resp");
    expect(ack?.message.body).toMatchObject({ success: true, index: 3 });
    expect(ack?.afterPersist).toBe(true);
  });

  it("a follower keeps the suffix of its log that follows a matching snapshot", () => {
    const c = new Driver(["a", "b"]);
    c.elect("a");
    c.propose("a", "1", "2", "3", "4");
    c.stabilize();
    const before = c.member("b").log.lastIndex;
    c.send("b", { ...snapshotOf(c, "a", 3) });
    expect(c.installs.at(-1)?.install.discardLog).toBe(false);
    expect(c.member("b").log.lastIndex).toBe(before);
    expect(c.member("b").log.snapshotIndex).toBe(3);
  });

  it("a stale snapshot (at or below the commit index) is acknowledged, not installed, so transfers never loop", () => {
    const c = new Driver(["a", "b"]);
    c.elect("a");
    c.propose("a", "1", "2");
    c.stabilize();
    c.tick("a");
    c.stabilize();
    const commit = c.ctx("b").commitIndex;
    const installs = c.installs.length;
    c.send("b", snapshotOf(c, "a", 2));
    expect(c.installs.length).toBe(installs);
    const ack = c.queue.findLast((e) => e.from === "b" && e.message.type === "raft.append.resp");
    expect(ack?.message.body).toMatchObject({ success: true, index: commit });
  });

  it("the leader resumes pipelined replication once the follower acknowledges the snapshot, and sends what it missed at once", () => {
    const c = new Driver(["a", "b", "c"]);
    c.elect("a");
    c.drop((e) => e.to === "c");
    c.propose("a", "1", "2", "3");
    c.stabilize((e) => e.to !== "c");
    c.tick("a");
    c.stabilize((e) => e.to !== "c");
    c.send("a", { type: "compacted", index: c.ctx("a").commitIndex });
    // c's pipeline stalls; probing it again finds what it needs compacted away.
    for (let i = 0; i < c.options.electionTicks; i++) {
      c.tick("a");
      c.stabilize((e) => e.to !== "c");
      c.drop((e) => e.to === "c");
    }
    expect(c.ctx("a").progress.c?.state).toBe("snapshot");
    c.send("c", snapshotOf(c, "a", c.member("a").log.snapshotIndex));
    c.stabilize();
    expect(c.ctx("a").progress.c?.state).toBe("replicate");
    // c misses one broadcast while the load goes on: the next one does not follow its log.
    c.propose("a", "missed");
    c.drop((e) => e.to === "c");
    c.propose("a", "next");
    c.stabilize();
    expect(c.member("c").log.lastIndex).toBe(c.member("a").log.lastIndex);
  });
});
