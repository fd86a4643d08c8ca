import { ErrorCode, isQuorateError, type PaxosBallot } from "@quorate/core";
import { MemoryRaftStorage } from "@quorate/storage";
import { MemoryDisk } from "@quorate/storage/internal";
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import {
  NOOP,
  Proposer,
  ProposerReads,
  ProposerSlots,
  proposerLeadershipRules,
  proposerMachine,
  proposerRules,
  proposerStorageIn,
  resolveTopology,
} from "../src/internal.js";
import type { PaxosAccept } from "../src/messages.js";
import { ProposerOutbox } from "../src/outbox.js";
import { b, command, handTimers, manualDisk, msg, options, RecordingTransport, topology } from "./helpers.js";

function proposer(id = "p1", round = 0) {
  const out = new ProposerOutbox();
  const slots = new ProposerSlots();
  const reads = new ProposerReads();
  const actor = createActor(proposerMachine, {
    input: { id, topology, options, slots, reads, out, round, seed: 1 },
  }).start();
  const sent: ReturnType<ProposerOutbox["take"]>["messages"][number][] = [];
  const drain = () => {
    const taken = out.take();
    sent.push(...taken.messages);
    return taken;
  };
  return {
    actor,
    slots,
    sent,
    mode: () => String(actor.getSnapshot().value),
    ctx: () => actor.getSnapshot().context,
    tick(times = 1) {
      for (let i = 0; i < times; i++) actor.send({ type: "tick" });
      return drain();
    },
    deliver(from: string, message: ReturnType<typeof msg>) {
      actor.send({ type: "message", from, message });
      return drain();
    },
    /** Ticks until it campaigns, then has a1 and a2 promise with the given votes. */
    elect(votes: { a1?: PaxosAccept["proposals"]; a2?: PaxosAccept["proposals"]; ballots?: [number, number] } = {}) {
      for (let i = 0; i < 100 && this.mode() === "passive"; i++) this.tick();
      const ballot = this.ctx().ballot;
      const [r1, r2] = votes.ballots ?? [0, 0];
      for (const [acceptor, proposals, round] of [
        ["a1", votes.a1 ?? [], r1],
        ["a2", votes.a2 ?? [], r2],
      ] as const) {
        this.deliver(
          acceptor,
          msg("paxos.p1b", {
            ballot,
            truncated: 0,
            accepted: proposals.map((p) => ({ slot: p.slot, ballot: b(round, "p0"), value: p.value })),
            more: false,
          }),
        );
      }
      return ballot;
    },
    p2a() {
      return sent.filter((m) => m.type === "paxos.p2a").map((m) => m.body as PaxosAccept);
    },
  };
}

