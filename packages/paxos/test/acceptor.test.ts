import { ErrorCode, isQuorateError } from "@quorate/core";
import { type RuleCheck, withGuards } from "@quorate/core/internal";
import { MemoryAcceptorStorage } from "@quorate/storage";
import { MemoryAcceptorDisk } from "@quorate/storage/internal";
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import {
  Acceptor,
  type AcceptorContext,
  type AcceptorGuardParams,
  AcceptorLog,
  acceptorMachine,
  acceptorRules,
} from "../src/internal.js";
import { AcceptorOutbox } from "../src/outbox.js";
import { b, command, manualDisk, msg, options, RecordingTransport, topology } from "./helpers.js";

function acceptor(init: { truncated?: number } = {}) {
  const log = new AcceptorLog({ truncated: init.truncated ?? 0, accepted: [] });
  const out = new AcceptorOutbox();
  const actor = createActor(acceptorMachine, {
    input: { id: "a1", topology, options, log, out, promised: [0, ""] },
  }).start();
  return {
    log,
    out,
    send: (from: string, message: ReturnType<typeof msg>) => {
      actor.send({ type: "message", from, message });
      return out.take();
    },
    promised: () => actor.getSnapshot().context.promised,
  };
}

describe("acceptor (Paxos.tla Phase1b/Phase2b)", () => {
  it("acceptor never accepts below its promise", () => {
    const a = acceptor();
    a.send("p2", msg("paxos.p1a", { ballot: b(5, "p2"), fromSlot: 1 }));
    const taken = a.send("p1", msg("paxos.p2a", { ballot: b(3, "p1"), proposals: [{ slot: 1, value: command("x") }] }));
    expect(a.log.get(1)).toBeUndefined();
    expect(taken.accepted).toHaveLength(0);
    expect(taken.messages).toEqual([
      expect.objectContaining({
        to: "p1",
        type: "paxos.nack",
        body: expect.objectContaining({ promised: b(5, "p2") }),
      }),
    ]);
  });

  it("an acceptor answers the active proposer's heartbeat: alive with its round at or above its promise, a nack below", () => {
    const a = acceptor();
    a.send("p1", msg("paxos.p1a", { ballot: b(2, "p1"), fromSlot: 1 }));
    const answered = a.send("p1", msg("paxos.heartbeat", { ballot: b(2, "p1"), nextSlot: 1, round: 7 }));
    expect(answered.messages).toEqual([
      { to: "p1", type: "paxos.alive", body: { ballot: b(2, "p1"), round: 7, truncated: 0 }, afterPersist: true },
    ]);
    // Nothing to write: the answer confirms a promise already made (and durable before it leaves).
    expect(answered.promised).toBeNull();
    expect(answered.accepted).toEqual([]);
    expect(a.send("p2", msg("paxos.heartbeat", { ballot: b(3, "p2"), nextSlot: 1, round: 1 })).messages[0]?.type).toBe(
      "paxos.alive",
    );
    // Answering changes nothing: the promise stays where p1a put it.
    expect(a.promised()).toEqual(b(2, "p1"));
    const stale = a.send("p2", msg("paxos.heartbeat", { ballot: b(1, "p2"), nextSlot: 1, round: 1 }));
    expect(stale.messages).toEqual([
      expect.objectContaining({
        to: "p2",
        type: "paxos.nack",
        body: expect.objectContaining({ promised: b(2, "p1") }),
      }),
    ]);
    expect(a.send("l1", msg("paxos.heartbeat", { ballot: b(9, "l1"), nextSlot: 1, round: 1 })).messages).toEqual([]);
  });

  it("ballots compare by round, then proposer id", () => {
    const a = acceptor();
    a.send("p2", msg("paxos.p1a", { ballot: b(5, "p2"), fromSlot: 1 }));
    expect(a.send("p1", msg("paxos.p1a", { ballot: b(5, "p1"), fromSlot: 1 })).messages[0]?.type).toBe("paxos.nack");
    expect(a.send("p1", msg("paxos.p1a", { ballot: b(6, "p1"), fromSlot: 1 })).messages[0]?.type).toBe("paxos.p1b");
  });

  it("accepts at a ballot at or above its promise and raises the promise (not PMMC's equality)", () => {
    const a = acceptor();
    a.send("p1", msg("paxos.p1a", { ballot: b(1, "p1"), fromSlot: 1 }));
    const taken = a.send("p2", msg("paxos.p2a", { ballot: b(2, "p2"), proposals: [{ slot: 1, value: command("y") }] }));
    expect(a.promised()).toEqual(b(2, "p2"));
    expect(taken.promised).toEqual(b(2, "p2"));
    expect(taken.accepted).toEqual([expect.objectContaining({ slot: 1, ballot: b(2, "p2") })]);
    expect(taken.messages[0]).toEqual(expect.objectContaining({ to: "p2", type: "paxos.p2b", afterPersist: true }));
  });

  it("p2b goes to the proposer of the accepted p2a and to every learner, each after the vote is durable", () => {
    const a = acceptor();
    const taken = a.send("p2", msg("paxos.p2a", { ballot: b(2, "p2"), proposals: [{ slot: 1, value: command("y") }] }));
    const vote = { ballot: b(2, "p2"), slots: [1], truncated: 0 };
    expect(taken.messages).toEqual(
      ["p2", "l1", "l2", "l3"].map((to) => ({ to, type: "paxos.p2b", body: vote, afterPersist: true })),
    );
    // Not the other proposer, the other acceptors, or a broadcast: they would decode it for nothing.
    expect(taken.messages.map((m) => m.to)).not.toContain("p1");
    expect(taken.messages.map((m) => m.to)).not.toContain(null);
  });

  it("p1b reports the highest-ballot vote per slot, in pages below the message size cap", () => {
    const a = acceptor();
    const big = new Uint8Array(options.maxMessageBytes / 2);
    const value = { kind: 0 as const, data: big, origin: "l1", seq: 1 };
    a.send("p1", msg("paxos.p2a", { ballot: b(1, "p1"), proposals: [1, 2, 3].map((slot) => ({ slot, value })) }));
    const first = a.send("p2", msg("paxos.p1a", { ballot: b(2, "p2"), fromSlot: 1 })).messages[0];
    expect(first?.type).toBe("paxos.p1b");
    const body = first?.body as { accepted: { slot: number }[]; more: boolean };
    expect(body.more).toBe(true);
    expect(body.accepted.map((x) => x.slot)).toEqual([1]);
    const next = a.send("p2", msg("paxos.p1a", { ballot: b(2, "p2"), fromSlot: 2 })).messages[0]?.body as {
      accepted: { slot: number }[];
    };
    expect(next.accepted[0]?.slot).toBe(2);
  });

  it("retransmitted p2a is answered idempotently", () => {
    const a = acceptor();
    const p2a = msg("paxos.p2a", { ballot: b(1, "p1"), proposals: [{ slot: 1, value: command("x") }] });
    const first = a.send("p1", p2a);
    const again = a.send("p1", p2a);
    expect(first.accepted).toHaveLength(1);
    expect(again.accepted).toHaveLength(0);
    expect(again.promised).toBeNull();
    expect(again.messages).toEqual(first.messages);
    expect(again.messages[0]).toEqual(expect.objectContaining({ type: "paxos.p2b", to: "p1" }));
  });

  it("truncation below the checkpoint: slots a quorum of learners checkpointed are dropped and never voted on again", () => {
    const a = acceptor();
    a.send(
      "p1",
      msg("paxos.p2a", {
        ballot: b(1, "p1"),
        proposals: [1, 2, 3, 4].map((slot) => ({ slot, value: command(`${slot}`) })),
      }),
    );
    expect(a.send("l1", msg("paxos.learned", { applied: 4, checkpoint: 3 })).truncateThrough).toBeNull();
    const taken = a.send("l2", msg("paxos.learned", { applied: 4, checkpoint: 2 }));
    expect(taken.truncateThrough).toBe(2);
    expect(a.log.get(2)).toBeUndefined();
    expect(a.log.get(3)).toBeDefined();
    const p2b = a.send("p1", msg("paxos.p2a", { ballot: b(1, "p1"), proposals: [{ slot: 1, value: command("z") }] }));
    expect(p2b.accepted).toHaveLength(0);
    expect(p2b.messages[0]?.body).toEqual({ ballot: b(1, "p1"), slots: [], truncated: 2 });
  });

  it("an acceptor holding a vote at a ballot never records a different value at that ballot", () => {
    const d: AcceptorContext = {
      id: "a1",
      topology,
      options,
      log: new AcceptorLog({ truncated: 0, accepted: [] }),
      out: new AcceptorOutbox(),
      promised: b(0, ""),
      checkpoints: {},
    };
    const p2a = (value: string) => ({ ballot: b(1, "p1"), proposals: [{ slot: 1, value: command(value) }] });
    // The rule as the machine runs it: with the acceptor's own guards.
    const guards: RuleCheck = (guard, params) =>
      guard === "acceptsBallot" && acceptorRules.acceptsBallot(params as AcceptorGuardParams["acceptsBallot"]);
    const accept = (value: string) => withGuards(guards, () => acceptorRules.handleAccept(d, "p1", p2a(value)));
    accept("x");
    // The same value again is a retransmission; another one at that ballot is impossible.
    accept("x");
    expect(() => accept("y")).toThrow(
      /invariant violated: acceptor a1 holds a vote for slot 1 at \[1,p1\] and was asked to record another value/,
    );
    expect(d.log.get(1)?.value).toEqual(command("x"));
  });

  it("ignores messages of roles that are not in the topology", () => {
    const a = acceptor();
    expect(a.send("intruder", msg("paxos.p1a", { ballot: b(9, "intruder"), fromSlot: 1 })).messages).toHaveLength(0);
  });
});

