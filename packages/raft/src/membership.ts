import { ErrorCode, isQuorateError, type NodeId, QuorateError, type Timers } from "@quorate/core";
import { rejectAll } from "@quorate/core/internal";
import type { MembershipChange } from "./config.js";
import type { RaftEvent } from "./machine.js";
import type { Membership } from "./node-options.js";
import type { ChangeOutcome, RaftObservation, Role } from "./outbox.js";
import { notLeader, type RaftRequests } from "./requests.js";

interface PendingChange {
  readonly resolve: (outcome: Extract<ChangeOutcome, { ok: true }>) => void;
  readonly reject: (err: Error) => void;
}

interface TransferWaiter {
  resolve(leader: NodeId): void;
  reject(err: Error): void;
}

export interface RaftMembershipOptions {
  readonly id: NodeId;
  readonly timers: Timers;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly requests: RaftRequests;
  /** The node's role, the leader it knows, and the latest configuration in its log. */
  readonly node: { role(): Role; leader(): NodeId | null; membership(): Membership };
  /** Ids for requests handed to the machine, shared with proposal and read batches. */
  readonly nextId: () => number;
  readonly event: (event: RaftEvent) => void;
}

/**
 * The membership API: one change at a time through the leader's log (thesis §4.1), adding a
 * member as a learner and promoting it once caught up (§4.2.1), and leadership transfer (§3.10).
 * Each request counts against the node's proposal limit until it settles.
 */
export class RaftMembership {
  #transferWaiters: TransferWaiter[] = [];
  readonly #changeRequests = new Map<number, PendingChange>();

  constructor(private readonly options: RaftMembershipOptions) {}

  /** RaftNode.transferLeadership. */
  transferLeadership(to?: NodeId): Promise<NodeId> {
    const { id, requests, timers } = this.options;
    return requests.admit<NodeId>((resolve, reject) => {
      if (this.options.node.role() !== "leader") {
        reject(notLeader(id, this.options.node.leader()));
        return;
      }
      const { voters } = this.options.node.membership();
      if (to !== undefined && !voters.includes(to)) {
        reject(new QuorateError(ErrorCode.Config, `'${to}' is not a voter (${voters.join(",")})`));
        return;
      }
      // Bounded: the machine aborts after an election timeout, but a member that stepped down
      // and has not yet heard the new leader would otherwise wait without end.
      const limitMs = 2 * this.options.electionTicks * this.options.tickMs;
      const timer = timers.setTimeout(() => {
        const i = this.#transferWaiters.indexOf(waiter);
        if (i >= 0) this.#transferWaiters.splice(i, 1);
        reject(new QuorateError(ErrorCode.Rejected, `leadership transfer did not complete within ${limitMs} ms`));
      }, limitMs);
      const waiter: TransferWaiter = {
        resolve: (leader) => {
          timers.clearTimeout(timer);
          resolve(leader);
        },
        reject: (err) => {
          timers.clearTimeout(timer);
          reject(err);
        },
      };
      this.#transferWaiters.push(waiter);
      this.options.event({ type: "transfer", to: to ?? null });
    });
  }

  /** RaftNode.changeMembership: the change is appended, then waits until applied. */
  changeMembership(change: MembershipChange): Promise<Membership> {
    return this.options.requests.admit<Membership>((resolve, reject) => {
      const id = this.options.nextId();
      this.#changeRequests.set(id, {
        resolve: (outcome) =>
          this.options.requests.awaitApplied(
            outcome.index,
            {
              term: outcome.term,
              resolve: () => resolve({ ...outcome.config, index: outcome.index, committed: true }),
              reject,
            },
            `membership change at index ${outcome.index} was not committed in time; it may still commit`,
          ),
        reject,
      });
      this.options.event({ type: "reconfigure", id, change });
    });
  }

  /** RaftNode.addMember: as a learner first, then promoted unless `learner`. */
  async addMember(member: NodeId, learner: boolean, catchUpTimeoutMs: number | undefined): Promise<Membership> {
    let membership: Membership;
    if (this.options.node.membership().learners.includes(member) && !learner) {
      membership = this.options.node.membership();
    } else {
      membership = await this.changeMembership({ type: "add-learner", member });
    }
    if (learner) return membership;
    return this.promoteMember(member, catchUpTimeoutMs);
  }

  /** Makes learner `member` a voter once it has caught up, retrying until `catchUpTimeoutMs`. */
  async promoteMember(member: NodeId, catchUpTimeoutMs = 300_000): Promise<Membership> {
    // Catching up and the previous change committing both take replication rounds: retry every two ticks.
    const retryMs = this.options.tickMs * 2;
    for (let waited = 0; ; waited += retryMs) {
      try {
        return await this.changeMembership({ type: "promote", member });
      } catch (err) {
        if (!isQuorateError(err, ErrorCode.ChangeInProgress) || waited >= catchUpTimeoutMs) throw err;
      }
      await new Promise<void>((resolve) => this.options.timers.setTimeout(resolve, retryMs));
    }
  }

  /** The machine answered for a change: refused, or appended (it then waits to be applied). */
  changeAnswered(outcome: ChangeOutcome): void {
    const request = this.#changeRequests.get(outcome.id);
    if (request === undefined) return;
    this.#changeRequests.delete(outcome.id);
    if (outcome.ok) {
      request.resolve(outcome);
      return;
    }
    const code =
      outcome.reason === "invalid"
        ? ErrorCode.Membership
        : outcome.reason === "not-leader"
          ? ErrorCode.NotLeader
          : ErrorCode.ChangeInProgress;
    request.reject(new QuorateError(code, outcome.message, { leader: outcome.leader }));
  }

  /** A transfer the machine aborted or rejected fails its waiters. */
  observe(observation: RaftObservation): void {
    if (this.#transferWaiters.length === 0) return;
    if (observation.kind === "transfer" && observation.status !== "started") {
      rejectAll(
        this.#transferWaiters.splice(0),
        new QuorateError(ErrorCode.Rejected, `leadership transfer ${observation.status}`),
      );
    }
  }

  /** Once this member sees another lead, a transfer it asked for is done. */
  leaderSeen(leader: NodeId | null): void {
    if (this.#transferWaiters.length > 0 && leader !== null && leader !== this.options.id) {
      for (const w of this.#transferWaiters.splice(0)) w.resolve(leader);
    }
  }

  /** Fails every waiting transfer and change, because the node stops with `err`. */
  failAll(err: Error): void {
    rejectAll(this.#transferWaiters.splice(0), err);
    rejectAll([...this.#changeRequests.values()], err);
    this.#changeRequests.clear();
  }
}
