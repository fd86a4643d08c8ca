import type { NodeId } from "@quorate/core";
import { ruleFor, seedPrng } from "@quorate/core/internal";
import { setup } from "xstate";
import type { MembershipChange } from "./config.js";
import type { RaftLog } from "./log.js";
import type { RaftOptions } from "./options.js";
import type { Outbox, Role } from "./outbox.js";
import {
  becomeLeader,
  campaign,
  campaignPreVote,
  candidateReceiveSnapshot,
  canGrantVote,
  commitsOnlyCurrentTerm,
  compactLog,
  heartbeatRoundCurrent,
  inLeaderLease,
  leaderPersisted,
  leaderReceiveSnapshot,
  leaseValid,
  logUpToDate,
  oneChangeAtATime,
  propose,
  type RaftContext,
  type RaftGuardParams,
  type RaftMessage,
  type ReceivedSnapshot,
  type RoleChange,
  readConfirmed,
  receiveSnapshot,
  reconfigure,
  recordPersisted,
  rejectChange,
  rejectProposal,
  rejectRead,
  rejectTransfer,
  resetElectionTimer,
  roundEchoedInTerm,
  startRead,
  startTransfer,
  stepCandidate,
  stepFollower,
  stepLeader,
  stepPreCandidate,
  termCommitted,
  termDurable,
  tickElection,
  tickLeader,
} from "./protocol.js";

/** Events the host sends. Time arrives only as `tick`. */
export type RaftEvent =
  | { type: "tick" }
  | { type: "message"; from: NodeId; message: RaftMessage }
  | { type: "propose"; id: number; commands: readonly Uint8Array[] }
  | { type: "read"; id: number }
  /**
   * A write finished: the log is durable up to `index` (whose entry has `term`), and the hard
   * state up to `durableTerm`, the term the write recorded with its vote.
   */
  | { type: "persisted"; index: number; term: number; durableTerm: number }
  /** Leadership transfer to `to`, or to the most up-to-date follower. */
  | { type: "transfer"; to: NodeId | null }
  /** A membership change, answered in the outbox's `changes` under `id`. */
  | { type: "reconfigure"; id: number; change: MembershipChange }
  /** A complete snapshot from the leader, assembled by the host from chunks. */
  | ({ type: "snapshot"; from: NodeId } & ReceivedSnapshot)
  /** The host made a snapshot at `index` durable. */
  | { type: "compacted"; index: number }
  | RoleChange;

export interface RaftInput {
  id: NodeId;
  options: RaftOptions;
  /** The log, holding the membership configuration as well. */
  log: RaftLog;
  out: Outbox;
  /** Durable state recovered from storage. */
  term: number;
  vote: NodeId | null;
  commitIndex: number;
  /** Seeds election timeouts; the simulator derives it from the run's seed. */
  seed: number | string;
}

/**
 * Runs a rule against a shallow draft of the context and commits the draft with one assign
 * (`ruleFor` in core). The log and the outbox are shared references, so entries never pass
 * through context copies. A rule that changes the role returns the event that moves there.
 *
 * XState's evaluation of the machine's named guards (the paper's rules) reaches the rules through
 * `check` in rules/context.ts for the length of the rule (core's `withGuards`), without a
 * parameter on each rule and without touching the draft.
 */
export const rule = ruleFor<RaftContext, RaftEvent>();

type MessageEvent = Extract<RaftEvent, { type: "message" }>;
type PersistedEvent = Extract<RaftEvent, { type: "persisted" }>;
type SnapshotEvent = Extract<RaftEvent, { type: "snapshot" }>;

function observeRole(role: Role) {
  return rule((d) => {
    d.out.observe({ kind: "role", role, term: d.term, leader: d.leader });
  });
}