describe("proposer: leadership", () => {
  it("a passive proposer does not campaign while the active one's heartbeats arrive", () => {
    const p = proposer("p1");
    for (let i = 0; i < 50; i++) {
      p.deliver("p2", msg("paxos.heartbeat", { ballot: b(3, "p2"), nextSlot: 1, round: 1 }));
      p.tick();
    }
    expect(p.mode()).toBe("passive");
    expect(p.ctx().leader).toBe("p2");
    expect(p.sent.some((m) => m.type === "paxos.p1a")).toBe(false);
  });

  it("campaigns with a round above every ballot it heard once heartbeats stop", () => {
    const p = proposer("p1");
    p.deliver("p2", msg("paxos.heartbeat", { ballot: b(3, "p2"), nextSlot: 1, round: 1 }));
    p.tick(20);
    expect(p.mode()).toBe("scouting");
    const p1a = p.sent.find((m) => m.type === "paxos.p1a");
    expect(p1a?.body).toEqual({ ballot: b(4, "p1"), fromSlot: 1 });
    expect(p1a?.afterPersist).toBe(true);
  });

  it("phase 1 once: a stable leader proposes new slots without phase 1", () => {
    const p = proposer();
    p.elect();
    expect(p.mode()).toBe("active");
    const p1as = p.sent.filter((m) => m.type === "paxos.p1a").length;
    p.deliver("l1", msg("paxos.request", { requests: [{ seq: 1, kind: 0, data: new Uint8Array([1]) }] }));
    p.deliver("l2", msg("paxos.request", { requests: [{ seq: 1, kind: 0, data: new Uint8Array([2]) }] }));
    expect(p.sent.filter((m) => m.type === "paxos.p1a")).toHaveLength(p1as);
    expect(p.p2a().map((x) => x.proposals.map((y) => y.slot))).toEqual([[1], [2]]);
  });

  it("on preemption it backs off, follows the higher ballot and stops its commanders", () => {
    const p = proposer();
    const ballot = p.elect();
    p.deliver("l1", msg("paxos.request", { requests: [{ seq: 1, kind: 0, data: new Uint8Array([1]) }] }));
    expect(Object.keys(p.actor.getSnapshot().children)).toHaveLength(1);
    p.deliver("a1", msg("paxos.nack", { ballot, promised: b(ballot[0] + 1, "p2"), truncated: 0 }));
    expect(p.mode()).toBe("passive");
    expect(p.ctx().leader).toBe("p2");
    expect(p.ctx().backoffTicks).toBeGreaterThan(0);
    expect(Object.keys(p.actor.getSnapshot().children)).toHaveLength(0);
  });

  it("an active proposer that hears no phase-2 quorum within an election timeout steps down", () => {
    const p = proposer();
    p.elect();
    // An election timeout of silence from every acceptor: still active, heartbeating.
    p.tick(options.leaderTimeoutTicks);
    expect(p.mode()).toBe("active");
    p.tick();
    expect(p.mode()).toBe("passive");
    expect(p.ctx().leader).toBeNull();
    // Passive, it no longer heartbeats: the other proposers time out and campaign.
    const heartbeats = p.sent.filter((m) => m.type === "paxos.heartbeat").length;
    p.tick(2);
    expect(p.sent.filter((m) => m.type === "paxos.heartbeat")).toHaveLength(heartbeats);
  });

  it("an active proposer that hears a phase-2 quorum answer at its ballot stays active", () => {
    const p = proposer();
    const ballot = p.elect();
    for (let i = 0; i < 5 * options.leaderTimeoutTicks; i++) {
      p.tick();
      // Empty p2b: the acceptors' answers to its heartbeats.
      if (i % 3 === 0)
        for (const a of ["a1", "a3"]) p.deliver(a, msg("paxos.p2b", { ballot, slots: [], truncated: 0 }));
    }
    expect(p.mode()).toBe("active");
  });

  it("answers from fewer than a phase-2 quorum, or at another ballot, do not keep it active", () => {
    for (const answers of [
      (ballot: PaxosBallot) => [["a1", ballot]] as const,
      (ballot: PaxosBallot) =>
        [
          ["a1", ballot],
          ["a2", b(ballot[0] - 1, "p2")],
        ] as const,
    ]) {
      const p = proposer();
      const ballot = p.elect();
      for (let i = 0; i <= options.leaderTimeoutTicks; i++) {
        for (const [a, at] of answers(ballot)) p.deliver(a, msg("paxos.p2b", { ballot: at, slots: [], truncated: 0 }));
        p.tick();
      }
      expect(p.mode()).toBe("passive");
    }
  });

  it("only acceptors count toward the quorum check, and a proposer that hears a quorum never steps down", () => {
    const p = proposer();
    p.elect();
    const d = { ...p.ctx() };
    expect(() => proposerLeadershipRules.hearAcceptor(d, "l1")).toThrow(
      /invariant violated: proposer p1 counted 'l1', not an acceptor/,
    );
    expect(() => proposerRules.stepDown(d)).toThrow(/invariant violated: proposer p1 stepped down while it hears/);
  });

  it("ballots only grow and proposals stay within (truncated, nextSlot): both asserted", () => {
    const p = proposer();
    const ballot = p.elect();
    const children = { spawnCommander: () => {}, send: () => {}, stop: () => {} };
    // Positive: a campaign takes a round above its ballot and every ballot heard.
    const draft = { ...p.ctx() };
    proposerRules.startCampaign(draft);
    expect(draft.ballot[0]).toBe(ballot[0] + 1);
    // Negative: a round counter set back would reuse a round.
    const reused = { ...p.ctx(), round: ballot[0] - 1, ballot: b(ballot[0] + 5, "p1") };
    expect(() => proposerRules.startCampaign(reused)).toThrow(/invariant violated: proposer p1 campaigns at round/);
    const request = { requests: [{ seq: 9, kind: 0 as const, data: new Uint8Array([9]) }] };
    const truncatedAhead = { ...p.ctx() };
    // A slot below the truncation point: refused loudly rather than proposed.
    truncatedAhead.truncated = truncatedAhead.nextSlot;
    expect(() => proposerRules.proposeRequests(truncatedAhead, "l1", request, children)).toThrow(
      /invariant violated: proposer p1 proposes slot \d+ outside/,
    );
  });

  it("a heartbeat from a higher ballot makes the active proposer passive", () => {
    const p = proposer();
    const ballot = p.elect();
    p.deliver("p2", msg("paxos.heartbeat", { ballot: b(ballot[0] + 1, "p2"), nextSlot: 9, round: 1 }));
    expect(p.mode()).toBe("passive");
  });
});

