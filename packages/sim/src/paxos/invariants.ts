import {
  compareBallots,
  NO_BALLOT,
  type NodeId,
  type PaxosAcceptance,
  type PaxosBallot,
  type PaxosValue,
  PaxosValueKind,
} from "@quorate/core";
import { type Acceptor, type PaxosObservation, sameValue } from "@quorate/paxos/internal";
import type { AcceptorState, AcceptorWrite } from "@quorate/storage";
import type { Violation } from "../protocol.js";

/** The invariants checked for Multi-Paxos; each is a `Violation.kind`. */
export type PaxosInvariant =
  /** At most one value is chosen per slot: a phase-2 quorum durably accepted it at some ballot. */
  | "at-most-one-chosen"
  /** A ballot carries at most one value per slot: no acceptor accepts another value at the same (slot, ballot). */
  | "ballot-uniqueness"
  /** A learner learns only a value a phase-2 quorum durably accepted. */
  | "learned-unchosen"
  /** Learners never apply different values at one slot. */
  | "learner-agreement"
  /** An acceptor never accepts below its promise, including a promise made durable by an earlier incarnation. */
  | "accept-below-promise"
  /** An acceptor's promise never goes back, in memory or on disk, across restarts too. */
  | "promise-regression"
  /** A proposer never starts a round it has used before, across restarts too. */
  | "ballot-reuse"
  /** A restarted acceptor or proposer recovers exactly what was durable when it crashed. */
  | "durability"
  /** The active proposer answers a read only once a phase-2 quorum answered a heartbeat it sent after the read arrived (read-quorum.ts). */
  | "read-quorum"
  /** A role's machine threw or its host stopped on an internal error. */
  | "member-failure";

/** The live roles the simulator checks after each step. */
export interface RunningRoles {
  readonly acceptors: ReadonlyMap<NodeId, Acceptor>;
  readonly failures: Iterable<{ readonly id: NodeId; readonly failure: Error | null }>;
}

/** The durable votes of one (slot, ballot). */
interface BallotVotes {
  readonly value: PaxosValue;
  readonly voters: Set<NodeId>;
}

/** What is durable on one acceptor's disk, rebuilt from the writes storage acknowledged. */
interface DurableAcceptor {
  promised: PaxosBallot;
  truncated: number;
  readonly accepted: Map<number, PaxosAcceptance>;
}

/** A ballot as a map key. */
export function ballotKey(ballot: PaxosBallot): string {
  return `${ballot[0]}/${ballot[1]}`;
}

function showBallot(ballot: PaxosBallot): string {
  return `[${ballot[0]},${ballot[1]}]`;
}

function showValue(value: PaxosValue): string {
  switch (value.kind) {
    case PaxosValueKind.Noop:
      return "a no-op";
    case PaxosValueKind.Read:
      return `${value.origin}'s read marker ${value.seq}`;
    default:
      return `${value.origin}'s command ${value.seq} (${value.data.length}B)`;
  }
}

/**
 * Multi-Paxos safety (Lamport's Paxos.tla: Consistency, and the acceptor rules that make it
 * hold) and durability, checked after every step of a simulation. Votes count only once they
 * are durable: a vote lost in a crash was never reported to anyone, so it never chose anything.
 * Everything is incremental: per step, only the observations and writes since the last one.
 */
export class PaxosInvariants {
  #violation: Violation | null = null;
  /**
   * Votes per acceptor cast since its last write was requested: the next write covers them.
   * Counting them when that write is durable, not from the write's contents, matters: a write
   * keeps only each slot's highest vote, yet the acceptor reports the votes it replaced too.
   */
  readonly #uncovered = new Map<NodeId, PaxosAcceptance[]>();
  /** Durable votes per slot, per ballot: a vote once cast stays cast, even when its acceptor later moves on. */
  readonly #votes = new Map<number, Map<string, BallotVotes>>();
  /** The value chosen in each slot, and the first ballot a quorum chose it at. */
  readonly #chosen = new Map<number, { readonly value: PaxosValue; readonly ballot: PaxosBallot }>();
  /** The value of each (slot, ballot) any acceptor accepted, durable or not. */
  readonly #ballotValues = new Map<string, PaxosValue>();
  /** What some learner applied at each slot. */
  readonly #applied = new Map<number, { readonly learner: NodeId; readonly value: PaxosValue }>();
  /** Per running acceptor: the promise it held at the last check or observation. */
  readonly #promises = new Map<NodeId, PaxosBallot>();
  readonly #durable = new Map<NodeId, DurableAcceptor>();
  /** Per proposer: the highest round made durable, by any incarnation. */
  readonly #durableRounds = new Map<NodeId, number>();
  /** Per running proposer: the highest round this incarnation asked storage to keep. */
  readonly #requestedRounds = new Map<NodeId, number>();

