import type { NodeId, PaxosBallot, PaxosValue } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import { sameValue } from "./acceptor-protocol.js";
import type { LearnerRequest } from "./outbox.js";

interface BallotVotes {
  value: PaxosValue | null;
  readonly voters: Set<NodeId>;
}

/** A checkpoint being received in pieces. */
interface IncomingSnapshot {
  readonly from: NodeId;
  readonly slot: number;
  readonly total: number;
  readonly parts: Uint8Array[];
  received: number;
}

/**
 * Everything a learner holds per slot, owned by the host and referenced by the machine: values
 * never pass through context copies. The host applies from `chosen` in slot order and moves
 * `applied`; the machine reads it.
 */
export class LearnerLog {
  applied: number;
  /** The latest durable checkpoint, served to learners that fell behind truncation. */
  checkpoint: { readonly slot: number; readonly data: Uint8Array } | null;
  readonly chosen = new Map<number, PaxosValue>();
  highestChosen: number;
  /** The highest slot anyone mentioned: a target for catch-up. */
  highestSeen: number;
  readonly #votes = new Map<number, Map<string, BallotVotes>>();
  /** Requests handed to the proposer and not yet chosen, by seq: retransmitted until they are. */
  readonly pending = new Map<number, LearnerRequest>();
  /**
   * Reads sent to the proposer and not yet given a read index: the host's batch, by read id.
   * Ids are request seqs, unique across incarnations, so no answer to an earlier incarnation's
   * read (invoked before this one's) is taken for one of ours.
   */
  readonly reads = new Map<number, number>();
  nextSeq: number;
  incoming: IncomingSnapshot | null = null;

  constructor(init: { applied: number; checkpoint: LearnerLog["checkpoint"]; firstSeq: number }) {
    this.applied = init.applied;
    this.checkpoint = init.checkpoint;
    this.highestChosen = init.applied;
    this.highestSeen = init.applied;
    this.nextSeq = init.firstSeq;
  }

  isOpen(slot: number): boolean {
    return slot > this.applied && !this.chosen.has(slot);
  }

  /** Records a vote or a value for (slot, ballot); returns the value known for it (null before the p2a) and its voters. */
  record(
    slot: number,
    ballot: PaxosBallot,
    voter: NodeId | null,
    value: PaxosValue | null,
  ): { readonly value: PaxosValue | null; readonly voters: number } {
    if (slot > this.highestSeen) this.highestSeen = slot;
    let byBallot = this.#votes.get(slot);
    if (byBallot === undefined) {
      byBallot = new Map();
      this.#votes.set(slot, byBallot);
    }
    const key = `${ballot[0]} ${ballot[1]}`;
    let votes = byBallot.get(key);
    if (votes === undefined) {
      votes = { value: null, voters: new Set() };
      byBallot.set(key, votes);
    }
    if (value !== null) {
      // One value per (slot, ballot): the proposer's p2a and every acceptor's vote at that
      // ballot carry the same one, or votes for different values would be counted together.
      invariant(
        votes.value === null || sameValue(votes.value, value),
        `learner saw two values for slot ${slot} at ballot [${ballot[0]},${ballot[1]}]`,
      );
      votes.value = value;
    }
    if (voter !== null) votes.voters.add(voter);
    return { value: votes.value, voters: votes.voters.size };
  }

  choose(slot: number, value: PaxosValue): void {
    // A slot is chosen once: its callers only learn open slots.
    invariant(this.isOpen(slot), `learner chose slot ${slot} again (applied through ${this.applied})`);
    this.chosen.set(slot, value);
    this.#votes.delete(slot);
    if (slot > this.highestChosen) this.highestChosen = slot;
  }

  /** The host applied `slot`. */
  markApplied(slot: number): void {
    this.chosen.delete(slot);
    this.applied = slot;
  }

  /** The state machine was replaced by a checkpoint through `slot`. */
  restoredTo(slot: number): void {
    for (const s of this.chosen.keys()) if (s <= slot) this.chosen.delete(s);
    for (const s of this.#votes.keys()) if (s <= slot) this.#votes.delete(s);
    this.applied = slot;
    if (slot > this.highestChosen) this.highestChosen = slot;
    if (slot > this.highestSeen) this.highestSeen = slot;
  }
}