describe("proposer: reads confirmed by a heartbeat round (ReadIndex)", () => {
  const alive = (ballot: PaxosBallot, round: number) => msg("paxos.alive", { ballot, round, truncated: 0 });
  const readIndexes = (p: ReturnType<typeof proposer>) =>
    p.sent.filter((m) => m.type === "paxos.read.index").map((m) => ({ to: m.to, body: m.body }));
  const heartbeatRounds = (p: ReturnType<typeof proposer>) => [
    ...new Set(p.sent.filter((m) => m.type === "paxos.heartbeat").map((m) => (m.body as { round: number }).round)),
  ];

  it("a read gets the highest slot proposed as it arrived, once a phase-2 quorum answered a round sent after it", () => {
    const p = proposer();
    const ballot = p.elect();
    p.deliver("l1", msg("paxos.request", { requests: [{ seq: 1, kind: 0, data: new Uint8Array([1]) }] }));
    // Round 1 (sent on adoption) is in flight: the read waits for round 2, sent once round 1 is answered.
    expect(heartbeatRounds(p)).toEqual([1]);
    p.deliver("l1", msg("paxos.read", { reads: [5] }));
    expect(heartbeatRounds(p)).toEqual([1]);
    for (const a of ["a1", "a2"]) p.deliver(a, alive(ballot, 1));
    expect(readIndexes(p)).toEqual([]);
    expect(heartbeatRounds(p)).toEqual([1, 2]);
    // A slot proposed after the read arrived is not its index.
    p.deliver("l1", msg("paxos.request", { requests: [{ seq: 2, kind: 0, data: new Uint8Array([2]) }] }));
    p.deliver("a1", alive(ballot, 2));
    expect(readIndexes(p)).toEqual([]);
    p.deliver("a3", alive(ballot, 2));
    expect(readIndexes(p)).toEqual([{ to: "l1", body: { reads: [5], slot: 1 } }]);
  });

  it("a round for reads goes to each acceptor alone and leaves the periodic heartbeat's timer running", () => {
    const p = proposer();
    const ballot = p.elect();
    for (const a of ["a1", "a2"]) p.deliver(a, alive(ballot, 1));
    const elapsed = p.ctx().heartbeatElapsed;
    const before = p.sent.length;
    p.deliver("l1", msg("paxos.read", { reads: [3] }));
    expect(p.sent.slice(before)).toEqual(
      ["a1", "a2", "a3"].map((to) => ({
        to,
        type: "paxos.heartbeat",
        body: { ballot, nextSlot: 1, round: 2 },
        afterPersist: false,
      })),
    );
    expect(p.ctx().heartbeatElapsed).toBe(elapsed);
    // The periodic heartbeat is still a broadcast, with the next round.
    p.tick(options.heartbeatTicks);
    expect(p.sent.at(-1)).toEqual(
      expect.objectContaining({ to: null, type: "paxos.heartbeat", body: expect.objectContaining({ round: 3 }) }),
    );
  });

  it("answers at another ballot, from non-acceptors, or repeated by one acceptor confirm nothing", () => {
    const p = proposer();
    const ballot = p.elect();
    for (const a of ["a1", "a2"]) p.deliver(a, alive(ballot, 1));
    p.deliver("l1", msg("paxos.read", { reads: [7] }));
    expect(heartbeatRounds(p)).toEqual([1, 2]);
    p.deliver("a1", alive(ballot, 2));
    p.deliver("a1", alive(ballot, 2));
    p.deliver("l2", alive(ballot, 2));
    p.deliver("a2", alive(b(ballot[0] - 1, "p2"), 2));
    // A round never sent is no answer either.
    p.deliver("a3", alive(ballot, 9));
    expect(readIndexes(p)).toEqual([]);
    expect(p.ctx().reads.size).toBe(1);
    p.deliver("a2", alive(ballot, 2));
    expect(readIndexes(p)).toEqual([{ to: "l1", body: { reads: [7], slot: 0 } }]);
    expect(p.ctx().reads.size).toBe(0);
  });

  it("a passive proposer answers no reads, and one that steps down drops the reads it held", () => {
    const passive = proposer();
    passive.deliver("l1", msg("paxos.read", { reads: [1] }));
    expect(passive.ctx().reads.size).toBe(0);
    const p = proposer();
    const ballot = p.elect();
    p.deliver("l1", msg("paxos.read", { reads: [1] }));
    expect(p.ctx().reads.size).toBe(1);
    p.deliver("p2", msg("paxos.heartbeat", { ballot: b(ballot[0] + 1, "p2"), nextSlot: 1, round: 1 }));
    expect(p.mode()).toBe("passive");
    expect(p.ctx().reads.size).toBe(0);
    for (const a of ["a1", "a2", "a3"]) p.deliver(a, alive(ballot, 2));
    expect(readIndexes(p)).toEqual([]);
  });

  it("reads queue in round order, and a confirmed round never exceeds the rounds sent", () => {
    const reads = new ProposerReads();
    reads.add({ learner: "l1", reads: [1], slot: 0, round: 2 });
    expect(() => reads.add({ learner: "l1", reads: [2], slot: 0, round: 1 })).toThrow(
      /invariant violated: read round 1 below 2/,
    );
    const p = proposer();
    p.elect();
    const d = { ...p.ctx(), acceptorRounds: { a1: 5, a2: 5 } };
    expect(() => proposerLeadershipRules.confirmedRound(d)).toThrow(
      /invariant violated: round 5 confirmed, above the 1 sent/,
    );
    expect(() => proposerLeadershipRules.hearRead(d, "a1", { reads: [1] })).toThrow(
      /invariant violated: proposer p1 took reads from 'a1', not a learner/,
    );
  });
});