  constructor(private readonly q2: number) {}

  /** Records a violation noticed between steps; the first one is reported. */
  fail(kind: PaxosInvariant, message: string): void {
    this.#violation ??= { kind, message };
  }

  /**
   * An acceptor incarnation starts from the durable promise, whatever it loads: one that
   * forgets it is then caught going below it.
   */
  acceptorStarted(acceptor: NodeId): void {
    this.#promises.set(acceptor, this.#durableOf(acceptor).promised);
  }

  proposerStarted(proposer: NodeId): void {
    this.#requestedRounds.set(proposer, 0);
  }

  crashed(role: NodeId): void {
    this.#promises.delete(role);
    this.#requestedRounds.delete(role);
    this.#uncovered.delete(role);
  }

  /** What a restarting acceptor loaded: exactly the durable state, nothing lost, nothing extra. */
  acceptorLoaded(acceptor: NodeId, state: AcceptorState): void {
    const durable = this.#durableOf(acceptor);
    if (compareBallots(state.promised, durable.promised) !== 0 || state.truncated !== durable.truncated) {
      this.fail(
        "durability",
        `${acceptor} recovered promise ${showBallot(state.promised)} truncated at ${state.truncated}; ` +
          `durable were ${showBallot(durable.promised)} and ${durable.truncated}`,
      );
      return;
    }
    const differs = state.accepted.find((a) => {
      const held = durable.accepted.get(a.slot);
      return held === undefined || compareBallots(held.ballot, a.ballot) !== 0 || !sameValue(held.value, a.value);
    });
    if (differs !== undefined || state.accepted.length !== durable.accepted.size) {
      this.fail(
        "durability",
        `${acceptor} recovered ${state.accepted.length} votes, ${durable.accepted.size} were durable` +
          (differs === undefined ? "" : `; slot ${differs.slot} differs`),
      );
    }
  }

  /** The acceptor hands a write to storage: it covers every vote cast since the previous one. */
  acceptorWriteRequested(acceptor: NodeId): readonly PaxosAcceptance[] {
    const votes = this.#uncovered.get(acceptor) ?? [];
    this.#uncovered.delete(acceptor);
    return votes;
  }

  /**
   * A write the acceptor's storage acknowledged as durable (writes become durable in call
   * order), with the votes it covers: only now do they count towards choosing a value.
   */
  acceptorWriteDurable(acceptor: NodeId, write: AcceptorWrite, votes: readonly PaxosAcceptance[]): void {
    const durable = this.#durableOf(acceptor);
    // The parts apply in storage's order: truncation, votes, promise.
    if (write.truncateThrough !== undefined && write.truncateThrough > durable.truncated) {
      durable.truncated = write.truncateThrough;
      for (const slot of durable.accepted.keys()) if (slot <= durable.truncated) durable.accepted.delete(slot);
    }
    for (const acceptance of write.accepted ?? []) {
      if (acceptance.slot > durable.truncated) durable.accepted.set(acceptance.slot, acceptance);
    }
    for (const vote of votes) this.#vote(acceptor, vote);
    if (write.promised !== undefined) {
      if (compareBallots(write.promised, durable.promised) < 0) {
        this.fail(
          "promise-regression",
          `${acceptor}'s durable promise went from ${showBallot(durable.promised)} back to ${showBallot(write.promised)}`,
        );
      }
      durable.promised = write.promised;
    }
  }

  /** What a restarting proposer loaded: the round it made durable last. */
  proposerLoaded(proposer: NodeId, round: number): void {
    const durable = this.#durableRounds.get(proposer) ?? 0;
    if (round !== durable) this.fail("durability", `${proposer} recovered round ${round}; ${durable} was durable`);
  }

