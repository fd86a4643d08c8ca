import type { NodeId, Timers } from "@quorate/core";
import type { RaftNode } from "@quorate/raft";
import {
  applyChange,
  protocol,
  type RaftContext,
  type RaftEvent,
  type RaftMachine,
  raftMachine,
  rule,
} from "@quorate/raft";
import type { RaftStorage } from "@quorate/storage";
import {
  LEASE_RAFT_OPTIONS,
  type ProtocolAdapter,
  type RaftAdapterOptions,
  raftAdapter,
  type Violation,
} from "../src/index.js";

/*
 * Deliberately broken variants of the real Raft machine, built from its own rules with
 * `provide()`. Each breaks one safety rule the simulator must catch.
 */

type MessageEvent = Extract<RaftEvent, { type: "message" }>;
type PersistedEvent = Extract<RaftEvent, { type: "persisted" }>;

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
      protocol.recordPersisted(d, "leader", e.index, e.term);
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
  "concurrent-changes": { machine: concurrentChangesMachine },
  "old-term-commit": { machine: oldTermCommitMachine },
  "double-vote": { machine: doubleVoteMachine },
  "forget-vote": { wrapStorage: forgetVoteOnRestart },
  "refuse-proposals": { machine: refuseProposalsMachine },
};

export function brokenAdapter(name: keyof typeof BROKEN_VARIANTS) {
  const options = BROKEN_VARIANTS[name];
  if (options === undefined) throw new Error(`no variant ${name}`);
  return raftAdapter(options);
}

/**
 * Raft runs with one more check, on what a leader's read promises: a read that resolves while
 * its member still leads finds no member of a later term that committed past what it applied.
 * A lease makes that so (a quorum votes for no one until the lease expires), and so does a
 * ReadIndex round. Linearizability cannot see its breach when the read was invoked before the
 * newer commit (a request that queued at a paused leader): the read is stale only at the moment
 * it is served.
 */
export function checkingLeaderReads(adapter: ProtocolAdapter): ProtocolAdapter {
  return {
    ...adapter,
    createRun(members) {
      const run = adapter.createRun(members);
      const nodes = new Map<NodeId, RaftNode>();
      let violation: Violation | null = null;
      const served = (node: RaftNode) => {
        const { term, role } = node.status();
        if (role !== "leader") return;
        for (const other of nodes.values()) {
          const status = other.status();
          if (status.term > term && status.commitIndex > node.appliedIndex) {
            violation ??= {
              kind: "leader-read",
              message: `${node.id} served a read in term ${term} at applied index ${node.appliedIndex}, while ${other.id} had committed ${status.commitIndex} in term ${status.term}`,
            };
          }
        }
      };
      return {
        async start(env) {
          const node = (await run.start(env)) as RaftNode;
          nodes.set(env.id, node);
          const readBarrier = node.readBarrier.bind(node);
          return {
            id: node.id,
            leader: () => node.leader(),
            propose: (command) => node.propose(command),
            readBarrier: () => readBarrier().then(() => served(node)),
          };
        },
        crash(member) {
          nodes.delete(member);
          run.crash(member);
        },
        check: () => violation ?? run.check(),
      };
    },
  };
}