export const raftMachine = setup({
  types: {
    context: {} as RaftContext,
    events: {} as RaftEvent,
    input: {} as RaftInput,
  },
  actions: {
    enterFollower: observeRole("follower"),
    enterPreCandidate: rule((d) => {
      d.out.observe({ kind: "role", role: "pre-candidate", term: d.term, leader: null });
      return campaignPreVote(d);
    }),
    enterCandidate: rule((d) => {
      const change = campaign(d);
      d.out.observe({ kind: "role", role: "candidate", term: d.term, leader: null });
      return change;
    }),
    enterLeader: rule((d) => {
      becomeLeader(d);
      d.out.observe({ kind: "role", role: "leader", term: d.term, leader: d.id });
    }),
    tickElection: rule((d) => tickElection(d)),
    tickLeader: rule((d) => tickLeader(d)),
    timedOut: rule((d) => {
      d.out.observe({ kind: "campaign-end", term: d.term, preVote: d.vote !== d.id, outcome: "timed-out" });
    }),
    stepFollower: rule<MessageEvent>((d, e) => stepFollower(d, e.from, e.message)),
    stepPreCandidate: rule<MessageEvent>((d, e) => stepPreCandidate(d, e.from, e.message)),
    stepCandidate: rule<MessageEvent>((d, e) => stepCandidate(d, e.from, e.message)),
    stepLeader: rule<MessageEvent>((d, e) => stepLeader(d, e.from, e.message)),
    propose: rule<Extract<RaftEvent, { type: "propose" }>>((d, e) => propose(d, e.id, e.commands)),
    rejectProposal: rule<Extract<RaftEvent, { type: "propose" }>>((d, e) => rejectProposal(d, e.id)),
    read: rule<Extract<RaftEvent, { type: "read" }>>((d, e) => startRead(d, e.id)),
    rejectRead: rule<Extract<RaftEvent, { type: "read" }>>((d, e) => rejectRead(d, e.id)),
    followerPersisted: rule<PersistedEvent>((d, e) => {
      recordPersisted(d, e.index, e.term, e.durableTerm);
    }),
    leaderPersisted: rule<PersistedEvent>((d, e) => leaderPersisted(d, e.index, e.term, e.durableTerm)),
    transfer: rule<Extract<RaftEvent, { type: "transfer" }>>((d, e) => startTransfer(d, e.to)),
    followerSnapshot: rule<SnapshotEvent>((d, e) => receiveSnapshot(d, e.from, e)),
    candidateSnapshot: rule<SnapshotEvent>((d, e) => candidateReceiveSnapshot(d, e.from, e)),
    leaderSnapshot: rule<SnapshotEvent>((d, e) => leaderReceiveSnapshot(d, e.from, e)),
    compacted: rule<Extract<RaftEvent, { type: "compacted" }>>((d, e) => compactLog(d, e.index)),
    rejectTransfer: rule((d) => rejectTransfer(d)),
    reconfigure: rule<Extract<RaftEvent, { type: "reconfigure" }>>((d, e) => reconfigure(d, e.id, e.change)),
    rejectChange: rule<Extract<RaftEvent, { type: "reconfigure" }>>((d, e) => rejectChange(d, e.id)),
  },
  /** The paper's rules (rules/guards.ts); the simulator's broken variants replace one each. */
  guards: {
    preVoteEnabled: ({ context }) => context.options.preVote,
    logUpToDate: (_, params: RaftGuardParams["logUpToDate"]) => logUpToDate(params),
    canGrantVote: (_, params: RaftGuardParams["canGrantVote"]) => canGrantVote(params),
    inLeaderLease: (_, params: RaftGuardParams["inLeaderLease"]) => inLeaderLease(params),
    commitsOnlyCurrentTerm: (_, params: RaftGuardParams["commitsOnlyCurrentTerm"]) => commitsOnlyCurrentTerm(params),
    termCommitted: (_, params: RaftGuardParams["termCommitted"]) => termCommitted(params),
    readConfirmed: (_, params: RaftGuardParams["readConfirmed"]) => readConfirmed(params),
    leaseValid: (_, params: RaftGuardParams["leaseValid"]) => leaseValid(params),
    heartbeatRoundCurrent: (_, params: RaftGuardParams["heartbeatRoundCurrent"]) => heartbeatRoundCurrent(params),
    roundEchoedInTerm: (_, params: RaftGuardParams["roundEchoedInTerm"]) => roundEchoedInTerm(params),
    termDurable: (_, params: RaftGuardParams["termDurable"]) => termDurable(params),
    oneChangeAtATime: (_, params: RaftGuardParams["oneChangeAtATime"]) => oneChangeAtATime(params),
  },
}).createMachine({
  id: "raft",
  context: ({ input }) => {
    const context: RaftContext = {
      id: input.id,
      options: input.options,
      log: input.log,
      out: input.out,
      term: input.term,
      vote: input.vote,
      leader: null,
      commitIndex: input.commitIndex,
      persistedIndex: input.log.lastIndex,
      durableTerm: input.term,
      prng: seedPrng(input.seed),
      electionElapsedTicks: 0,
      randomizedElectionTicks: input.options.electionTicks,
      heartbeatElapsedTicks: 0,
      votes: {},
      progress: {},
      recentActive: {},
      heartbeatRound: 0,
      ackedHeartbeatRound: {},
      pendingReads: [],
      transferee: null,
      transferElapsedTicks: 0,
      campaignTransfer: false,
      leaderTicks: 0,
      timeoutNowSent: false,
      leaseRound: null,
      leaseExpiresAtTick: 0,
      restartQuiet: input.options.leaseReads,
    };
    resetElectionTimer(context);
    return context;
  },
  initial: "follower",
  on: {
    compacted: { actions: "compacted" },
    "become.follower": { target: ".follower", reenter: true },
    "become.candidate": { target: ".candidate", reenter: true },
    "become.leader": { target: ".leader" },
  },
  states: {
    follower: {
      entry: "enterFollower",
      on: {
        tick: { actions: "tickElection" },
        message: { actions: "stepFollower" },
        snapshot: { actions: "followerSnapshot" },
        "election.timeout": [{ guard: "preVoteEnabled", target: "preCandidate" }, { target: "candidate" }],
        propose: { actions: "rejectProposal" },
        read: { actions: "rejectRead" },
        persisted: { actions: "followerPersisted" },
        transfer: { actions: "rejectTransfer" },
        reconfigure: { actions: "rejectChange" },
      },
    },
    preCandidate: {
      entry: "enterPreCandidate",
      on: {
        tick: { actions: "tickElection" },
        message: { actions: "stepPreCandidate" },
        snapshot: { actions: "candidateSnapshot" },
        "election.timeout": { target: "preCandidate", reenter: true, actions: "timedOut" },
        propose: { actions: "rejectProposal" },
        read: { actions: "rejectRead" },
        persisted: { actions: "followerPersisted" },
        transfer: { actions: "rejectTransfer" },
        reconfigure: { actions: "rejectChange" },
      },
    },
    candidate: {
      entry: "enterCandidate",
      on: {
        tick: { actions: "tickElection" },
        message: { actions: "stepCandidate" },
        snapshot: { actions: "candidateSnapshot" },
        "election.timeout": [
          { guard: "preVoteEnabled", target: "preCandidate", actions: "timedOut" },
          { target: "candidate", reenter: true, actions: "timedOut" },
        ],
        propose: { actions: "rejectProposal" },
        read: { actions: "rejectRead" },
        persisted: { actions: "followerPersisted" },
        transfer: { actions: "rejectTransfer" },
        reconfigure: { actions: "rejectChange" },
      },
    },
    leader: {
      entry: "enterLeader",
      on: {
        tick: { actions: "tickLeader" },
        message: { actions: "stepLeader" },
        snapshot: { actions: "leaderSnapshot" },
        propose: { actions: "propose" },
        read: { actions: "read" },
        persisted: { actions: "leaderPersisted" },
        transfer: { actions: "transfer" },
        reconfigure: { actions: "reconfigure" },
      },
    },
  },
});

export type RaftMachine = typeof raftMachine;
