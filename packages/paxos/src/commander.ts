import type { NodeId, PaxosBallot } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import { enqueueActions, setup } from "xstate";
import type { PaxosAccept, PaxosAccepted } from "./messages.js";
import type { PaxosOptions } from "./options.js";
import type { ProposerOutbox } from "./outbox.js";
import { sameBallot } from "./scout.js";

/**
 * Phase 2 at one ballot, as PMMC's Commander: a child actor of the active proposer, spawned
 * when it adopts its ballot and stopped when it leaves active mode. It drives any number of
 * batches of slots at once: broadcasts each batch's p2a, counts the acceptors' p2b per slot,
 * retransmits what is undecided, and tells its parent which batches a phase-2 quorum voted
 * for entirely. One long-lived child per ballot rather than one per batch: spawning and
 * stopping an actor for every batch cost the proposer more than counting its votes did.
 */

/** The id of the active proposer's commander child. */
export const COMMANDER_ID = "commander";

export type CommanderEvent =
  /** Drive a new batch: its slots are in no other batch still undecided. */
  | { type: "accept"; batch: string; proposals: PaxosAccept["proposals"] }
  | { type: "p2b"; from: NodeId; body: PaxosAccepted }
  | { type: "tick" }
  /** A learner asked for a slot of this batch: send it again now. */
  | { type: "retransmit"; batch: string }
  /** Slots at or below `through` were truncated by some acceptor: decided. */
  | { type: "truncated"; through: number };

/** Batches whose every slot a phase-2 quorum voted for, in the order they were decided. */
export interface CommanderDecided {
  type: "commander.decided";
  ballot: PaxosBallot;
  batches: readonly string[];
}

export interface CommanderInput {
  ballot: PaxosBallot;
  acceptors: readonly NodeId[];
  q2: number;
  options: PaxosOptions;
  out: ProposerOutbox;
}

/** One batch in flight: the values by reference from the proposer's table, and the voters per undecided slot. */
export interface CommanderBatch {
  readonly id: string;
  readonly proposals: PaxosAccept["proposals"];
  readonly votes: Map<number, Set<NodeId>>;
  /** Ticks since its p2a was last sent. */
  elapsed: number;
}

export interface CommanderContext extends CommanderInput {
  /**
   * Batches in flight by id, and the batch of each undecided slot. Owned by the commander and
   * changed in place (as the proposer's slot table is), never copied per event.
   */
  readonly batches: Map<string, CommanderBatch>;
  readonly slotBatches: Map<number, CommanderBatch>;
}

/** Starts driving a batch and sends its p2a. */
export function startBatch(d: CommanderContext, id: string, proposals: PaxosAccept["proposals"]): void {
  invariant(!d.batches.has(id), `commander at [${d.ballot[0]},${d.ballot[1]}] was given batch ${id} twice`);
  const batch: CommanderBatch = { id, proposals, votes: new Map(), elapsed: 0 };
  for (const { slot } of proposals) {
    // One value per slot per ballot: a slot is driven by one batch at a time.
    invariant(
      !d.slotBatches.has(slot),
      `commander was given slot ${slot} while batch ${d.slotBatches.get(slot)?.id} drives it`,
    );
    batch.votes.set(slot, new Set());
    d.slotBatches.set(slot, batch);
  }
  d.batches.set(id, batch);
  sendAccept(d, batch);
}

/** Counts one p2b; returns the batches it completed. */
export function recordAccepted(d: CommanderContext, from: NodeId, m: PaxosAccepted): string[] {
  if (!sameBallot(m.ballot, d.ballot) || !d.acceptors.includes(from)) return [];
  const decided: string[] = [];
  for (const slot of m.slots) {
    const batch = d.slotBatches.get(slot);
    const voters = batch?.votes.get(slot);
    if (batch === undefined || voters === undefined) continue;
    voters.add(from);
    if (voters.size >= d.q2) decideSlot(d, batch, slot, decided);
  }
  decided.push(...recordTruncated(d, m.truncated));
  return decided;
}

/** Slots at or below `through` are decided; returns the batches that completes. */
export function recordTruncated(d: CommanderContext, through: number): string[] {
  const decided: string[] = [];
  for (const [slot, batch] of d.slotBatches) if (slot <= through) decideSlot(d, batch, slot, decided);
  return decided;
}

function decideSlot(d: CommanderContext, batch: CommanderBatch, slot: number, decided: string[]): void {
  batch.votes.delete(slot);
  d.slotBatches.delete(slot);
  if (batch.votes.size > 0) return;
  d.batches.delete(batch.id);
  decided.push(batch.id);
}

export function sendAccept(d: CommanderContext, batch: CommanderBatch): void {
  batch.elapsed = 0;
  const proposals =
    batch.votes.size === batch.proposals.length
      ? batch.proposals
      : batch.proposals.filter((p) => batch.votes.has(p.slot));
  d.out.send(null, "paxos.p2a", { ballot: d.ballot, proposals }, false);
}

export const commanderMachine = setup({
  types: {
    context: {} as CommanderContext,
    events: {} as CommanderEvent,
    input: {} as CommanderInput,
  },
  actions: {
    accept: ({ context, event }) => {
      if (event.type === "accept") startBatch(context, event.batch, event.proposals);
    },
    count: enqueueActions(({ context, event, enqueue }) => {
      let decided: string[] = [];
      if (event.type === "p2b") decided = recordAccepted(context, event.from, event.body);
      else if (event.type === "truncated") decided = recordTruncated(context, event.through);
      if (decided.length > 0) {
        enqueue.sendParent({ type: "commander.decided", ballot: context.ballot, batches: decided } as CommanderDecided);
      }
    }),
    tick: ({ context }) => {
      for (const batch of context.batches.values()) {
        batch.elapsed++;
        if (batch.elapsed >= context.options.retransmitTicks) sendAccept(context, batch);
      }
    },
    retransmit: ({ context, event }) => {
      const batch = event.type === "retransmit" ? context.batches.get(event.batch) : undefined;
      if (batch !== undefined) sendAccept(context, batch);
    },
  },
}).createMachine({
  id: "commander",
  context: ({ input }) => ({ ...input, batches: new Map(), slotBatches: new Map() }),
  on: {
    accept: { actions: "accept" },
    p2b: { actions: "count" },
    truncated: { actions: "count" },
    tick: { actions: "tick" },
    retransmit: { actions: "retransmit" },
  },
});

export type CommanderMachine = typeof commanderMachine;
