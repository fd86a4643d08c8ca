import type { NodeId, PaxosBallot } from "@quorate/core";
import { enqueueActions, setup } from "xstate";
import type { PaxosAccept, PaxosAccepted } from "./messages.js";
import type { PaxosOptions } from "./options.js";
import type { ProposerOutbox } from "./outbox.js";
import { sameBallot } from "./scout.js";

/**
 * Phase 2 for one batch of slots at one ballot, as PMMC's Commander: a child actor of the
 * active proposer. It broadcasts the p2a, counts the acceptors' p2b per slot, retransmits
 * what is undecided, and tells its parent once a phase-2 quorum voted for every slot.
 */

export type CommanderEvent =
  | { type: "p2b"; from: NodeId; body: PaxosAccepted }
  | { type: "tick" }
  /** A learner asked for a slot of this batch: send again now. */
  | { type: "retransmit" }
  /** Slots at or below `through` were truncated by some acceptor: decided. */
  | { type: "truncated"; through: number };

export interface CommanderDecided {
  type: "commander.decided";
  commander: string;
  ballot: PaxosBallot;
  slots: readonly number[];
}

export interface CommanderInput {
  id: string;
  ballot: PaxosBallot;
  /** The batch, values by reference from the proposer's table. */
  proposals: PaxosAccept["proposals"];
  acceptors: readonly NodeId[];
  q2: number;
  options: PaxosOptions;
  out: ProposerOutbox;
}

export interface CommanderContext extends CommanderInput {
  /** Voters per undecided slot; owned by the commander, mutated in place. */
  readonly votes: Map<number, Set<NodeId>>;
  elapsed: number;
  finished: boolean;
}

/** Counts one p2b; returns true once every slot of the batch is decided. */
export function recordAccepted(d: CommanderContext, from: NodeId, m: PaxosAccepted): boolean {
  if (!sameBallot(m.ballot, d.ballot) || !d.acceptors.includes(from)) return false;
  for (const slot of m.slots) {
    const voters = d.votes.get(slot);
    if (voters === undefined) continue;
    voters.add(from);
    if (voters.size >= d.q2) d.votes.delete(slot);
  }
  return recordTruncated(d, m.truncated);
}

export function recordTruncated(d: CommanderContext, through: number): boolean {
  for (const slot of d.votes.keys()) if (slot <= through) d.votes.delete(slot);
  return d.votes.size === 0;
}

export function sendAccept(d: CommanderContext): void {
  d.elapsed = 0;
  const proposals = d.votes.size === d.proposals.length ? d.proposals : d.proposals.filter((p) => d.votes.has(p.slot));
  d.out.send(null, "paxos.p2a", { ballot: d.ballot, proposals }, false);
}

function finish(d: CommanderContext): CommanderDecided {
  d.finished = true;
  return { type: "commander.decided", commander: d.id, ballot: d.ballot, slots: d.proposals.map((p) => p.slot) };
}

export const commanderMachine = setup({
  types: {
    context: {} as CommanderContext,
    events: {} as CommanderEvent,
    input: {} as CommanderInput,
  },
  actions: {
    accept: ({ context }) => sendAccept(context),
    count: enqueueActions(({ context, event, enqueue }) => {
      if (context.finished) return;
      const d = { ...context };
      let done = false;
      if (event.type === "p2b") done = recordAccepted(d, event.from, event.body);
      else if (event.type === "truncated") done = recordTruncated(d, event.through);
      if (done) enqueue.sendParent(finish(d));
      enqueue.assign(d);
    }),
    retransmit: enqueueActions(({ context, event, enqueue }) => {
      if (context.finished) return;
      const d = { ...context };
      d.elapsed++;
      if (event.type === "retransmit" || d.elapsed >= d.options.retransmitTicks) sendAccept(d);
      enqueue.assign(d);
    }),
  },
}).createMachine({
  id: "commander",
  context: ({ input }) => ({
    ...input,
    votes: new Map(input.proposals.map((p) => [p.slot, new Set<NodeId>()])),
    elapsed: 0,
    finished: false,
  }),
  entry: "accept",
  on: {
    p2b: { actions: "count" },
    truncated: { actions: "count" },
    tick: { actions: "retransmit" },
    retransmit: { actions: "retransmit" },
  },
});

export type CommanderMachine = typeof commanderMachine;
