import { ErrorCode, isQuorateError, type PaxosValue } from "@quorate/core";
import { ruleFor } from "@quorate/core/internal";
import { encodeKvCommand, KvStateMachine } from "@quorate/kv";
import {
  Learner,
  type LearnerContext,
  type LearnerEvent,
  learnerMachine,
  learnerRules,
  learnerStorageIn,
} from "@quorate/paxos/internal";
import { encodeSessionCommand, SessionStateMachine } from "@quorate/service";
import { createMemoryStorage } from "@quorate/storage";
import { describe, expect, it } from "vitest";
import { b, handTimers, options, RecordingTransport, topology } from "../../../paxos/test/helpers.js";

function put(key: string, value: string, seq = 0, origin = "l9"): PaxosValue {
  return { kind: 0, data: encodeSessionCommand(null, encodeKvCommand({ op: "put", key, value })), origin, seq };
}

async function learner(machine = learnerMachine) {
  const clock = handTimers();
  const transport = new RecordingTransport("l1");
  const store = new KvStateMachine();
  const stateMachine = new SessionStateMachine(store);
  const node = await Learner.start({
    id: "l1",
    topology,
    transport,
    storage: learnerStorageIn(createMemoryStorage()),
    stateMachine,
    paxos: options,
    timers: clock.timers,
    machine,
  });
  const choose = (slot: number, value: PaxosValue, ballot = b(1, "p1"), voters = ["a1", "a2"]) => {
    transport.deliver("p1", "paxos.p2a", { ballot, proposals: [{ slot, value }] });
    for (const a of voters) transport.deliver(a, "paxos.p2b", { ballot, slots: [slot], truncated: 0 });
  };
  return {
    node,
    transport,
    store,
    stateMachine,
    choose,
    tick: (n = 1) => Array.from({ length: n }, () => clock.tick()),
  };
}

