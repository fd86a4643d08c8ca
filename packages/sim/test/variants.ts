import type { Timers } from "@quorate/core";
import { packValue, unpackValue } from "@quorate/core";
import { decodeKvResult, encodeKvCommand, type KvEntry, KvStateMachine } from "@quorate/kv";
import { kvCommand } from "@quorate/kv/internal";
import {
  protocol,
  type RaftEvent,
  type RaftGuardParams,
  type RaftMachine,
  raftMachine,
  rule,
} from "@quorate/raft/internal";
import type { RaftStorage } from "@quorate/storage";
import { LEASE_RAFT_OPTIONS, type RaftAdapterOptions, raftAdapter } from "../src/index.js";

/*
 * Deliberately broken variants of the real Raft machine: each replaces one of the paper's rules,
 * a named guard of the machine (rules/guards.ts), with `provide()`. The simulator must catch them.
 */

/** (1) Figure 8's bug: the leader commits entries of earlier terms by counting their replicas. */
export const oldTermCommitMachine: RaftMachine = raftMachine.provide({
  guards: { commitsOnlyCurrentTerm: () => true },
});

/**
 * (2) One vote per term dropped: a follower or candidate votes for any candidate with an
 * up-to-date log while it knows no leader, though it voted for another in this term.
 */
export const doubleVoteMachine: RaftMachine = raftMachine.provide({
  guards: {
    canGrantVote: (_, { d, request }: RaftGuardParams["canGrantVote"]) =>
      d.leader === null || (request.preVote && request.term > d.term),
  },
});

/** (3) A restarted member comes back without the vote it had made durable. */
export function forgetVoteOnRestart(storage: RaftStorage): RaftStorage {
  return {
    load: async () => {
      const state = await storage.load();
      return { ...state, hardState: { ...state.hardState, vote: null } };
    },
    write: (write) => storage.write(write),
    compact: (upTo) => storage.compact(upTo),
    close: () => storage.close(),
  };
}

/** A leader that refuses every proposal as if it were not leading: safe, but the cluster never makes progress. */
export const refuseProposalsMachine: RaftMachine = raftMachine.provide({
  actions: { propose: rule<Extract<RaftEvent, { type: "propose" }>>((d, e) => protocol.rejectProposal(d, e.id)) },
});

/**
 * One membership change at a time dropped: the leader appends every valid change at once,
 * without waiting for the previous one to commit or for an entry of its own term. Two voters
 * can change between committed configurations, and majorities of the two need not overlap.
 */
export const concurrentChangesMachine: RaftMachine = raftMachine.provide({
  guards: { oneChangeAtATime: () => true },
});

/**
 * (a) ReadIndex without the heartbeat round: once it has committed an entry of its term, a
 * leader answers a read at its commit index at once, though another leader may have replaced it.
 */
export const unconfirmedReadMachine: RaftMachine = raftMachine.provide({
  guards: { readConfirmed: () => true },
});

/**
 * (b) A lease three times the election timeout (with lease reads): it runs two election
 * timeouts past its end, long past the moment the followers may vote for another leader.
 */
export const longLeaseMachine: RaftMachine = raftMachine.provide({
  guards: {
    leaseValid: (_, { d }: RaftGuardParams["leaseValid"]) => {
      const stretched = d.leaseExpiresAtTick === 0 ? 0 : d.leaseExpiresAtTick + 2 * d.options.electionTicks;
      return protocol.leaseValid({ d: { ...d, leaseExpiresAtTick: stretched } });
    },
  },
});

/**
 * (c) A read served before the leader committed an entry of its term: it takes the commit index
 * it inherited, which may lag entries an earlier leader committed, and confirms it with the next
 * heartbeat round as usual.
 */
export const readBeforeTermCommitMachine: RaftMachine = raftMachine.provide({
  guards: { termCommitted: () => true },
});

/**
 * (e) Votes granted on the last log index alone (§5.4.1 compares the last term first): the
 * request is judged as if its last term were the voter's own.
 */
export const indexOnlyVoteMachine: RaftMachine = raftMachine.provide({
  guards: {
    logUpToDate: (_, { d, lastLogIndex }: RaftGuardParams["logUpToDate"]) => lastLogIndex >= d.log.lastIndex,
  },
});

/**
 * (d) Heartbeat rounds not tied to the term (the review's stale ReadIndex, reintroduced where it
 * began): a refusal of an older term's AppendEntries echoes that message's round, so a restarted
 * leader (its counter back at 0) of the newer term receives a round of its previous incarnation
 * as an acknowledgement of its own. The leader refuses an answer to a round it never sent, and
 * the simulator counts any refused message from a correct peer as a violation.
 */
export const staleRoundMachine: RaftMachine = raftMachine.provide({
  guards: { roundEchoedInTerm: () => true },
});

/**
 * (d, whole) The review's stale ReadIndex with both halves back: followers echo an older term's
 * round as above, and the leader believes an answer to a round it never sent in this term. A
 * restarted leader whose old heartbeats reach followers already in its new term then takes those
 * echoes as acknowledgements of reads it has not confirmed.
 */
export const staleRoundAcceptedMachine: RaftMachine = staleRoundMachine.provide({
  guards: { heartbeatRoundCurrent: () => true },
});

/**
 * (f) Messages sent before their term is durable: a voter that wins alone (one voter, perhaps
 * with learners) replicates a term a crash can take back, then enters it again and writes
 * another entry at the same (index, term).
 */
