import { ErrorCode, isQuorateError } from "@quorate/core";
import { KvStateMachine } from "@quorate/kv";
import { Learner, type LearnerOptions, learnerStorageIn, resolvePaxosOptions } from "@quorate/paxos/internal";
import { SessionStateMachine } from "@quorate/service";
import { createMemoryStorage } from "@quorate/storage";
import { describe, expect, it } from "vitest";
import { b, handTimers, RecordingTransport, topology } from "../../../paxos/test/helpers.js";

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
  transport.deliver("p1", "paxos.heartbeat", { ballot: b(1, "p1"), nextSlot: 1, round: 1 });
  const requested = () =>
    transport.ofType("paxos.request").flatMap((m) => (m.body as { requests: { seq: number }[] }).requests);
  const reads = () => transport.ofType("paxos.read").flatMap((m) => (m.body as { reads: number[] }).reads);
  /** The proposer confirms read `id` at slot 0: nothing to apply first. */
  const confirm = (id: number) => transport.deliver("p1", "paxos.read.index", { reads: [id], slot: 0 });
  return { node, requested, reads, confirm };
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
    l.confirm(l.reads()[0] ?? 0);
    await held;
    const again = l.node.readBarrier();
    await nextTurn();
    l.confirm(l.reads()[1] ?? 0);
    await again;
    await l.node.stop();
  });

  it("requests handed on and not yet chosen are bounded by maxPendingRequests: one more fails with Busy", async () => {
    const l = await learner({ paxos: { maxPendingRequests: 1 } });
    l.node.propose(new Uint8Array([1])).catch(() => undefined);
    await nextTurn();
    expect(l.requested()).toHaveLength(1);
    await expect(l.node.propose(new Uint8Array([2]))).rejects.toMatchObject({
      code: ErrorCode.Busy,
      message: expect.stringContaining("not yet chosen"),
    });
    expect(l.requested()).toHaveLength(1);
    await l.node.stop();
  });

  it("reads sent and not yet given an index are bounded by maxPendingRequests: one more fails with Busy", async () => {
    const l = await learner({ paxos: { maxPendingRequests: 1 } });
    const first = l.node.readBarrier();
    await nextTurn();
    expect(l.reads()).toHaveLength(1);
    await expect(l.node.readBarrier()).rejects.toMatchObject({
      code: ErrorCode.Busy,
      message: expect.stringContaining("not yet confirmed"),
    });
    l.confirm(l.reads()[0] ?? 0);
    await first;
    const second = l.node.readBarrier();
    await nextTurn();
    l.confirm(l.reads()[1] ?? 0);
    await second;
    await l.node.stop();
  });

  it("refuses a limit that is not a positive integer, with Config", async () => {
    const err = await learner({ maxPendingProposals: 1.5 }).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.Config)).toBe(true);
  });
});