describe("proposer: a new leader's phase 2", () => {
  it("new leader re-proposes the highest accepted value", () => {
    const p = proposer();
    const ballot = p.elect({
      a1: [{ slot: 1, value: command("old") }],
      a2: [{ slot: 1, value: command("newer") }],
      ballots: [1, 2],
    });
    const [first] = p.p2a();
    expect(first?.ballot).toEqual(ballot);
    expect(first?.proposals).toEqual([{ slot: 1, value: command("newer") }]);
  });

  it("holes are filled with no-ops", () => {
    const p = proposer();
    p.elect({ a1: [{ slot: 1, value: command("x") }], a2: [{ slot: 3, value: command("z") }] });
    const proposals = p.p2a().flatMap((x) => x.proposals);
    expect(proposals.map((x) => x.slot)).toEqual([1, 2, 3]);
    expect(proposals[1]?.value).toEqual(NOOP);
    // New requests go after the re-proposed slots.
    p.deliver("l1", msg("paxos.request", { requests: [{ seq: 7, kind: 0, data: new Uint8Array([7]) }] }));
    expect(p.p2a().at(-1)?.proposals[0]?.slot).toBe(4);
  });

  it("slots at or below the truncation point are never proposed again", () => {
    const p = proposer();
    for (let i = 0; i < 100 && p.mode() === "passive"; i++) p.tick();
    const ballot = p.ctx().ballot;
    p.deliver("a1", msg("paxos.p1b", { ballot, truncated: 5, accepted: [], more: false }));
    p.deliver(
      "a2",
      msg("paxos.p1b", {
        ballot,
        truncated: 2,
        accepted: [3, 4, 6].map((slot) => ({ slot, ballot: b(1, "p0"), value: command(`${slot}`) })),
        more: false,
      }),
    );
    expect(p.p2a().flatMap((x) => x.proposals.map((y) => y.slot))).toEqual([6]);
  });

  it("a retransmitted request gets no second slot", () => {
    const p = proposer();
    p.elect();
    const request = msg("paxos.request", { requests: [{ seq: 1, kind: 0, data: new Uint8Array([1]) }] });
    p.deliver("l1", request);
    p.deliver("l1", request);
    expect(p.p2a().flatMap((x) => x.proposals)).toHaveLength(1);
  });

  it("commanders retransmit p2a until a phase-2 quorum voted, then report the slots decided", () => {
    const p = proposer();
    const ballot = p.elect();
    p.deliver("l1", msg("paxos.request", { requests: [{ seq: 1, kind: 0, data: new Uint8Array([1]) }] }));
    const before = p.p2a().length;
    p.tick(options.retransmitTicks);
    expect(p.p2a().length).toBeGreaterThan(before);
    p.deliver("a1", msg("paxos.p2b", { ballot, slots: [1], truncated: 0 }));
    expect(p.slots.get(1)?.chosen).toBe(false);
    p.deliver("a3", msg("paxos.p2b", { ballot, slots: [1], truncated: 0 }));
    expect(p.slots.get(1)?.chosen).toBe(true);
    expect(p.slots.inflight).toBe(0);
    // Decided slots are not sent again.
    const decided = p.p2a().length;
    p.tick(options.retransmitTicks * 2);
    expect(p.p2a()).toHaveLength(decided);
  });

  it("one commander child per ballot drives every batch, spawned on adoption and stopped on leaving active mode", () => {
    const p = proposer();
    const ballot = p.elect();
    const children = () => Object.keys(p.actor.getSnapshot().children);
    expect(children()).toEqual(["commander"]);
    for (let seq = 1; seq <= 3; seq++) {
      p.deliver("l1", msg("paxos.request", { requests: [{ seq, kind: 0, data: new Uint8Array([seq]) }] }));
    }
    expect(p.slots.inflight).toBe(3);
    expect(children()).toEqual(["commander"]);
    // One p2b covering two batches decides both; the third batch is still driven.
    for (const a of ["a1", "a2"]) p.deliver(a, msg("paxos.p2b", { ballot, slots: [1, 3], truncated: 0 }));
    expect([1, 2, 3].map((slot) => p.slots.get(slot)?.chosen)).toEqual([true, false, true]);
    expect(p.slots.inflight).toBe(1);
    const sent = p.p2a().length;
    p.tick(options.retransmitTicks);
    expect(
      p
        .p2a()
        .slice(sent)
        .map((x) => x.proposals.map((y) => y.slot)),
    ).toEqual([[2]]);
    expect(children()).toEqual(["commander"]);
    p.deliver("a1", msg("paxos.nack", { ballot, promised: b(ballot[0] + 1, "p2"), truncated: 0 }));
    expect(children()).toEqual([]);
  });

  it("with maxInflightAccepts batches undecided, requests wait and leave together in one p2a once one is decided", () => {
    const p = proposer();
    const ballot = p.elect();
    const request = (learner: string, seq: number) =>
      p.deliver(learner, msg("paxos.request", { requests: [{ seq, kind: 0, data: new Uint8Array([seq]) }] }));
    const firstP2a = p.p2a().length;
    for (let seq = 1; seq <= options.maxInflightAccepts; seq++) request("l1", seq);
    expect(p.p2a().length).toBe(firstP2a + options.maxInflightAccepts);
    expect(p.slots.inflight).toBe(options.maxInflightAccepts);
    // The pipeline is full: these take slots but wait.
    request("l1", 100);
    request("l2", 1);
    expect(p.p2a().length).toBe(firstP2a + options.maxInflightAccepts);
    expect(p.slots.queued).toBe(2);
    expect(p.slots.undecided).toBe(options.maxInflightAccepts + 2);
    for (const a of ["a1", "a2"]) p.deliver(a, msg("paxos.p2b", { ballot, slots: [1], truncated: 0 }));
    const batch = p.p2a().at(-1);
    expect(p.p2a().length).toBe(firstP2a + options.maxInflightAccepts + 1);
    expect(batch?.proposals.map((x) => [x.slot, x.value.origin, x.value.seq])).toEqual([
      [options.maxInflightAccepts + 1, "l1", 100],
      [options.maxInflightAccepts + 2, "l2", 1],
    ]);
    expect(p.slots.queued).toBe(0);
  });

  it("queued slots are ascending and never replace a proposal", () => {
    const slots = new ProposerSlots();
    slots.queue(3, command("a"));
    expect(() => slots.queue(2, command("b"))).toThrow(/invariant violated: slot 2 queued after slot 3/);
    expect(() => slots.queue(3, command("b"))).toThrow(/invariant violated: slot 3 queued while it holds a proposal/);
    expect(slots.takeQueued()).toEqual([{ slot: 3, value: command("a") }]);
    expect(slots.queued).toBe(0);
  });

  it("a fill request for a decided slot drives it again with the same value", () => {
    const p = proposer();
    const ballot = p.elect();
    p.deliver("l1", msg("paxos.request", { requests: [{ seq: 1, kind: 0, data: new Uint8Array([1]) }] }));
    for (const a of ["a1", "a2"]) p.deliver(a, msg("paxos.p2b", { ballot, slots: [1], truncated: 0 }));
    const before = p.p2a().length;
    p.deliver("l2", msg("paxos.fill", { slots: [1] }));
    expect(p.p2a().length).toBe(before + 1);
    expect(p.p2a().at(-1)?.proposals[0]?.value.seq).toBe(1);
  });
});

