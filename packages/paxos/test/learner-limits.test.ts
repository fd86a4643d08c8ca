import { ErrorCode, isQuorateError, type PaxosValue, SessionStateMachine } from "@quorate/core";
import { KvStateMachine } from "@quorate/kv";
import { createMemoryStorage } from "@quorate/storage";
import { describe, expect, it } from "vitest";
import { Learner, type LearnerOptions, learnerStorageIn, resolvePaxosOptions } from "../src/internal.js";
import { b, handTimers, RecordingTransport, topology } from "./helpers.js";

/** A learner that knows p1 as the active proposer, so it hands requests on. */
async function learner(extra: Partial<LearnerOptions>) {
  const transport = new RecordingTransport("l1");
  const node = await Learner.start({
    id: "l1",
    topology,
    transport,
    storage: learnerStorageIn(createMemoryStorage()),
    stateMachine: new SessionStateMachine(new KvStateMachine()),
    timers: handTimers().timers,
    ...extra,
    paxos: resolvePaxosOptions({ heartbeatTicks: 1, leaderTimeoutTicks: 4, retransmitTicks: 3, ...extra.paxos }),
  });
  transport.deliver("p1", "paxos.heartbeat", { ballot: b(1, "p1"), nextSlot: 1 });
  const requested = () =>
    transport.ofType("paxos.request").flatMap((m) => (m.body as { requests: { seq: number }[] }).requests);
  const choose = (slot: number, seq: number) => {
    const value: PaxosValue = { kind: 2, data: new Uint8Array(0), origin: "l1", seq };
    const ballot = b(1, "p1");
    transport.deliver("p1", "paxos.p2a", { ballot, proposals: [{ slot, value }] });
    for (const a of ["a1", "a2"]) transport.deliver(a, "paxos.p2b", { ballot, slots: [slot], truncated: 0 });
  };
  return { node, requested, choose };
}

const nextTurn = () => new Promise((r) => setTimeout(r, 0));

describe("the learner bounds the requests it holds", () => {
  it("a command beyond maxPendingProposals fails at once with Busy, naming the option", async () => {
    const l = await learner({ maxPendingProposals: 2 });
    l.node.propose(new Uint8Array([1])).catch(() => undefined);
    l.node.propose(new Uint8Array([2])).catch(() => undefined);
    await expect(l.node.propose(new Uint8Array([3]))).rejects.toMatchObject({
      code: ErrorCode.Busy,
      message: expect.stringContaining("maxPendingProposals"),
    });
    await l.node.stop();
  });

  it("a read barrier beyond maxPendingReads fails at once with Busy; a place frees once one resolves", async () => {
    const l = await learner({ maxPendingReads: 1 });
    const held = l.node.readBarrier();
    await expect(l.node.readBarrier()).rejects.toMatchObject({ code: ErrorCode.Busy });
    await nextTurn();
    l.choose(1, l.requested()[0]?.seq ?? 0);
    await held;
    const again = l.node.readBarrier();
    await nextTurn();
    l.choose(2, l.requested()[1]?.seq ?? 0);
    await again;
    await l.node.stop();
  });

  it("requests handed on and not yet chosen are bounded by maxPendingRequests: one more fails with Busy", async () => {
    const l = await learner({ paxos: { maxPendingRequests: 1 } });
    const first = l.node.readBarrier();
    await nextTurn();
    expect(l.requested()).toHaveLength(1);
    await expect(l.node.readBarrier()).rejects.toMatchObject({
      code: ErrorCode.Busy,
      message: expect.stringContaining("not yet chosen"),
    });
    expect(l.requested()).toHaveLength(1);
    l.choose(1, l.requested()[0]?.seq ?? 0);
    await first;
    const second = l.node.readBarrier();
    await nextTurn();
    expect(l.requested()).toHaveLength(2);
    l.choose(2, l.requested()[1]?.seq ?? 0);
    await second;
    await l.node.stop();
  });

  it("refuses a limit that is not a positive integer, with Config", async () => {
    const err = await learner({ maxPendingProposals: 1.5 }).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.Config)).toBe(true);
  });
});