export const sendBeforeDurableTermMachine: RaftMachine = raftMachine.provide({
  guards: { termDurable: () => true },
});

/**
 * (h) The host counts one tick per timer callback whatever the elapsed time: its clock advances
 * by exactly one period per callback of its (only) interval, so a leader paused for seconds
 * resumes one tick older, still trusting its read lease while another leader commits writes.
 */
export function oneTickPerCallback(timers: Timers): Timers {
  let nowMs = 0;
  return {
    now: () => nowMs,
    setInterval: (callback, ms) =>
      timers.setInterval(() => {
        nowMs += ms;
        callback();
      }, ms),
    clearInterval: (handle) => timers.clearInterval(handle),
    setTimeout: (callback, ms) => timers.setTimeout(callback, ms),
    clearTimeout: (handle) => timers.clearTimeout(handle),
  };
}

export const BROKEN_VARIANTS: Record<string, RaftAdapterOptions> = {
  "one-tick-per-callback": { raft: LEASE_RAFT_OPTIONS, wrapTimers: oneTickPerCallback },
  "stale-round": { machine: staleRoundMachine },
  "stale-round-accepted": { machine: staleRoundAcceptedMachine },
  "send-before-durable-term": { machine: sendBeforeDurableTermMachine },
  "concurrent-changes": { machine: concurrentChangesMachine },
  "old-term-commit": { machine: oldTermCommitMachine },
  "double-vote": { machine: doubleVoteMachine },
  "forget-vote": { wrapStorage: forgetVoteOnRestart },
  "refuse-proposals": { machine: refuseProposalsMachine },
  "unconfirmed-read": { machine: unconfirmedReadMachine },
  "long-lease": { machine: longLeaseMachine, raft: LEASE_RAFT_OPTIONS },
  "read-before-term-commit": { machine: readBeforeTermCommitMachine },
  "index-only-vote": { machine: indexOnlyVoteMachine },
};

export function brokenAdapter(name: keyof typeof BROKEN_VARIANTS) {
  const options = BROKEN_VARIANTS[name];
  if (options === undefined) throw new Error(`no variant ${name}`);
  return raftAdapter(options);
}

/**
 * A KV store whose update ignores its revision condition: it writes whatever the key's last
 * revision, as a put would (the compare of a compare-and-swap lost). Only the linearizability
 * check sees it: every replica applies the same wrong result.
 */
export class UnconditionalUpdateStore extends KvStateMachine {
  override apply(command: Uint8Array, index: number): Uint8Array {
    const decoded: unknown = unpackValue(command);
    if (!kvCommand(decoded) || decoded.op !== "update") return super.apply(command, index);
    return super.apply(encodeKvCommand({ op: "put", key: decoded.key, value: decoded.value }), index);
  }
}

/**
 * A KV store whose transactions are not atomic: when the compares hold, only the first write of
 * the success branch applies, yet the result reports the whole branch ran.
 */
export class HalfTxnStore extends KvStateMachine {
  override apply(command: Uint8Array, index: number): Uint8Array {
    const decoded: unknown = unpackValue(command);
    if (!kvCommand(decoded) || decoded.op !== "txn") return super.apply(command, index);
    return super.apply(encodeKvCommand({ ...decoded, success: decoded.success.slice(0, 1) }), index);
  }
}

/** A KV store whose ranges skip the second key they would return. */
export class RangeSkipsKeyStore extends KvStateMachine {
  override *range(prefix: string, fromKey?: string): Generator<[string, KvEntry]> {
    let position = 0;
    for (const found of super.range(prefix, fromKey)) {
      if (position++ !== 1) yield found;
    }
  }
}

/**
 * A KV store whose revoke forgets the lease's keys: it reports a live lease revoked, yet only
 * renews it, so its keys stay until it expires.
 */
export class RevokeKeepsKeysStore extends KvStateMachine {
  override apply(command: Uint8Array, index: number): Uint8Array {
    const decoded: unknown = unpackValue(command);
    if (!kvCommand(decoded) || decoded.op !== "revoke" || this.lease(decoded.lease) === null) {
      return super.apply(command, index);
    }
    super.apply(encodeKvCommand({ op: "keepAlive", lease: decoded.lease }), index);
    return packValue({ ok: true, value: true });
  }
}

/** A KV store whose lease clock runs at twice the ticks' pace, so leases expire at half their TTL. */
export class EarlyExpiryStore extends KvStateMachine {
  override apply(command: Uint8Array, index: number): Uint8Array {
    const decoded: unknown = unpackValue(command);
    if (!kvCommand(decoded) || decoded.op !== "tick") return super.apply(command, index);
    return super.apply(encodeKvCommand({ ...decoded, elapsedMs: 2 * decoded.elapsedMs }), index);
  }
}

/**
 * A KV store whose delete reports the revision of the value it deleted (the key's modRevision,
 * as a previous-entry field would) instead of its own.
 */
export class DeleteOldRevisionStore extends KvStateMachine {
  override apply(command: Uint8Array, index: number): Uint8Array {
    const decoded: unknown = unpackValue(command);
    if (!kvCommand(decoded) || decoded.op !== "delete") return super.apply(command, index);
    const deleted = this.entry(decoded.key);
    const result = super.apply(command, index);
    const outcome = decodeKvResult(result);
    if (deleted === null || outcome === null || !outcome.ok || outcome.revision === undefined) return result;
    return packValue({ ...outcome, revision: deleted.revision });
  }
}
