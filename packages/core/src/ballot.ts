import { isValidToken } from "./ids.js";
import { uint, type Validator } from "./schema.js";

/*
 * Paxos ballots. They are Paxos's, but in core: the acceptor storage in @quorate/storage checks
 * that a promise never goes back, and storage sits below @quorate/paxos (paxos depends on it), so
 * paxos and storage take ballots from here rather than one from the other.
 */

/**
 * A Paxos ballot: [round, proposer id], compared by round, then by proposer id. A tuple, not a
 * packed uint64, because msgpack would need BigInt for that. [0, ""] is the ballot below all.
 */
export type PaxosBallot = readonly [round: number, proposer: string];

export const paxosBallot: Validator<PaxosBallot> = (v): v is PaxosBallot =>
  Array.isArray(v) && v.length === 2 && uint(v[0]) && (v[1] === "" || isValidToken(v[1]));

/** The ballot below every real one: what a new acceptor has promised. */
export const NO_BALLOT: PaxosBallot = [0, ""];

/** Compares ballots by round, then proposer id: negative, zero or positive. */
export function compareBallots(a: PaxosBallot, b: PaxosBallot): number {
  if (a[0] !== b[0]) return a[0] - b[0];
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}