describe("learner", () => {
  it("votes beyond a phase-2 quorum for a chosen slot take no machine step; votes for open slots all do", async () => {
    const steps: string[] = [];
    const rule = ruleFor<LearnerContext, LearnerEvent>();
    const counting = learnerMachine.provide({
      actions: {
        step: rule<Extract<LearnerEvent, { type: "message" }>>((d, e) => {
          steps.push(`${e.message.type} ${e.from}`);
          learnerRules.stepLearner(d, e.from, e.message);
        }),
      },
    });
    const l = await learner(counting);
    l.choose(1, put("k", "1"), b(1, "p1"), ["a1", "a2", "a3"]);
    expect(l.node.appliedIndex).toBe(1);
    expect(steps).toEqual(["paxos.p2a p1", "paxos.p2b a1", "paxos.p2b a2"]);
    // One slot of a vote still open: the vote is stepped, and counts for that slot.
    l.transport.deliver("p1", "paxos.p2a", { ballot: b(1, "p1"), proposals: [{ slot: 2, value: put("k", "2") }] });
    l.transport.deliver("a1", "paxos.p2b", { ballot: b(1, "p1"), slots: [1, 2], truncated: 0 });
    l.transport.deliver("a3", "paxos.p2b", { ballot: b(1, "p1"), slots: [1, 2], truncated: 0 });
    expect(steps.slice(3)).toEqual(["paxos.p2a p1", "paxos.p2b a1", "paxos.p2b a3"]);
    expect(l.node.appliedIndex).toBe(2);
  });

  it("a failed invariant stops the learner with a clear error, and nothing of that step is applied", async () => {
    const l = await learner();
    l.transport.deliver("p1", "paxos.p2a", { ballot: b(1, "p1"), proposals: [{ slot: 1, value: put("k", "1") }] });
    l.transport.deliver("a1", "paxos.p2b", { ballot: b(1, "p1"), slots: [1], truncated: 0 });
    // a2 repeats slot 1 (choosing it), then reports another value at the same ballot for slot 2.
    l.transport.deliver("p1", "paxos.p2a", { ballot: b(1, "p1"), proposals: [{ slot: 2, value: put("k", "2") }] });
    l.transport.deliver("a2", "paxos.repeated", {
      truncated: 0,
      through: 2,
      accepted: [
        { slot: 1, ballot: b(1, "p1"), value: put("k", "1") },
        { slot: 2, ballot: b(1, "p1"), value: put("k", "other") },
      ],
    });
    expect(isQuorateError(l.node.failure, ErrorCode.Invariant)).toBe(true);
    expect(l.node.failure?.message).toMatch(/two values for slot 2/);
    expect(l.node.appliedIndex).toBe(0);
    expect(l.store.read("k")).toBeNull();
    await expect(l.node.propose(new Uint8Array([1]))).rejects.toSatisfy((err) => isQuorateError(err, ErrorCode.Closed));
  });

  it("a value is chosen only once a phase-2 quorum voted for it at one ballot", async () => {
    const l = await learner();
    l.transport.deliver("p1", "paxos.p2a", { ballot: b(1, "p1"), proposals: [{ slot: 1, value: put("k", "1") }] });
    l.transport.deliver("a1", "paxos.p2b", { ballot: b(1, "p1"), slots: [1], truncated: 0 });
    l.transport.deliver("a2", "paxos.p2b", { ballot: b(2, "p2"), slots: [1], truncated: 0 });
    expect(l.node.appliedIndex).toBe(0);
    l.transport.deliver("a3", "paxos.p2b", { ballot: b(1, "p1"), slots: [1], truncated: 0 });
    expect(l.node.appliedIndex).toBe(1);
    expect(l.store.read("k")).toBe("1");
  });

  it("learner applies in slot order", async () => {
    const l = await learner();
    l.choose(2, put("k", "second"));
    expect(l.node.appliedIndex).toBe(0);
    expect(l.node.chosen(2)).toBeDefined();
    l.choose(1, put("k", "first"));
    expect(l.node.appliedIndex).toBe(2);
    expect(l.store.read("k")).toBe("second");
  });

  it("detects a gap, asks acceptors to repeat, then asks the leader to fill the slots that stay empty", async () => {
    const l = await learner();
    l.transport.deliver("p1", "paxos.heartbeat", { ballot: b(1, "p1"), nextSlot: 4, round: 1 });
    l.choose(3, put("k", "3"));
    l.tick(options.catchupTicks);
    expect(l.transport.ofType("paxos.repeat").at(-1)?.body).toEqual({ from: 1, to: 3 });
    l.tick(options.catchupTicks * 2);
    const fill = l.transport.ofType("paxos.fill").at(-1);
    expect(fill).toEqual(expect.objectContaining({ to: "p1", body: { slots: [1, 2] } }));
    // Acceptors' repeated votes are counted like live ones.
    for (const a of ["a1", "a2"]) {
      l.transport.deliver(a, "paxos.repeated", {
        truncated: 0,
        accepted: [1, 2].map((slot) => ({ slot, ballot: b(1, "p1"), value: put("k", `${slot}`) })),
        through: 3,
      });
    }
    expect(l.node.appliedIndex).toBe(3);
  });

  it("lagging learner restores a snapshot from another learner when acceptors truncated past it", async () => {
    const source = new SessionStateMachine(new KvStateMachine());
    source.apply(encodeSessionCommand(null, encodeKvCommand({ op: "put", key: "old", value: "state" })), 1);
    const snapshot = source.snapshot();
    const l = await learner();
    l.transport.deliver("l2", "paxos.learned", { applied: 10, checkpoint: 10 });
    l.transport.deliver("p1", "paxos.heartbeat", { ballot: b(1, "p1"), nextSlot: 12, round: 1 });
    l.tick(options.catchupTicks);
    l.transport.deliver("a1", "paxos.repeated", { truncated: 10, accepted: [], through: 10 });
    l.tick(options.catchupTicks);
    expect(l.transport.ofType("paxos.snapshot.req").at(-1)).toEqual(
      expect.objectContaining({ to: "l2", body: { slot: 10, offset: 0 } }),
    );
    const half = Math.floor(snapshot.length / 2);
    l.transport.deliver("l2", "paxos.snapshot.chunk", {
      slot: 10,
      offset: 0,
      total: snapshot.length,
      data: snapshot.subarray(0, half),
    });
    expect(l.transport.ofType("paxos.snapshot.req").at(-1)?.body).toEqual({ slot: 10, offset: half });
    l.transport.deliver("l2", "paxos.snapshot.chunk", {
      slot: 10,
      offset: half,
      total: snapshot.length,
      data: snapshot.subarray(half),
    });
    expect(l.node.appliedIndex).toBe(10);
    expect(l.store.read("old")).toBe("state");
    l.choose(11, put("k", "after"));
    expect(l.node.appliedIndex).toBe(11);
  });

  it("refuses a proposal at once, as NotLeader, while it knows no active proposer", async () => {
    const l = await learner();
    const err = await l.node.propose(new Uint8Array([1])).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.NotLeader)).toBe(true);
    expect(l.transport.ofType("paxos.request")).toHaveLength(0);
  });

  it("a read barrier writes nothing: it asks the proposer for a read index and resolves once applied through it", async () => {
    const l = await learner();
    l.transport.deliver("p1", "paxos.heartbeat", { ballot: b(1, "p1"), nextSlot: 1, round: 1 });
    let done = false;
    const barrier = l.node.readBarrier().then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 0));
    expect(l.transport.ofType("paxos.request")).toHaveLength(0);
    const asked = l.transport.ofType("paxos.read");
    expect(asked).toHaveLength(1);
    expect(asked[0]?.to).toBe("p1");
    const [id] = (asked[0]?.body as { reads: number[] } | undefined)?.reads ?? [];
    // An answer for another read, or from a non-proposer, is no answer.
    l.transport.deliver("p1", "paxos.read.index", { reads: [(id ?? 0) + 1], slot: 0 });
    l.transport.deliver("a1", "paxos.read.index", { reads: [id ?? 0], slot: 0 });
    await new Promise((r) => setTimeout(r, 0));
    expect(done).toBe(false);
    l.transport.deliver("p1", "paxos.read.index", { reads: [id ?? 0], slot: 2 });
    l.choose(2, put("k", "later"));
    await new Promise((r) => setTimeout(r, 0));
    expect(done).toBe(false);
    l.choose(1, put("k", "v"));
    await barrier;
    expect(l.store.read("k")).toBe("later");
  });

  it("a read already applied through its index resolves as the index arrives, and unanswered reads are sent again to a new leader", async () => {
    const l = await learner();
    l.transport.deliver("p1", "paxos.heartbeat", { ballot: b(1, "p1"), nextSlot: 1, round: 1 });
    l.choose(1, put("k", "v"));
    const barrier = l.node.readBarrier();
    await new Promise((r) => setTimeout(r, 0));
    const [id] = (l.transport.ofType("paxos.read")[0]?.body as { reads: number[] } | undefined)?.reads ?? [];
    l.transport.deliver("p2", "paxos.heartbeat", { ballot: b(2, "p2"), nextSlot: 2, round: 1 });
    const resent = l.transport.ofType("paxos.read").filter((m) => m.to === "p2");
    expect(resent.map((m) => (m.body as { reads: number[] }).reads)).toEqual([[id]]);
    l.transport.deliver("p2", "paxos.read.index", { reads: [id ?? 0], slot: 1 });
    await barrier;
  });

  it("retransmits requests not yet chosen, and resends them at once to a new leader", async () => {
    const l = await learner();
    l.transport.deliver("p1", "paxos.heartbeat", { ballot: b(1, "p1"), nextSlot: 1, round: 1 });
    void l.node.propose(new Uint8Array([1])).catch(() => {});
    await new Promise((r) => setTimeout(r, 0));
    expect(l.transport.ofType("paxos.request")).toHaveLength(1);
    l.tick(options.retransmitTicks);
    expect(l.transport.ofType("paxos.request")).toHaveLength(2);
    l.transport.deliver("p2", "paxos.heartbeat", { ballot: b(2, "p2"), nextSlot: 1, round: 1 });
    expect(l.transport.ofType("paxos.request").at(-1)?.to).toBe("p2");
  });
});
