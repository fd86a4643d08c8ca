import type { MessageMap, MessageType, NodeId } from "@quorate/core";
import { ballotKey } from "./invariants.js";

/**
 * The Paxos read-quorum check, from the messages the roles send and receive: when the active
 * proposer answers a learner's read (`paxos.read.index`), a phase-2 quorum of acceptors must have
 * answered (`paxos.alive`) a heartbeat of the proposer's ballot that it sent after the read
 * reached it. Any phase-1 quorum of a higher ballot shares an acceptor with that quorum, so no
 * such ballot had completed phase 1 when the read arrived (packages/paxos/README.md, "Reads").
 *
 * The stale-read invariant catches a proposer that skips this only when a newer proposer's write
 * happens to overtake the read; this check catches it on the first read, whatever the schedule.
 */
/** Arrivals of one read kept for the check; a read resent more often than this is checked against the first ones. */
const MAX_ARRIVALS_PER_READ = 64;

export class PaxosReadQuorum {
  /**
   * When each read reached its proposer, every arrival of it (faults duplicate messages, learners
   * resend): proposer → `${learner}/${read}` → ms, oldest first. The proposer answers arrivals in
   * order (each takes the round after those already sent), so an answer is checked against the
   * oldest arrival not answered yet: never later than the one it answers, so never a false alarm.
   */
  readonly #taken = new Map<NodeId, Map<string, number[]>>();
  /** When each heartbeat was sent: `${proposer}/${ballot}/${round}` → ms. */
  readonly #heartbeatSentAt = new Map<string, number>();
  /** The ballot of each proposer's latest heartbeat: the ballot it serves reads in. */
  readonly #ballotOf = new Map<NodeId, string>();
  /** Per `${proposer}/${ballot}` and acceptor, the latest send time of a heartbeat it answered. */
  readonly #answered = new Map<string, Map<NodeId, number>>();

  constructor(
    private readonly q2: number,
    private readonly fail: (message: string) => void,
  ) {}

  /** A message reached `role` at `now`. */
  delivered(role: NodeId, type: MessageType, sender: NodeId, body: MessageMap[MessageType], now: number): void {
    if (type !== "paxos.read") return;
    const taken = this.#taken.get(role) ?? new Map<string, number[]>();
    this.#taken.set(role, taken);
    for (const read of (body as MessageMap["paxos.read"]).reads) {
      const key = `${sender}/${read}`;
      const arrivals = taken.get(key) ?? [];
      if (arrivals.length < MAX_ARRIVALS_PER_READ) arrivals.push(now);
      taken.set(key, arrivals);
    }
  }

  /** `role` sends a message to `to` (null: to everyone) at `now`. */
  sending(role: NodeId, type: MessageType, body: MessageMap[MessageType], to: NodeId | null, now: number): void {
    if (type === "paxos.heartbeat") {
      const { ballot, round } = body as MessageMap["paxos.heartbeat"];
      const key = ballotKey(ballot);
      this.#ballotOf.set(role, key);
      this.#heartbeatSentAt.set(`${role}/${key}/${round}`, now);
    } else if (type === "paxos.alive" && to !== null) {
      const { ballot, round } = body as MessageMap["paxos.alive"];
      const key = `${to}/${ballotKey(ballot)}`;
      const sentAt = this.#heartbeatSentAt.get(`${key}/${round}`);
      if (sentAt === undefined) return;
      const answered = this.#answered.get(key) ?? new Map<NodeId, number>();
      this.#answered.set(key, answered);
      answered.set(role, Math.max(answered.get(role) ?? Number.NEGATIVE_INFINITY, sentAt));
    } else if (type === "paxos.read.index" && to !== null) {
      this.#readAnswered(role, to, (body as MessageMap["paxos.read.index"]).reads);
    }
  }

  /**
   * A role crashed: a proposer's pending reads and rounds are gone with it. A learner's reads
   * stay: the proposer still answers those it holds, and duplicates still in the network may reach
   * it; read ids are the learner incarnation's own, so a restarted learner never reuses them.
   */
  crashed(role: NodeId): void {
    this.#taken.delete(role);
    this.#ballotOf.delete(role);
  }

  #readAnswered(proposer: NodeId, learner: NodeId, reads: readonly number[]): void {
    const taken = this.#taken.get(proposer);
    const ballot = this.#ballotOf.get(proposer);
    const answered = ballot === undefined ? undefined : this.#answered.get(`${proposer}/${ballot}`);
    for (const read of reads) {
      const key = `${learner}/${read}`;
      const arrivals = taken?.get(key);
      const takenAt = arrivals?.shift();
      if (arrivals?.length === 0) taken?.delete(key);
      if (takenAt === undefined) continue;
      const confirmed = answered === undefined ? [] : [...answered].filter(([, sentAt]) => sentAt >= takenAt);
      if (confirmed.length >= this.q2) continue;
      this.fail(
        `${proposer} answered read ${read} of ${learner}, which reached it at ${takenAt}ms, in ballot ` +
          `${ballot ?? "(none)"}, but only [${confirmed.map(([acceptor]) => acceptor).join(",")}] answered a ` +
          `heartbeat of that ballot sent since (phase-2 quorum ${this.q2})`,
      );
    }
  }
}
