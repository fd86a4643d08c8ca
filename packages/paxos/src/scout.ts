import { compareBallots, type NodeId, type PaxosAcceptance, type PaxosBallot } from "@quorate/core";
import { enqueueActions, setup } from "xstate";
import type { PaxosPromise } from "./messages.js";
import type { PaxosOptions } from "./options.js";
import type { ProposerOutbox } from "./outbox.js";

/**
 * Phase 1 for one ballot, as PMMC's Scout: a child actor of the proposer. It asks every
 * acceptor to promise, merges the votes they report (highest ballot per slot), asks again
 * for further pages of long reports, retransmits to acceptors that have not answered, and
 * tells its parent once a phase-1 quorum has promised. Preemption (a nack) is the parent's
 * business, since any of its children can be preempted the same way.
 */

export type ScoutEvent = { type: "p1b"; from: NodeId; body: PaxosPromise } | { type: "tick" };

/** What the scout tells its parent. The vote map is handed over by reference, never copied. */
export interface ScoutAdopted {
  type: "scout.adopted";
  ballot: PaxosBallot;
  /** The highest-ballot vote of every slot some promising acceptor reported. */
  pvalues: ReadonlyMap<number, PaxosAcceptance>;
  /** The highest truncation point reported: slots at or below it are decided, not ours to propose. */
  truncated: number;
}

export interface ScoutInput {
  ballot: PaxosBallot;
  fromSlot: number;
  acceptors: readonly NodeId[];
  q1: number;
  options: PaxosOptions;
  out: ProposerOutbox;
}

export interface ScoutContext extends ScoutInput {
  /** Owned by the scout, mutated in place: votes never pass through context copies. */
  readonly pvalues: Map<number, PaxosAcceptance>;
  /** Acceptors whose report is complete. */
  complete: Readonly<Record<NodeId, true>>;
  /** Where the next page of each acceptor's report starts. */
  nextFrom: Readonly<Record<NodeId, number>>;
  truncated: number;
  elapsed: number;
  adopted: boolean;
}

export function sameBallot(a: PaxosBallot, b: PaxosBallot): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** Merges one page of promises; returns true once a phase-1 quorum has promised completely. */
export function recordPromise(d: ScoutContext, from: NodeId, m: PaxosPromise): boolean {
  if (!sameBallot(m.ballot, d.ballot) || !d.acceptors.includes(from) || d.complete[from]) return false;
  const expectedFrom = d.nextFrom[from] ?? d.fromSlot;
  const last = m.accepted.at(-1);
  if (m.more && (last === undefined || last.slot + 1 <= expectedFrom)) return false; // a stale page
  for (const a of m.accepted) {
    const held = d.pvalues.get(a.slot);
    if (held === undefined || compareBallots(a.ballot, held.ballot) > 0) d.pvalues.set(a.slot, a);
  }
  if (m.truncated > d.truncated) d.truncated = m.truncated;
  if (m.more && last !== undefined) {
    d.nextFrom = { ...d.nextFrom, [from]: last.slot + 1 };
    d.out.send(from, "paxos.p1a", { ballot: d.ballot, fromSlot: last.slot + 1 }, true);
    return false;
  }
  d.complete = { ...d.complete, [from]: true };
  return Object.keys(d.complete).length >= d.q1;
}

export function retransmitPrepare(d: ScoutContext): void {
  d.elapsed++;
  if (d.elapsed < d.options.retransmitTicks) return;
  d.elapsed = 0;
  for (const acceptor of d.acceptors) {
    if (d.complete[acceptor]) continue;
    d.out.send(acceptor, "paxos.p1a", { ballot: d.ballot, fromSlot: d.nextFrom[acceptor] ?? d.fromSlot }, true);
  }
}

export const scoutMachine = setup({
  types: {
    context: {} as ScoutContext,
    events: {} as ScoutEvent,
    input: {} as ScoutInput,
  },
  actions: {
    prepare: ({ context: c }) => {
      // The p1a waits until the round it carries is durable: a proposer that restarts must
      // never reuse a ballot, or two values could be proposed in one slot at one ballot.
      c.out.send(null, "paxos.p1a", { ballot: c.ballot, fromSlot: c.fromSlot }, true);
    },
    promise: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "p1b" || context.adopted) return;
      const d = { ...context };
      const adopted = recordPromise(d, event.from, event.body);
      d.adopted = adopted;
      enqueue.assign(d);
      if (adopted) {
        const message: ScoutAdopted = {
          type: "scout.adopted",
          ballot: d.ballot,
          pvalues: d.pvalues,
          truncated: d.truncated,
        };
        enqueue.sendParent(message);
      }
    }),
    retransmit: enqueueActions(({ context, enqueue }) => {
      if (context.adopted) return;
      const d = { ...context };
      retransmitPrepare(d);
      enqueue.assign(d);
    }),
  },
}).createMachine({
  id: "scout",
  context: ({ input }) => ({
    ...input,
    pvalues: new Map(),
    complete: {},
    nextFrom: {},
    truncated: 0,
    elapsed: 0,
    adopted: false,
  }),
  entry: "prepare",
  on: {
    p1b: { actions: "promise" },
    tick: { actions: "retransmit" },
  },
});

export type ScoutMachine = typeof scoutMachine;