  /** A proposer asks storage to keep a new round before its p1a leaves: the round must be new. */
  proposerRoundRequested(proposer: NodeId, round: number): void {
    const used = Math.max(this.#durableRounds.get(proposer) ?? 0, this.#requestedRounds.get(proposer) ?? 0);
    if (round <= used) this.fail("ballot-reuse", `${proposer} starts round ${round}; it has used round ${used}`);
    this.#requestedRounds.set(proposer, Math.max(round, this.#requestedRounds.get(proposer) ?? 0));
  }

  proposerRoundDurable(proposer: NodeId, round: number): void {
    this.#durableRounds.set(proposer, Math.max(round, this.#durableRounds.get(proposer) ?? 0));
  }

  observed(observation: PaxosObservation): void {
    switch (observation.kind) {
      case "promise":
        this.#promised(observation.acceptor, observation.ballot);
        return;
      case "accept":
        this.#accepted(observation.acceptor, observation.slot, observation.ballot, observation.value);
        return;
      case "chosen":
        this.#learned(observation.learner, observation.slot, observation.value);
        return;
      case "applied":
        this.#appliedBy(observation.learner, observation.slot, observation.value);
        return;
      default:
        return;
    }
  }

  /** Checks every running role after a step; returns the first violation of the run. */
  check(roles: RunningRoles): Violation | null {
    if (this.#violation !== null) return this.#violation;
    for (const role of roles.failures) {
      if (role.failure !== null) this.fail("member-failure", `${role.id} stopped: ${role.failure.message}`);
    }
    for (const [id, acceptor] of roles.acceptors) this.#promised(id, acceptor.promised);
    return this.#violation;
  }

  #durableOf(acceptor: NodeId): DurableAcceptor {
    let durable = this.#durable.get(acceptor);
    if (durable === undefined) {
      durable = { promised: NO_BALLOT, truncated: 0, accepted: new Map() };
      this.#durable.set(acceptor, durable);
    }
    return durable;
  }

  /** The acceptor holds `ballot` as its promise now: never below what it held before. */
  #promised(acceptor: NodeId, ballot: PaxosBallot): void {
    const before = this.#promises.get(acceptor);
    if (before === undefined) return;
    if (compareBallots(ballot, before) < 0) {
      this.fail(
        "promise-regression",
        `${acceptor}'s promise went from ${showBallot(before)} back to ${showBallot(ballot)}`,
      );
    }
    this.#promises.set(acceptor, ballot);
  }

  #accepted(acceptor: NodeId, slot: number, ballot: PaxosBallot, value: PaxosValue): void {
    const promised = this.#promises.get(acceptor);
    if (promised !== undefined && compareBallots(ballot, promised) < 0) {
      this.fail(
        "accept-below-promise",
        `${acceptor} accepted slot ${slot} at ${showBallot(ballot)} below its promise ${showBallot(promised)}`,
      );
    }
    let uncovered = this.#uncovered.get(acceptor);
    if (uncovered === undefined) {
      uncovered = [];
      this.#uncovered.set(acceptor, uncovered);
    }
    uncovered.push({ slot, ballot, value });
    const key = `${slot}@${ballotKey(ballot)}`;
    const known = this.#ballotValues.get(key);
    if (known === undefined) this.#ballotValues.set(key, value);
    else if (!sameValue(known, value)) {
      this.fail(
        "ballot-uniqueness",
        `${acceptor} accepted ${showValue(value)} in slot ${slot} at ${showBallot(ballot)}; ` +
          `${showValue(known)} was accepted there at that ballot`,
      );
    }
  }

  /** A durable vote: once a phase-2 quorum voted for a value at one ballot, it is chosen. */
  #vote(acceptor: NodeId, { slot, ballot, value }: PaxosAcceptance): void {
    let bySlot = this.#votes.get(slot);
    if (bySlot === undefined) {
      bySlot = new Map();
      this.#votes.set(slot, bySlot);
    }
    const key = ballotKey(ballot);
    let votes = bySlot.get(key);
    if (votes === undefined) {
      votes = { value, voters: new Set() };
      bySlot.set(key, votes);
    }
    votes.voters.add(acceptor);
    if (votes.voters.size !== this.q2) return;
    const chosen = this.#chosen.get(slot);
    if (chosen === undefined) this.#chosen.set(slot, { value: votes.value, ballot });
    else if (!sameValue(chosen.value, votes.value)) {
      this.fail(
        "at-most-one-chosen",
        `slot ${slot}: ${showValue(votes.value)} chosen at ${showBallot(ballot)} by ${[...votes.voters].join(",")}; ` +
          `${showValue(chosen.value)} was chosen at ${showBallot(chosen.ballot)}`,
      );
    }
  }

  #learned(learner: NodeId, slot: number, value: PaxosValue): void {
    const chosen = this.#chosen.get(slot);
    if (chosen === undefined || !sameValue(chosen.value, value)) {
      this.fail(
        "learned-unchosen",
        `${learner} learned ${showValue(value)} in slot ${slot}; ` +
          (chosen === undefined
            ? "no quorum durably accepted any value there"
            : `${showValue(chosen.value)} was chosen`),
      );
    }
  }

  #appliedBy(learner: NodeId, slot: number, value: PaxosValue): void {
    const applied = this.#applied.get(slot);
    if (applied === undefined) this.#applied.set(slot, { learner, value });
    else if (!sameValue(applied.value, value)) {
      this.fail(
        "learner-agreement",
        `${learner} applied ${showValue(value)} in slot ${slot}; ${applied.learner} applied ${showValue(applied.value)}`,
      );
    }
  }
}