describe("proposer host", () => {
  async function start(disk: MemoryDisk, schedule?: (f: () => void) => void, machine = proposerMachine) {
    const clock = handTimers();
    const transport = new RecordingTransport("p1");
    const storage = proposerStorageIn(new MemoryRaftStorage(disk, schedule === undefined ? {} : { schedule }));
    const node = await Proposer.start({
      id: "p1",
      topology,
      transport,
      storage,
      paxos: options,
      timers: clock.timers,
      machine,
    });
    for (let i = 0; i < 100 && node.mode === "passive" && node.failure === null; i++) clock.tick();
    return { node, transport, clock };
  }

  it("a failed invariant stops the proposer with a clear error: it campaigns and heartbeats no more", async () => {
    // A machine whose passive tick breaks a rule's invariant: stepping down with nothing to step down from.
    const broken = proposerMachine.provide({
      actions: { tickPassive: ({ context }) => proposerRules.stepDown(context) },
    });
    const { node, transport, clock } = await start(new MemoryDisk(), undefined, broken);
    expect(isQuorateError(node.failure, ErrorCode.Invariant)).toBe(true);
    expect(node.failure?.message).toMatch(/proposer p1 stepped down while it hears a phase-2 quorum/);
    for (let i = 0; i < 20; i++) clock.tick();
    transport.deliver("l1", "paxos.request", { requests: [{ seq: 1, kind: 0, data: new Uint8Array([1]) }] });
    expect(transport.sent).toHaveLength(0);
  });

  it("the round is durable before the p1a that carries it leaves, and a restart never reuses it", async () => {
    const disk = new MemoryDisk();
    const durability = manualDisk();
    const first = await start(disk, durability.schedule);
    expect(first.node.mode).toBe("scouting");
    expect(first.transport.ofType("paxos.p1a")).toHaveLength(0);
    durability.flush();
    await new Promise((r) => setTimeout(r, 0));
    const sent = first.transport.ofType("paxos.p1a")[0]?.body as { ballot: [number, string] };
    expect(sent.ballot[0]).toBe(1);
    first.node.kill();
    disk.crash();
    const second = await start(disk);
    await new Promise((r) => setTimeout(r, 0));
    const again = second.transport.ofType("paxos.p1a")[0]?.body as { ballot: [number, string] };
    expect(again.ballot[0]).toBeGreaterThan(1);
    await second.node.stop();
  });
});

describe("topology", () => {
  it("|Q1|+|Q2| ≤ N is rejected", () => {
    expect(() =>
      resolveTopology({ acceptors: ["a", "b", "c"], proposers: ["p"], learners: ["l"], q1: 2, q2: 1 }),
    ).toThrow(/phase-1 quorum \(2\) \+ phase-2 quorum \(1\) must exceed the number of acceptors \(3\)/);
    try {
      resolveTopology({ acceptors: ["a", "b", "c", "d"], proposers: ["p"], learners: ["l"], q1: 2, q2: 2 });
    } catch (err) {
      expect(isQuorateError(err, ErrorCode.Config)).toBe(true);
    }
  });

  it("flexible quorums: a large phase-1 quorum allows a small phase-2 quorum; majorities by default", () => {
    expect(resolveTopology({ acceptors: ["a", "b", "c"], proposers: ["p"], learners: ["l"], q1: 3, q2: 1 }).q2).toBe(1);
    const t = resolveTopology({ acceptors: ["a", "b", "c", "d", "e"], proposers: ["p"], learners: ["l", "m"] });
    expect([t.q1, t.q2, t.truncationQuorum]).toEqual([3, 3, 2]);
  });
});
