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

export interface AcceptorStorage {
  /** What is durable now. Called once, before any write. */
  load(): Promise<AcceptorState>;
  /** Applies the write atomically; resolves once durable (fsynced). Writes apply in call order. */
  write(write: AcceptorWrite): Promise<void>;
  close(): Promise<void>;
}
