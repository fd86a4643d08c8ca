import { type PaxosBallot, paxosBallot } from "./ballot.js";
import { bytes, type Infer, object, string, uint, type Validator } from "./schema.js";

/**
 * A Paxos acceptor's vote and the value it holds. The wire messages live in @quorate/paxos, but
 * @quorate/storage sits below it and persists these votes (its acceptor stores validate what they
 * read back with `paxosAcceptance`), so the vote's schema stays here, where both can import it.
 */

/**
 * A ballot a proposer runs a round at: never [0, ""], which no proposer owns. Phase 1 and 2
 * messages, votes and heartbeats carry one; a frame naming the ballot below all is refused, so
 * no acceptor votes and no learner counts a value at a ballot nobody proposed at.
 */
export const proposerBallot: Validator<PaxosBallot> = (v): v is PaxosBallot =>
  paxosBallot(v) && v[0] >= 1 && v[1] !== "";

/** What a Paxos slot can hold. */
export const PaxosValueKind = {
  /** A command for the state machine. */
  Command: 0,
  /** Fills a hole a new leader found, so later slots can be applied. */
  Noop: 1,
  /** A read marker of earlier versions (reads now write nothing): applies nothing. */
  Read: 2,
} as const;
export type PaxosValueKind = (typeof PaxosValueKind)[keyof typeof PaxosValueKind];

export const paxosValueKind = (v: unknown): v is PaxosValueKind => v === 0 || v === 1 || v === 2;

/** A value proposed for a slot. `origin` and `seq` name the learner request it came from ("" and 0 for no-ops). */
export const paxosValue = object({ kind: paxosValueKind, data: bytes, origin: string(64), seq: uint });
export type PaxosValue = Infer<typeof paxosValue>;

/** An acceptor's vote: it accepted `value` in `slot` at `ballot`. */
export const paxosAcceptance = object({ slot: uint, ballot: proposerBallot, value: paxosValue });
export type PaxosAcceptance = Infer<typeof paxosAcceptance>;