describe("acceptor host", () => {
  async function hosted() {
    const disk = manualDisk();
    const transport = new RecordingTransport("a1");
    const storage = new MemoryAcceptorStorage(new MemoryAcceptorDisk(), { schedule: disk.schedule });
    const node = await Acceptor.start({ id: "a1", topology, transport, storage, paxos: options });
    return { disk, transport, node };
  }

  it("promise is durable before p1b is sent", async () => {
    const { disk, transport } = await hosted();
    transport.deliver("p1", "paxos.p1a", { ballot: b(1, "p1"), fromSlot: 1 });
    expect(transport.ofType("paxos.p1b")).toHaveLength(0);
    disk.flush();
    await new Promise((r) => setTimeout(r, 0));
    expect(transport.ofType("paxos.p1b")).toHaveLength(1);
  });

  it("a failed invariant stops the acceptor with a clear error, and the step that failed sends nothing", async () => {
    const { disk, transport, node } = await hosted();
    transport.deliver("p1", "paxos.p2a", { ballot: b(1, "p1"), proposals: [{ slot: 1, value: command("x") }] });
    transport.deliver("p1", "paxos.p2a", {
      ballot: b(1, "p1"),
      proposals: [
        { slot: 2, value: command("z") },
        { slot: 1, value: command("y") },
      ],
    });
    expect(isQuorateError(node.failure, ErrorCode.Invariant)).toBe(true);
    expect(node.failure?.message).toMatch(/holds a vote for slot 1/);
    disk.flush();
    await new Promise((r) => setTimeout(r, 0));
    // Neither the first p2b (its write never started) nor the failed step's p2b leaves, and it hears no more.
    expect(transport.ofType("paxos.p2b")).toHaveLength(0);
    transport.deliver("p2", "paxos.p1a", { ballot: b(2, "p2"), fromSlot: 1 });
    expect(transport.sent).toHaveLength(0);
  });

  it("a vote is durable before p2b is sent, and survives a crash only once durable", async () => {
    const { disk, transport, node } = await hosted();
    transport.deliver("p1", "paxos.p2a", { ballot: b(1, "p1"), proposals: [{ slot: 1, value: command("x") }] });
    expect(transport.ofType("paxos.p2b")).toHaveLength(0);
    expect(node.accepted(1)?.ballot).toEqual(b(1, "p1"));
    disk.flush();
    await new Promise((r) => setTimeout(r, 0));
    // Every copy was held for the write: the proposer's and each learner's.
    expect(transport.ofType("paxos.p2b").map((m) => m.to)).toEqual(["p1", "l1", "l2", "l3"]);
  });
});
