import type { Timers } from "@quorate/core";
import { unpackValue } from "@quorate/core";
import { encodeKvCommand, KvStateMachine, kvCommand } from "@quorate/kv";
import {
  applyChange,
  protocol,
  type RaftContext,
  type RaftEvent,
  type RaftMachine,
  raftMachine,
  rule,
} from "@quorate/raft/internal";
import type { RaftStorage } from "@quorate/storage";
import { LEASE_RAFT_OPTIONS, type RaftAdapterOptions, raftAdapter } from "../src/index.js";

/*
 * Deliberately broken variants of the real Raft machine, built from its own rules with
 * `provide()`. Each breaks one safety rule the simulator must catch.
 */

type MessageEvent = Extract<RaftEvent, { type: "message" }>;
type PersistedEvent = Extract<RaftEvent, { type: "persisted" }>;
type ReadEvent = Extract<RaftEvent, { type: "read" }>;

/** Commits the quorum's match index whatever its term: Figure 8's bug (no current-term check). */
function commitByCounting(d: RaftContext): void {
  const quorumMatch = protocol.quorumMatch(d);
  if (quorumMatch > d.commitIndex) d.commitIndex = quorumMatch;
}

/** (1) The leader commits entries of earlier terms by counting their replicas. */
export const oldTermCommitMachine: RaftMachine = raftMachine.provide({
  actions: {
    stepLeader: rule<MessageEvent>((d, e) => {
      const change = protocol.step(d, "leader", e.from, e.message);
      if (change === null) commitByCounting(d);
      return change;
    }),
    persistedAsLeader: rule<PersistedEvent>((d, e) => {
      protocol.recordPersisted(d, "leader", e.index, e.term, e.durableTerm);
      commitByCounting(d);
    }),
  },
});

/** Forgets this term's vote before a vote request of the same term, so a second candidate can get it. */
function stepForgettingVote(role: "follower" | "candidate") {
  return rule<MessageEvent>((d, e) => {
    const m = e.message;
    if (m.type === "raft.vote" && !m.body.preVote && m.body.term === d.term) d.vote = null;
    return protocol.step(d, role, e.from, m);
  });
}

