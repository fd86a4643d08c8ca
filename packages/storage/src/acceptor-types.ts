import type { PaxosAcceptance, PaxosBallot } from "@quorate/core";

/**
 * What a Paxos acceptor must not forget (Lamport's Paxos.tla: maxBal, and per slot the
 * highest-ballot vote), plus how far the log was truncated below learner checkpoints.
 */
export interface AcceptorState {
  promised: PaxosBallot;
  /** Every slot at or below this was dropped: decided, and held in a durable learner checkpoint. */
  truncated: number;
  /** The highest-ballot acceptance of each slot above `truncated`, in slot order. */
  accepted: PaxosAcceptance[];
}

/**
 * One atomic change to an acceptor's durable state. Its parts apply in this order: truncation,
 * acceptances (each replacing the slot's previous one; slots at or below the truncation point
 * are ignored), promise.
 */
export interface AcceptorWrite {
  promised?: PaxosBallot;
  accepted?: readonly PaxosAcceptance[];
  /** Drop every acceptance at or below this slot. */
  truncateThrough?: number;
}

/*
 * The acceptor's storage contract, `AcceptorStorage`, is @quorate/paxos's (role-storage.ts), as
 * are the proposer's and the learner's: this package sits below paxos, so its stores implement
 * that interface by shape (load, write, close over the records above), and paxos's tests check
 * that each store is one.
 */
