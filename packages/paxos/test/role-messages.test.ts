import type { MessageMap, MessageType } from "@quorate/core";
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import { ROLE_MESSAGES } from "../src/host.js";
import {
  AcceptorLog,
  acceptorMachine,
  acceptorRules,
  LearnerLog,
  learnerMachine,
  learnerRules,
  ProposerReads,
  ProposerSlots,
  proposerMachine,
  proposerRules,
} from "../src/internal.js";
import { AcceptorOutbox, LearnerOutbox, ProposerOutbox } from "../src/outbox.js";
import { b, command, msg, options, topology } from "./helpers.js";

/** One body of every Paxos message type. */
const BODIES: { [K in Extract<MessageType, `paxos.${string}`>]: MessageMap[K] } = {
  "paxos.p1a": { ballot: b(3, "p1"), fromSlot: 1 },
  "paxos.p1b": {
    ballot: b(3, "p1"),
    truncated: 0,
    accepted: [{ slot: 1, ballot: b(2, "p2"), value: command("x") }],
    more: false,
  },
  "paxos.p2a": { ballot: b(3, "p1"), proposals: [{ slot: 1, value: command("x") }] },
  "paxos.p2b": { ballot: b(3, "p1"), slots: [1], truncated: 2 },
  "paxos.nack": { ballot: b(3, "p1"), promised: b(9, "p2"), truncated: 2 },
  "paxos.heartbeat": { ballot: b(9, "p2"), nextSlot: 5, round: 1 },
  "paxos.alive": { ballot: b(3, "p1"), round: 1, truncated: 2 },
  "paxos.read": { reads: [1] },
  "paxos.read.index": { reads: [1], slot: 4 },
  "paxos.request": { requests: [{ seq: 1, kind: 0, data: new Uint8Array([1]) }] },
  "paxos.fill": { slots: [1] },
  "paxos.repeat": { from: 1, to: 4 },
  "paxos.repeated": { truncated: 2, accepted: [], through: 4 },
  "paxos.learned": { applied: 4, checkpoint: 4 },
  "paxos.snapshot.req": { slot: 4, offset: 0 },
  "paxos.snapshot.chunk": { slot: 4, offset: 0, total: 1, data: new Uint8Array([1]) },
};

const SENDERS = [...topology.acceptors, ...topology.proposers, ...topology.learners];

/** Steps `step` with every message its role does not take, from every member; returns what changed. */
function unhandled<C extends object>(
  role: keyof typeof ROLE_MESSAGES,
  context: C,
  step: (draft: C, from: string, message: ReturnType<typeof msg>) => void,
  out: { take(): { messages: readonly unknown[]; observations: readonly unknown[] } },
) {
  const changes: string[] = [];
  for (const [type, body] of Object.entries(BODIES)) {
    if (ROLE_MESSAGES[role].has(type as MessageType)) continue;
    for (const from of SENDERS) {
      const draft = { ...context };
      step(draft, from, msg(type as MessageType, body as never));
      const taken = out.take();
      if (taken.messages.length + taken.observations.length > 0 || JSON.stringify(draft) !== JSON.stringify(context))
        changes.push(`${type} from ${from}`);
    }
  }
  return changes;
}

describe("each role's host drops only messages its rules ignore (ROLE_MESSAGES)", () => {
  it("acceptor", () => {
    const out = new AcceptorOutbox();
    const log = new AcceptorLog({ truncated: 0, accepted: [] });
    const ctx = createActor(acceptorMachine, {
      input: { id: "a1", topology, options, log, out, promised: b(3, "p1") },
    }).getSnapshot().context;
    expect(unhandled("acceptor", ctx, acceptorRules.stepAcceptor, out)).toEqual([]);
    // Positive: what it takes, it acts on.
    acceptorRules.stepAcceptor({ ...ctx }, "p1", msg("paxos.heartbeat", { ballot: b(3, "p1"), nextSlot: 1, round: 1 }));
    expect(out.take().messages).toHaveLength(1);
  });

  it("learner", () => {
    const out = new LearnerOutbox();
    const log = new LearnerLog({ applied: 0, checkpoint: null, firstSeq: 1 });
    const ctx = createActor(learnerMachine, { input: { id: "l1", topology, options, log, out } }).getSnapshot().context;
    expect(unhandled("learner", ctx, learnerRules.stepLearner, out)).toEqual([]);
    const draft = { ...ctx };
    learnerRules.stepLearner(draft, "p2", msg("paxos.heartbeat", BODIES["paxos.heartbeat"]));
    expect(draft.leader).toBe("p2");
  });

  it("proposer, passive and active", () => {
    const out = new ProposerOutbox();
    const ctx = createActor(proposerMachine, {
      input: {
        id: "p1",
        topology,
        options,
        slots: new ProposerSlots(),
        reads: new ProposerReads(),
        out,
        round: 3,
        seed: 1,
      },
    }).getSnapshot().context;
    const children = { spawnCommander: () => {}, send: () => {}, stop: () => {} };
    for (const mode of ["passive", "active"] as const) {
      const step = (d: typeof ctx, from: string, m: ReturnType<typeof msg>) =>
        void proposerRules.stepProposer(d, mode, from, m, children);
      expect(unhandled("proposer", ctx, step, out)).toEqual([]);
    }
    const draft = { ...ctx };
    proposerRules.stepProposer(draft, "passive", "p2", msg("paxos.heartbeat", BODIES["paxos.heartbeat"]), children);
    expect(draft.leader).toBe("p2");
  });
});