/** (2) Followers and candidates can grant two votes in one term. */
export const doubleVoteMachine: RaftMachine = raftMachine.provide({
  actions: {
    stepFollower: stepForgettingVote("follower"),
    stepCandidate: stepForgettingVote("candidate"),
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
  actions: {
    propose: rule<Extract<RaftEvent, { type: "propose" }>>((d, e) => protocol.rejectProposal(d, e.id)),
  },
});

/**
 * Appends every valid membership change at once, without waiting for the previous one to commit
 * or for an entry of the leader's own term: two voters can change between committed
 * configurations, and majorities of the two need not overlap.
 */
export const concurrentChangesMachine: RaftMachine = raftMachine.provide({
  actions: {
    reconfigure: rule<Extract<RaftEvent, { type: "reconfigure" }>>((d, e) => {
      const next = applyChange(d.log.config, e.change);
      if (typeof next === "string") {
        d.out.changes.push({ id: e.id, ok: false, reason: "invalid", message: next, leader: d.id });
        return;
      }
      const index = d.log.lastIndex + 1;
      protocol.appendAndBroadcast(d, [protocol.configEntry(d.term, next)]);
      d.out.changes.push({ id: e.id, ok: true, index, term: d.term, config: next });
    }),
  },
});

/** Whether the leader has committed an entry of its own term, so its commit index covers every earlier leader's. */
function committedInTerm(d: RaftContext): boolean {
  return d.log.term(d.commitIndex) === d.term;
}

/**
 * (a) ReadIndex without the heartbeat round: once it has committed an entry of its term, a
 * leader answers a read at its commit index at once, though another leader may have replaced it.
 */
export const unconfirmedReadMachine: RaftMachine = raftMachine.provide({
  actions: {
    read: rule<ReadEvent>((d, e) => {
      if (committedInTerm(d)) d.out.reads.push({ id: e.id, ok: true, index: d.commitIndex });
      else protocol.startRead(d, e.id);
    }),
  },
});

/**
 * (b) A lease three times the election timeout (with lease reads): whenever a quorum's
 * acknowledgement extends the lease, it is stretched to three election timeouts from now, long
 * past the moment the followers may vote for another leader.
 */
function stretchingLease<E extends MessageEvent | PersistedEvent>(
  rules: (d: RaftContext, e: E) => ReturnType<typeof protocol.step>,
) {
  return rule<E>((d, e) => {
    const before = d.leaseExpires;
    const change = rules(d, e);
    if (d.leaseExpires > before) d.leaseExpires = d.leaderTicks + 3 * d.options.electionTicks;
    return change;
  });
}

export const longLeaseMachine: RaftMachine = raftMachine.provide({
  actions: {
    stepLeader: stretchingLease<MessageEvent>((d, e) => protocol.step(d, "leader", e.from, e.message)),
    persistedAsLeader: stretchingLease<PersistedEvent>((d, e) =>
      protocol.recordPersisted(d, "leader", e.index, e.term, e.durableTerm),
    ),
  },
});

/**
 * (c) A read served before the leader committed an entry of its term: it takes the commit index
 * it inherited, which may lag entries an earlier leader committed, and confirms it with the next
 * heartbeat round as usual.
 */
export const readBeforeTermCommitMachine: RaftMachine = raftMachine.provide({
  actions: {
    read: rule<ReadEvent>((d, e) => {
      protocol.startRead(d, e.id);
      if (committedInTerm(d)) return;
      d.pendingReads = d.pendingReads.map((r) =>
        r.index === null ? { ...r, index: d.commitIndex, seq: d.seq + 1 } : r,
      );
    }),
  },
});

/**
 * (e) Votes granted on the last log index alone (RaftLog.isUpToDate compares the last term
 * first): the request is judged as if its last term were the voter's own.
 */
function stepComparingIndexOnly(role: "follower" | "pre-candidate" | "candidate" | "leader") {
  return rule<MessageEvent>((d, e) => {
    const m = e.message;
    const judged = m.type === "raft.vote" ? { ...m, body: { ...m.body, lastLogTerm: d.log.lastTerm } } : m;
    return protocol.step(d, role, e.from, judged);
  });
}

export const indexOnlyVoteMachine: RaftMachine = raftMachine.provide({
  actions: {
    stepFollower: stepComparingIndexOnly("follower"),
    stepPreCandidate: stepComparingIndexOnly("pre-candidate"),
    stepCandidate: stepComparingIndexOnly("candidate"),
    stepLeader: stepComparingIndexOnly("leader"),
  },
});

/**
 * (d) Heartbeat rounds not tied to the term (the review's stale ReadIndex, reintroduced where it
 * began): a refusal of an older term's AppendEntries echoes that message's round, so a restarted
 * leader (its counter back at 0) of the newer term receives a round of its previous incarnation
 * as an acknowledgement of its own. The leader refuses an answer to a round it never sent, and
 * the simulator counts any refused message from a correct peer as a violation.
 */
function echoStaleRounds(role: "follower" | "pre-candidate" | "candidate") {
  return rule<MessageEvent>((d, e) => {
    const m = e.message;
    if (m.type !== "raft.append" || m.body.term >= d.term) return protocol.step(d, role, e.from, m);
    const { prevLogIndex, seq } = m.body;
    const refusal = { term: d.term, success: false, index: prevLogIndex, lastIndex: d.log.lastIndex, seq };
    d.out.send(e.from, "raft.append.resp", { ...refusal, conflictIndex: 0, conflictTerm: 0 }, true);
    return null;
  });
}

export const staleRoundMachine: RaftMachine = raftMachine.provide({
  actions: {
    stepFollower: echoStaleRounds("follower"),
    stepPreCandidate: echoStaleRounds("pre-candidate"),
    stepCandidate: echoStaleRounds("candidate"),
  },
});

/**
 * (d, whole) The review's stale ReadIndex with both halves back: followers echo an older term's
 * round as above, and the leader believes an answer to a round it never sent in this term (its
 * acknowledged round only grows). A restarted leader whose old heartbeats reach followers already
 * in its new term then takes those echoes as acknowledgements of reads it has not confirmed.
 */
export const staleRoundAcceptedMachine: RaftMachine = staleRoundMachine.provide({
  actions: {
    stepLeader: rule<MessageEvent>((d, e) => {
      const m = e.message;
      if (m.type !== "raft.append.resp" || m.body.term !== d.term || m.body.seq <= d.seq)
        return protocol.step(d, "leader", e.from, m);
      if ((d.ackedSeq[e.from] ?? 0) < m.body.seq) {
        d.ackedSeq = { ...d.ackedSeq, [e.from]: m.body.seq };
        protocol.confirmReads(d);
        protocol.extendLease(d);
      }
      return null;
    }),
  },
});

/**
 * (f) A leader that sends before its term is durable: it takes its new term as already on disk,
 * so a voter that wins alone (one voter, perhaps with learners) replicates a term a crash can
 * take back, then enters it again and writes another entry at the same (index, term).
 */
export const sendBeforeDurableTermMachine: RaftMachine = raftMachine.provide({
  actions: {
    enterLeader: rule((d) => {
      d.durableTerm = d.term;
      protocol.becomeLeader(d);
      d.out.observe({ kind: "role", role: "leader", term: d.term, leader: d.id });
    }),
  },
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
