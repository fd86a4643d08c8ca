import {
  type AppendEntries,
  type AppendResponse,
  EntryKind,
  invariant,
  type MessageMap,
  type MessageType,
  type NodeId,
  nextInt,
  packEntries,
  type RequestVote,
  unpackEntries,
  type VoteResponse,
} from "@quorate/core";
import { applyChange, type ClusterConfig, encodeConfig, type MembershipChange } from "./config.js";
import { entryBytes, type LogEntry, type RaftLog } from "./log.js";
import type { RaftOptions } from "./options.js";
import type { Outbox, Role } from "./outbox.js";

/**
 * The Raft rules as functions over a draft of the machine's context. The machine (machine.ts)
 * decides which rule runs in which role; these functions change the draft, append to the
 * in-memory log and queue effects in the outbox. No IO, no clock, no global randomness.
 */

/**
 * The message types the Raft machine steps. Other protocols' frames are not its business, and
 * snapshot chunks are assembled by the host, which hands the machine a whole snapshot.
 */
export type RaftMessageType = Exclude<Extract<MessageType, `raft.${string}`>, "raft.snapshot" | "raft.snapshot.resp">;

/** A message as the machine sees it: its type and validated body. */
export type RaftMessage = { [K in RaftMessageType]: { type: K; body: MessageMap[K] } }[RaftMessageType];

export function isRaftMessageType(type: MessageType): type is RaftMessageType {
  return type.startsWith("raft.") && type !== "raft.snapshot" && type !== "raft.snapshot.resp";
}

/** Leader-side view of one follower (etcd's Progress). */
export interface Progress {
  /** Highest index known to match the leader's log. */
  readonly match: number;
  /** Next index to send. */
  readonly next: number;
  /**
   * probe: one message per heartbeat until a match is found; replicate: pipelined;
   * snapshot: the follower is behind the compaction point and a snapshot is on its way.
   */
  readonly state: "probe" | "replicate" | "snapshot";
  /** The snapshot index being sent, in the snapshot state. */
  readonly pendingSnapshot: number;
  readonly probeSent: boolean;
  /** Last index and bytes of each pipelined message not yet acknowledged. */
  readonly inflight: readonly { readonly index: number; readonly bytes: number }[];
  /**
   * Heartbeat intervals with messages in flight and no acknowledgement: a lost pipeline falls
   * back to probe after an election timeout's worth of them.
   */
  readonly stalledHeartbeats: number;
}

export interface PendingRead {
  readonly id: number;
  /** The commit index to wait for, or null until the leader has committed an entry of its term. */
  readonly index: number | null;
  /** Heartbeat round whose acknowledgement by a quorum confirms leadership. */
  readonly seq: number;
}

export interface RaftContext {
  readonly id: NodeId;
  readonly options: RaftOptions;
  /**
   * The log, shared by reference with the host: never copied into context snapshots. It holds
   * the membership too (`log.config`): voters and learners change with the log.
   */
  readonly log: RaftLog;
  /** Effects for the host, shared by reference. */
  readonly out: Outbox;
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  commitIndex: number;
  /** Last index the host reported durable in local storage. */
  persistedIndex: number;
  /**
   * The term the host last reported durable (with the vote). Every message carries the term;
   * none leaves while it is above this one (`termDurable`).
   */
  durableTerm: number;
  prng: number;
  electionElapsed: number;
  randomizedElectionTimeout: number;
  heartbeatElapsed: number;
  /** Responses in the current campaign: true granted, false rejected. */
  votes: Readonly<Record<NodeId, boolean>>;
  progress: Readonly<Record<NodeId, Progress>>;
  /** Followers heard from since the last CheckQuorum round. */
  recentActive: Readonly<Record<NodeId, boolean>>;
  /** Leader round counter, echoed by followers; ReadIndex counts acks of a round sent after the read. */
  seq: number;
  ackedSeq: Readonly<Record<NodeId, number>>;
  pendingReads: readonly PendingRead[];
  /** The member this leader is handing leadership to (thesis §3.10), while a transfer runs. */
  transferee: NodeId | null;
  transferElapsed: number;
  /** Set by TimeoutNow: the next campaign skips pre-vote and tells voters it was asked for. */
  campaignTransfer: boolean;
  /** Ticks since this member became leader: the clock of its read lease. */
  leaderTicks: number;
  /**
   * Set when this leader sends a TimeoutNow: the target may win an election at any moment from
   * then on, even after the transfer aborts, so the lease is done for the rest of the term.
   */
  timeoutNowSent: boolean;
  /** The heartbeat round whose quorum acknowledgement extends the lease, while one is out. */
  leaseRound: { readonly seq: number; readonly tick: number } | null;
  /** The lease holds while leaderTicks is below this. */
  leaseExpires: number;
  /**
   * With lease reads, a member that just started refuses votes for an election timeout, as if
   * it had heard from a leader: it may have acknowledged a lease it no longer remembers.
   */
  restartQuiet: boolean;
}

/** Election timeouts a silent snapshot transfer may last before the leader starts it again. */
const SNAPSHOT_STALL_ELECTIONS = 10;

/** Internal events the rules raise to move the machine between roles. */
export type RoleChange =
  | { type: "election.timeout" }
  | { type: "become.follower" }
  | { type: "become.candidate" }
  | { type: "become.leader" };

export function voters(ctx: RaftContext): readonly NodeId[] {
  return ctx.log.config.voters;
}

export function isVoter(ctx: RaftContext, id: NodeId): boolean {
  return ctx.log.config.voters.includes(id);
}

export function quorum(ctx: RaftContext): number {
  return Math.floor(voters(ctx).length / 2) + 1;
}

/** Voters other than this member: those whose answers count towards a quorum. */
function peerVoters(ctx: RaftContext): NodeId[] {
  return voters(ctx).filter((v) => v !== ctx.id);
}

/** Everyone the leader replicates to: voters and learners other than itself. */
function replicas(ctx: RaftContext): NodeId[] {
  const { voters, learners } = ctx.log.config;
  return [...voters, ...learners].filter((m) => m !== ctx.id);
}

/** This member's own vote towards a quorum: a leader being removed leads on without counting itself. */
function selfVote(ctx: RaftContext): number {
  return isVoter(ctx, ctx.id) ? 1 : 0;
}

/**
 * Whether this member's current term (and the vote cast in it) is on disk. Every Raft message
 * carries the sender's term, so none may leave before: a member that crashed first would come
 * back in the old term, could use the same term again, and write a second entry at an (index,
 * term) a follower already holds from the first (the one-voter divergence). Whatever the quorum size.
 */
export function termDurable(d: RaftContext): boolean {
  return d.durableTerm === d.term;
}

/** Queues a message; it waits for the host's write when it depends on state not yet durable. */
function send<T extends RaftMessageType>(
  d: RaftContext,
  to: NodeId | null,
  type: T,
  body: MessageMap[T],
  afterPersist: boolean,
): void {
  d.out.send(to, type, body, afterPersist || !termDurable(d));
}

/** Heartbeat intervals in an election timeout: the unit stalled pipelines are judged in. */
function heartbeatsPerElection(d: RaftContext): number {
  return Math.ceil(d.options.electionTicks / d.options.heartbeatTicks);
}

export function resetElectionTimer(d: RaftContext): void {
  d.electionElapsed = 0;
  const [timeout, prng] = nextInt(d.prng, d.options.electionTicks, 2 * d.options.electionTicks - 1);
  d.randomizedElectionTimeout = timeout;
  d.prng = prng;
}

/** Commit only moves forward, and never past what this member's log holds. */
function setCommitIndex(d: RaftContext, index: number): void {
  invariant(index > d.commitIndex, `commit index must advance (${index} <= ${d.commitIndex})`);
  invariant(index <= d.log.lastIndex, `commit index ${index} beyond the last log index ${d.log.lastIndex}`);
  d.commitIndex = index;
}

function setTerm(d: RaftContext, term: number): void {
  invariant(term >= d.term, `term must not go back (${term} < ${d.term})`);
  if (term !== d.term) {
    d.term = term;
    d.vote = null;
    d.out.hardStateChanged = true;
  }
}

/** Becomes (or stays) a follower at `term`; the caller raises the role change if needed. */
export function becomeFollower(d: RaftContext, term: number, leader: NodeId | null): void {
  setTerm(d, term);
  d.leader = leader;
  d.votes = {};
  d.transferee = null;
  resetElectionTimer(d);
  failPendingReads(d);
}

function failPendingReads(d: RaftContext): void {
  for (const read of d.pendingReads) d.out.reads.push({ id: read.id, ok: false, leader: d.leader });
  d.pendingReads = [];
}

// ---------------------------------------------------------------------------------------------
// Ticks

export function tickElection(d: RaftContext): RoleChange | null {
  d.electionElapsed++;
  if (d.restartQuiet && d.electionElapsed >= d.options.electionTicks) d.restartQuiet = false;
  // Learners and members outside the configuration never campaign.
  if (d.electionElapsed >= d.randomizedElectionTimeout && isVoter(d, d.id)) {
    return { type: "election.timeout" };
  }
  return null;
}

export function tickLeader(d: RaftContext): RoleChange | null {
  d.electionElapsed++;
  d.heartbeatElapsed++;
  d.leaderTicks++;
  if (d.transferee !== null && ++d.transferElapsed >= d.options.electionTicks) {
    // The target did not take over within an election timeout: resume as leader (etcd does the same).
    d.out.observe({ kind: "transfer", to: d.transferee, status: "aborted" });
    d.transferee = null;
  }
  if (d.electionElapsed >= d.options.electionTicks) {
    d.electionElapsed = 0;
    if (d.options.checkQuorum) {
      const active = selfVote(d) + peerVoters(d).filter((p) => d.recentActive[p] === true).length;
      d.recentActive = {};
      if (active < quorum(d)) {
        d.out.observe({ kind: "step-down", term: d.term, reason: "check-quorum" });
        becomeFollower(d, d.term, null);
        return { type: "become.follower" };
      }
    }
  }
  if (d.heartbeatElapsed >= d.options.heartbeatTicks) {
    d.heartbeatElapsed = 0;
    broadcastHeartbeat(d);
    if (d.options.leaseReads && d.leaseRound === null && !d.timeoutNowSent) {
      d.leaseRound = { seq: d.seq, tick: d.leaderTicks };
    }
    for (const peer of replicas(d)) {
      const pr = d.progress[peer] as Progress;
      if (pr.state === "probe") {
        // One probe per heartbeat, as etcd does: a lost probe is retried here.
        setProgress(d, peer, { probeSent: false });
        sendAppend(d, peer);
      } else if (pr.state === "snapshot") {
        // The host streams and resumes the snapshot; only a transfer silent for long starts over.
        const stalled = pr.stalledHeartbeats + 1;
        if (stalled >= SNAPSHOT_STALL_ELECTIONS * heartbeatsPerElection(d)) {
          setProgress(d, peer, { state: "probe", probeSent: false, stalledHeartbeats: 0 });
          sendAppend(d, peer);
        } else {
          setProgress(d, peer, { stalledHeartbeats: stalled });
        }
      } else if (pr.inflight.length > 0) {
        const stalled = pr.stalledHeartbeats + 1;
        if (stalled >= heartbeatsPerElection(d)) {
          setProgress(d, peer, {
            state: "probe",
            next: pr.match + 1,
            probeSent: false,
            inflight: [],
            stalledHeartbeats: 0,
          });
          sendAppend(d, peer);
        } else {
          setProgress(d, peer, { stalledHeartbeats: stalled });
        }
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Campaigns

export function campaignPreVote(d: RaftContext): RoleChange | null {
  d.leader = null;
  d.votes = { [d.id]: true };
  resetElectionTimer(d);
  d.out.observe({ kind: "campaign", term: d.term + 1, preVote: true });
  if (quorum(d) === 1) return { type: "become.candidate" };
  send(d, null, "raft.vote", voteRequest(d, d.term + 1, true), true);
  return null;
}

export function campaign(d: RaftContext): RoleChange | null {
  setTerm(d, d.term + 1);
  d.vote = d.id;
  d.out.hardStateChanged = true;
  d.leader = null;
  d.votes = { [d.id]: true };
  resetElectionTimer(d);
  d.out.observe({ kind: "campaign", term: d.term, preVote: false });
  const transfer = d.campaignTransfer;
  d.campaignTransfer = false;
  if (quorum(d) === 1) return { type: "become.leader" };
  send(d, null, "raft.vote", { ...voteRequest(d, d.term, false), ...(transfer ? { transfer } : {}) }, true);
  return null;
}

function voteRequest(d: RaftContext, term: number, preVote: boolean): RequestVote {
  return { term, lastLogIndex: d.log.lastIndex, lastLogTerm: d.log.lastTerm, preVote };
}

function handleVoteRequest(d: RaftContext, from: NodeId, m: RequestVote): void {
  // Raft §5.2/§5.4.1 plus pre-vote: a real vote goes to at most one candidate per term,
  // and only to one whose log is at least as up to date as ours.
  const canVote = d.vote === from || (d.vote === null && d.leader === null) || (m.preVote && m.term > d.term);
  if (canVote && d.log.isUpToDate(m.lastLogTerm, m.lastLogIndex)) {
    if (!m.preVote) {
      d.vote = from;
      d.out.hardStateChanged = true;
      resetElectionTimer(d);
    }
    send(d, from, "raft.vote.resp", { term: m.term, granted: true, preVote: m.preVote }, true);
  } else {
    send(d, from, "raft.vote.resp", { term: d.term, granted: false, preVote: m.preVote }, true);
  }
}

function handleVoteResponse(d: RaftContext, role: Role, from: NodeId, m: VoteResponse): RoleChange | null {
  const expectedTerm = role === "pre-candidate" ? d.term + 1 : d.term;
  const expectedPreVote = role === "pre-candidate";
  if (m.preVote !== expectedPreVote || (m.granted && m.term !== expectedTerm)) return null;
  if (!isVoter(d, from) || d.votes[from] !== undefined) return null;
  d.votes = { ...d.votes, [from]: m.granted };
  d.out.observe({ kind: "vote", from, granted: m.granted, preVote: m.preVote, term: expectedTerm });
  const granted = Object.values(d.votes).filter((v) => v).length;
  const rejected = Object.values(d.votes).length - granted;
  if (granted >= quorum(d)) {
    d.out.observe({ kind: "campaign-end", term: expectedTerm, preVote: expectedPreVote, outcome: "won" });
    return { type: role === "pre-candidate" ? "become.candidate" : "become.leader" };
  }
  if (rejected >= quorum(d)) {
    d.out.observe({ kind: "campaign-end", term: expectedTerm, preVote: expectedPreVote, outcome: "lost" });
    becomeFollower(d, d.term, null);
    return { type: "become.follower" };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Message dispatch (etcd's Step): term rules first, then the role's rule.

export function step(d: RaftContext, role: Role, from: NodeId, msg: RaftMessage): RoleChange | null {
  let change: RoleChange | null = null;
  const term = msg.body.term;
  if (term > d.term) {
    if (msg.type === "raft.vote") {
      const inLease =
        d.options.checkQuorum &&
        (d.leader !== null || d.restartQuiet) &&
        d.electionElapsed < d.options.electionTicks &&
        msg.body.transfer !== true;
      // A live leader exists: a higher-term campaign is a disruptive server, not news (§9.6 / §4.2.3).
      if (inLease) return null;
    }
    const isPreVote = (msg.type === "raft.vote" || msg.type === "raft.vote.resp") && msg.body.preVote;
    const preVoteGranted = msg.type === "raft.vote.resp" && msg.body.preVote && msg.body.granted;
    if (!(isPreVote && (msg.type === "raft.vote" || preVoteGranted))) {
      if (role !== "follower") {
        d.out.observe(
          role === "leader"
            ? { kind: "step-down", term: d.term, reason: "higher-term" }
            : { kind: "campaign-end", term: d.term, preVote: role === "pre-candidate", outcome: "superseded" },
        );
      }
      becomeFollower(d, term, msg.type === "raft.append" ? from : null);
      if (role !== "follower") change = { type: "become.follower" };
      role = "follower";
    }
  } else if (term < d.term) {
    if (msg.type === "raft.append") {
      // Tell the stale leader our term so it steps down (needed with CheckQuorum and PreVote).
      // The reply answers no heartbeat round of our term: it must not echo the old message's
      // round, which a leader of our term (restarted, its counter reset) could take for its own.
      send(d, from, "raft.append.resp", { ...rejection(d, msg.body, 0, 0), seq: 0 }, true);
    } else if (msg.type === "raft.vote" && msg.body.preVote) {
      send(d, from, "raft.vote.resp", { term: d.term, granted: false, preVote: true }, true);
    }
    return null;
  }

  switch (msg.type) {
    case "raft.vote":
      handleVoteRequest(d, from, msg.body);
      return change;
    case "raft.vote.resp":
      if (role === "pre-candidate" || role === "candidate")
        return handleVoteResponse(d, role, from, msg.body) ?? change;
      return change;
    case "raft.append":
      if (role === "leader") {
        invariant(false, `two leaders in term ${d.term}: ${d.id} and ${from}`);
      }
      if (role !== "follower") {
        d.out.observe({ kind: "campaign-end", term: d.term, preVote: role === "pre-candidate", outcome: "lost" });
        becomeFollower(d, d.term, from);
        change = { type: "become.follower" };
      }
      handleAppend(d, from, msg.body);
      return change;
    case "raft.append.resp":
      if (role === "leader") return handleAppendResponse(d, from, msg.body) ?? change;
      return change;
    case "raft.timeout-now":
      // The leader asks us to campaign at once (leadership transfer); only a voter that knows it as leader obeys.
      if (role === "follower" && d.leader === from && isVoter(d, d.id)) {
        d.campaignTransfer = true;
        return { type: "become.candidate" };
      }
      return change;
  }
}

// ---------------------------------------------------------------------------------------------
// Follower: AppendEntries

function rejection(d: RaftContext, m: AppendEntries, conflictIndex: number, conflictTerm: number): AppendResponse {
  return {
    term: d.term,
    success: false,
    index: m.prevLogIndex,
    lastIndex: d.log.lastIndex,
    conflictIndex,
    conflictTerm,
    seq: m.seq,
  };
}

function handleAppend(d: RaftContext, from: NodeId, m: AppendEntries): void {
  d.leader = from;
  d.electionElapsed = 0;
  let prev = m.prevLogIndex;
  let prevTerm = m.prevLogTerm;
  let entries: readonly LogEntry[] = unpackEntries(m.entries);
  if (prev < d.commitIndex) {
    // Our committed prefix already matches the leader's (leader completeness): skip that part.
    const skip = Math.min(d.commitIndex - prev, entries.length);
    if (skip === entries.length) {
      send(d, from, "raft.append.resp", success(d, d.commitIndex, m.seq), true);
      return;
    }
    prevTerm = (entries[skip - 1] as LogEntry).term;
    prev += skip;
    entries = entries.slice(skip);
  }
  if (d.log.term(prev) !== prevTerm) {
    // Log matching (§5.3): refuse, with a hint that lets the leader skip a whole term at a time.
    const hintIndex = d.log.findConflictByTerm(Math.min(m.prevLogIndex, d.log.lastIndex), m.prevLogTerm);
    const hintTerm = d.log.term(hintIndex) ?? 0;
    send(d, from, "raft.append.resp", rejection(d, m, hintIndex, hintTerm), true);
    return;
  }
  let index = prev + 1;
  let i = 0;
  for (; i < entries.length; i++, index++) {
    const existing = d.log.term(index);
    if (existing === undefined) break;
    if (existing !== (entries[i] as LogEntry).term) {
      // Only a real conflict truncates; a committed entry never conflicts (§5.3, Figure 3).
      invariant(index > d.commitIndex, `conflicting entry at committed index ${index}`);
      d.log.truncateFrom(index);
      d.persistedIndex = Math.min(d.persistedIndex, index - 1);
      invariant(d.persistedIndex <= d.log.lastIndex, `persisted ${d.persistedIndex} beyond last ${d.log.lastIndex}`);
      break;
    }
  }
  if (i < entries.length) {
    d.log.append(entries.slice(i));
    d.out.logChangedFrom(index);
  }
  const lastNew = prev + entries.length;
  // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
  const commit = Math.min(m.leaderCommit, lastNew);
  if (commit > d.commitIndex) setCommitIndex(d, commit);
  send(d, from, "raft.append.resp", success(d, lastNew, m.seq), true);
}

function success(d: RaftContext, index: number, seq: number): AppendResponse {
  return { term: d.term, success: true, index, lastIndex: d.log.lastIndex, conflictIndex: 0, conflictTerm: 0, seq };
}

// ---------------------------------------------------------------------------------------------
// Leader

export function becomeLeader(d: RaftContext): void {
  d.leader = d.id;
  d.votes = {};
  d.transferee = null;
  d.transferElapsed = 0;
  d.heartbeatElapsed = 0;
  d.electionElapsed = 0;
  d.recentActive = {};
  d.ackedSeq = {};
  d.pendingReads = [];
  d.leaderTicks = 0;
  d.leaseRound = null;
  d.leaseExpires = 0;
  d.timeoutNowSent = false;
  d.progress = {};
  trackReplicas(d);
  // §5.4.2 / §8: a no-op of the new term lets earlier entries commit, and lets ReadIndex start.
  appendAndBroadcast(d, [{ term: d.term, kind: EntryKind.Noop, data: new Uint8Array(0) }]);
}

/** Keeps one Progress per replica of the current configuration: new members start probing. */
function trackReplicas(d: RaftContext): void {
  const members = replicas(d);
  const progress: Record<NodeId, Progress> = {};
  for (const peer of members) {
    progress[peer] = d.progress[peer] ?? {
      match: 0,
      next: d.log.lastIndex + 1,
      state: "probe",
      pendingSnapshot: 0,
      probeSent: false,
      inflight: [],
      stalledHeartbeats: 0,
    };
  }
  d.progress = progress;
}

function setProgress(d: RaftContext, peer: NodeId, patch: Partial<Progress>): void {
  const pr: Progress = { ...(d.progress[peer] as Progress), ...patch };
  invariant(pr.match < pr.next, `progress of ${peer}: match ${pr.match} must be below next ${pr.next}`);
  invariant(pr.next <= d.log.lastIndex + 1, `progress of ${peer}: next ${pr.next} beyond ${d.log.lastIndex + 1}`);
  d.progress = { ...d.progress, [peer]: pr };
}

function inflightBytes(pr: Progress): number {
  let bytes = 0;
  for (const f of pr.inflight) bytes += f.bytes;
  return bytes;
}

function canSend(d: RaftContext, pr: Progress): boolean {
  if (pr.state === "snapshot") return false;
  if (pr.state === "probe") return !pr.probeSent;
  return pr.inflight.length < d.options.maxInflightMessages && inflightBytes(pr) < d.options.maxInflightBytes;
}

/** Appends entries of the current term and sends them to everyone in one broadcast per chunk. */
export function appendAndBroadcast(d: RaftContext, entries: readonly LogEntry[]): void {
  const first = d.log.lastIndex + 1;
  const configIndex = d.log.config.index;
  d.log.append(entries);
  if (d.log.config.index !== configIndex) trackReplicas(d);
  d.out.logChangedFrom(first);
  d.out.observe({ kind: "append", firstIndex: first, lastIndex: d.log.lastIndex, term: d.term });
  let prev = first - 1;
  while (prev < d.log.lastIndex) {
    const chunk = d.log.slice(prev + 1, d.log.lastIndex, d.options.maxMessageBytes);
    broadcastAppend(d, prev, chunk);
    prev += chunk.length;
  }
}

/**
 * Sends entries after `prev` to every replica that may take them: one broadcast when all of them
 * continue their pipelines from `prev`, else one message to each that does. A follower that is
 * probing gets its one probe, one at its in-flight limit or receiving a snapshot gets nothing:
 * the per-follower limits hold (etcd's Progress). An empty message is a heartbeat, for everyone.
 */
function broadcastAppend(d: RaftContext, prev: number, entries: readonly LogEntry[]): void {
  d.seq++;
  const body: AppendEntries = {
    term: d.term,
    prevLogIndex: prev,
    prevLogTerm: d.log.term(prev) as number,
    leaderCommit: d.commitIndex,
    entries: packEntries(entries),
    seq: d.seq,
  };
  if (entries.length === 0) {
    send(d, null, "raft.append", body, false);
    return;
  }
  const last = prev + entries.length;
  let bytes = 0;
  for (const e of entries) bytes += entryBytes(e);
  const peers = replicas(d);
  if (peers.length === 0) return;
  const streaming = peers.filter((peer) => {
    const pr = d.progress[peer] as Progress;
    return pr.state === "replicate" && pr.next === prev + 1 && canSend(d, pr);
  });
  if (streaming.length === peers.length) send(d, null, "raft.append", body, false);
  else for (const peer of streaming) send(d, peer, "raft.append", body, false);
  for (const peer of streaming) {
    const pr = d.progress[peer] as Progress;
    setProgress(d, peer, { next: last + 1, inflight: [...pr.inflight, { index: last, bytes }] });
  }
  for (const peer of peers) if ((d.progress[peer] as Progress).state === "probe") sendAppend(d, peer);
}

function broadcastHeartbeat(d: RaftContext): void {
  // A heartbeat is an empty AppendEntries: followers check prevLogIndex/prevLogTerm on it too.
  broadcastAppend(d, d.log.lastIndex, []);
}

function sendAppend(d: RaftContext, peer: NodeId): void {
  const pr = d.progress[peer] as Progress;
  if (!canSend(d, pr)) return;
  const prev = pr.next - 1;
  const prevTerm = d.log.term(prev);
  if (prevTerm === undefined) {
    // What the follower needs next was compacted away: it gets the snapshot instead (§7).
    setProgress(d, peer, {
      state: "snapshot",
      pendingSnapshot: d.log.snapshotIndex,
      inflight: [],
      stalledHeartbeats: 0,
    });
    d.out.snapshotSends.push(peer);
    return;
  }
  const entries = pr.next <= d.log.lastIndex ? d.log.slice(pr.next, d.log.lastIndex, d.options.maxMessageBytes) : [];
  d.seq++;
  send(
    d,
    peer,
    "raft.append",
    {
      term: d.term,
      prevLogIndex: prev,
      prevLogTerm: prevTerm,
      leaderCommit: d.commitIndex,
      entries: packEntries(entries),
      seq: d.seq,
    },
    false,
  );
  if (pr.state === "probe") {
    setProgress(d, peer, { probeSent: true });
  } else if (entries.length > 0) {
    let bytes = 0;
    for (const e of entries) bytes += entryBytes(e);
    const last = prev + entries.length;
    setProgress(d, peer, { next: last + 1, inflight: [...pr.inflight, { index: last, bytes }] });
  }
}

function handleAppendResponse(d: RaftContext, from: NodeId, m: AppendResponse): RoleChange | null {
  const pr = d.progress[from];
  if (pr === undefined) return null;
  // The response has our term (step drops older ones), so it answers a message of this leader in
  // this term: it cannot acknowledge a round not yet sent, nor an index not yet appended. A peer
  // claiming either breaks the protocol; it is refused and reported, never believed.
  if (m.seq > d.seq || (m.success && m.index > d.log.lastIndex)) {
    d.out.observe({ kind: "refused", from, reason: `answers round ${m.seq}/index ${m.index} never sent` });
    return null;
  }
  d.recentActive = d.recentActive[from] ? d.recentActive : { ...d.recentActive, [from]: true };
  if ((d.ackedSeq[from] ?? 0) < m.seq) {
    d.ackedSeq = { ...d.ackedSeq, [from]: m.seq };
    confirmReads(d);
    extendLease(d);
  }
  let change: RoleChange | null = null;
  if (m.success) {
    const advanced = m.index > pr.match;
    const match = Math.max(pr.match, m.index);
    const inflight = pr.inflight.filter((f) => f.index > m.index);
    // A probe that matched, or an installed snapshot (the follower acknowledges its index), starts the pipeline.
    if (pr.state === "probe" || (pr.state === "snapshot" && match >= pr.pendingSnapshot)) {
      setProgress(d, from, {
        state: "replicate",
        match,
        next: match + 1,
        probeSent: false,
        inflight: [],
        stalledHeartbeats: 0,
      });
    } else {
      setProgress(d, from, {
        match,
        next: Math.max(pr.next, match + 1),
        inflight,
        stalledHeartbeats: advanced ? 0 : pr.stalledHeartbeats,
      });
    }
    if (advanced) {
      d.out.observe({ kind: "ack", from, index: match });
      change = maybeCommit(d);
      if (change !== null) return change;
    }
    if (d.transferee === from && match === d.log.lastIndex) {
      sendTimeoutNow(d, from);
    }
    while (canSend(d, d.progress[from] as Progress) && (d.progress[from] as Progress).next <= d.log.lastIndex) {
      sendAppend(d, from);
    }
    return null;
  }
  // A rejection matters only if it refers to what we sent this follower; others are stale.
  if (pr.state === "snapshot") return null;
  const relevant = pr.state === "replicate" ? m.index > pr.match && m.index < pr.next : m.index === pr.next - 1;
  if (!relevant) return null;
  let hint = m.conflictIndex;
  if (m.conflictTerm > 0) hint = d.log.findConflictByTerm(m.conflictIndex, m.conflictTerm);
  const next = Math.max(pr.match + 1, Math.min(hint + 1, m.lastIndex + 1, m.index));
  setProgress(d, from, { state: "probe", next, probeSent: false, inflight: [], stalledHeartbeats: 0 });
  sendAppend(d, from);
  return null;
}

/** The highest index a quorum of voters holds: the leader's own counts once durable. */
export function quorumMatch(d: RaftContext): number {
  const matches = voters(d)
    .map((v) => (v === d.id ? d.persistedIndex : (d.progress[v]?.match ?? 0)))
    .sort((a, b) => b - a);
  return matches[quorum(d) - 1] ?? 0;
}

function maybeCommit(d: RaftContext): RoleChange | null {
  const n = quorumMatch(d);
  // Figure 8: only entries of the current term commit by counting replicas.
  if (n > d.commitIndex && d.log.term(n) === d.term) {
    setCommitIndex(d, n);
    d.out.observe({ kind: "commit", index: n, term: d.term });
    startWaitingReads(d);
    return stepDownIfRemoved(d);
  }
  return null;
}

/**
 * Tells `to` to campaign at once (thesis §3.10). From here on `to` may win an election of the
 * next term whenever the message arrives, even after this leader gave the transfer up, so the
 * read lease is over for the rest of this term.
 */
function sendTimeoutNow(d: RaftContext, to: NodeId): void {
  d.timeoutNowSent = true;
  d.leaseRound = null;
  send(d, to, "raft.timeout-now", { term: d.term }, false);
}

/** Of `members`, the one whose log matches the leader's furthest: the best next leader. */
function mostCaughtUp(d: RaftContext, members: readonly NodeId[]): NodeId | null {
  let best: NodeId | null = null;
  for (const m of members) if (best === null || (d.progress[m]?.match ?? 0) > (d.progress[best]?.match ?? 0)) best = m;
  return best;
}

/**
 * A leader that committed its own removal stops leading (thesis §4.2.2) and, so the cluster
 * does not wait out an election timeout, asks the most up-to-date voter to campaign at once.
 */
function stepDownIfRemoved(d: RaftContext): RoleChange | null {
  const config = d.log.config;
  if (config.index > d.commitIndex || config.voters.includes(d.id)) return null;
  const successor = mostCaughtUp(d, config.voters);
  if (successor !== null && d.progress[successor]?.match === d.log.lastIndex) {
    sendTimeoutNow(d, successor);
  }
  d.out.observe({ kind: "step-down", term: d.term, reason: "removed" });
  becomeFollower(d, d.term, null);
  return { type: "become.follower" };
}

export function recordPersisted(
  d: RaftContext,
  role: Role,
  index: number,
  term: number,
  durableTerm: number,
): RoleChange | null {
  invariant(durableTerm <= d.term, `durable term ${durableTerm} above the current term ${d.term}`);
  d.durableTerm = Math.max(d.durableTerm, durableTerm);
  if (d.log.term(index) !== term || index <= d.persistedIndex) return null;
  invariant(index <= d.log.lastIndex, `persisted index ${index} beyond the last log index ${d.log.lastIndex}`);
  d.persistedIndex = index;
  return role === "leader" ? maybeCommit(d) : null;
}

// ---------------------------------------------------------------------------------------------
// Proposals and ReadIndex

export function propose(d: RaftContext, id: number, commands: readonly Uint8Array[]): void {
  if (d.transferee !== null) {
    // Proposals pause while leadership moves; the caller retries with the new leader.
    d.out.proposals.push({ id, ok: false, reason: "transferring", leader: d.transferee });
    return;
  }
  const uncommitted = d.log.lastIndex - d.commitIndex;
  if (uncommitted + commands.length > d.options.maxUncommittedEntries) {
    d.out.proposals.push({ id, ok: false, reason: "busy", leader: d.id });
    return;
  }
  const firstIndex = d.log.lastIndex + 1;
  appendAndBroadcast(
    d,
    commands.map((data) => ({ term: d.term, kind: EntryKind.Command, data })),
  );
  d.out.proposals.push({ id, ok: true, firstIndex, term: d.term });
}

export function rejectProposal(d: RaftContext, id: number): void {
  d.out.proposals.push({ id, ok: false, reason: "not-leader", leader: d.leader });
}

export function rejectRead(d: RaftContext, id: number): void {
  d.out.reads.push({ id, ok: false, leader: d.leader });
}

/** ReadIndex (thesis §6.4): remember the commit index, confirm leadership with a heartbeat quorum. */
export function startRead(d: RaftContext, id: number): void {
  const committedInTerm = d.log.term(d.commitIndex) === d.term;
  const leased = d.options.leaseReads && d.transferee === null && !d.timeoutNowSent && d.leaderTicks < d.leaseExpires;
  if (committedInTerm && (leased || (quorum(d) === 1 && selfVote(d) === 1))) {
    d.out.reads.push({ id, ok: true, index: d.commitIndex });
    return;
  }
  if (!committedInTerm) {
    d.pendingReads = [...d.pendingReads, { id, index: null, seq: 0 }];
    return;
  }
  d.pendingReads = [...d.pendingReads, { id, index: d.commitIndex, seq: d.seq + 1 }];
  broadcastHeartbeat(d);
}

function startWaitingReads(d: RaftContext): void {
  if (!d.pendingReads.some((r) => r.index === null)) return;
  if (quorum(d) === 1 && selfVote(d) === 1) {
    for (const r of d.pendingReads) d.out.reads.push({ id: r.id, ok: true, index: r.index ?? d.commitIndex });
    d.pendingReads = [];
    return;
  }
  const seq = d.seq + 1;
  d.pendingReads = d.pendingReads.map((r) => (r.index === null ? { id: r.id, index: d.commitIndex, seq } : r));
  broadcastHeartbeat(d);
}

function confirmReads(d: RaftContext): void {
  if (d.pendingReads.length === 0) return;
  const remaining: PendingRead[] = [];
  for (const read of d.pendingReads) {
    if (read.index === null) {
      remaining.push(read);
      continue;
    }
    if (quorumAcked(d, read.seq)) d.out.reads.push({ id: read.id, ok: true, index: read.index });
    else remaining.push(read);
  }
  d.pendingReads = remaining;
}

/** Whether a quorum of voters acknowledged leader round `seq` or a later one. */
function quorumAcked(d: RaftContext, seq: number): boolean {
  return selfVote(d) + peerVoters(d).filter((p) => (d.ackedSeq[p] ?? 0) >= seq).length >= quorum(d);
}

/**
 * A quorum acknowledged a heartbeat sent at `tick`: none of them grants a vote until an election
 * timeout after receiving it (CheckQuorum), so no other leader exists before `tick` plus that
 * timeout, shortened for clock drift and for the up to one tick each side may be off.
 */
function extendLease(d: RaftContext): void {
  const round = d.leaseRound;
  if (round === null || d.timeoutNowSent || !quorumAcked(d, round.seq)) return;
  const { electionTicks, maxClockDriftPercent } = d.options;
  const leaseTicks = Math.floor(((electionTicks - 1) * 100) / (100 + maxClockDriftPercent)) - 1;
  d.leaseExpires = Math.max(d.leaseExpires, round.tick + leaseTicks);
  d.leaseRound = null;
}

// ---------------------------------------------------------------------------------------------
// Leadership transfer (thesis §3.10)

/** Starts moving leadership to `to`, or to the most up-to-date follower when `to` is null. */
export function startTransfer(d: RaftContext, to: NodeId | null): void {
  const target = to ?? mostCaughtUp(d, peerVoters(d));
  if (target === null || target === d.id || !isVoter(d, target)) {
    d.out.observe({ kind: "transfer", to: target, status: "rejected" });
    return;
  }
  d.transferee = target;
  d.transferElapsed = 0;
  d.out.observe({ kind: "transfer", to: target, status: "started" });
  const pr = d.progress[target] as Progress;
  // Bring the target up to date first; TimeoutNow goes out once its log matches ours.
  if (pr.match === d.log.lastIndex) sendTimeoutNow(d, target);
  else sendAppend(d, target);
}

export function rejectTransfer(d: RaftContext): void {
  d.out.observe({ kind: "transfer", to: null, status: "rejected" });
}

// ---------------------------------------------------------------------------------------------
// Membership (thesis §4.1: one server at a time)

/**
 * Appends a configuration entry for `change`. It takes effect as soon as it is in the log; the
 * next change waits until it commits. A leader also waits until it has committed an entry of its
 * own term: otherwise a change it appends could overlap a change of an earlier leader that it
 * never saw committed, and two disjoint majorities could elect two leaders (Ongaro, raft-dev 2015).
 */
export function reconfigure(d: RaftContext, id: number, change: MembershipChange): void {
  const reject = (reason: "in-progress" | "invalid" | "not-caught-up", message: string) =>
    d.out.changes.push({ id, ok: false, reason, message, leader: d.id });
  if (d.transferee !== null) {
    reject("in-progress", `leadership is moving to ${d.transferee}; retry with the new leader`);
    return;
  }
  if (d.log.term(d.commitIndex) !== d.term) {
    reject("in-progress", "the leader has not yet committed an entry of its term; retry shortly");
    return;
  }
  const current = d.log.config;
  if (current.index > d.commitIndex) {
    reject("in-progress", `the membership change at index ${current.index} is not committed yet; one change at a time`);
    return;
  }
  const next = applyChange(current, change);
  if (typeof next === "string") {
    reject("invalid", next);
    return;
  }
  if (change.type === "promote") {
    // A voter that is far behind would stall commits until it caught up (thesis §4.2.1).
    const pr = d.progress[change.member];
    const lag = d.log.lastIndex - (pr?.match ?? 0);
    if (pr === undefined || pr.state !== "replicate" || lag > d.options.maxPromotionLag) {
      reject("not-caught-up", `learner '${change.member}' trails the log by ${lag} entries; retry once it caught up`);
      return;
    }
  }
  const index = d.log.lastIndex + 1;
  appendAndBroadcast(d, [configEntry(d.term, next)]);
  d.out.changes.push({ id, ok: true, index, term: d.term, config: next });
}

export function configEntry(term: number, config: ClusterConfig): LogEntry {
  return { term, kind: EntryKind.Config, data: encodeConfig(config) };
}

export function rejectChange(d: RaftContext, id: number): void {
  d.out.changes.push({
    id,
    ok: false,
    reason: "not-leader",
    message: "only the leader changes the membership",
    leader: d.leader,
  });
}

// ---------------------------------------------------------------------------------------------
// Snapshots (§7)

/** A whole snapshot the host assembled from a leader's chunks. */
export interface ReceivedSnapshot {
  readonly term: number;
  readonly index: number;
  readonly lastTerm: number;
  /** The membership at `index`, decoded and validated by the host. */
  readonly config: ClusterConfig;
  readonly data: Uint8Array;
}

export function receiveSnapshot(
  d: RaftContext,
  role: Role,
  from: NodeId,
  snapshot: ReceivedSnapshot,
): RoleChange | null {
  if (snapshot.term < d.term) return null;
  let change: RoleChange | null = null;
  if (snapshot.term > d.term || role !== "follower") {
    if (role === "leader") invariant(snapshot.term > d.term, `two leaders in term ${d.term}: ${d.id} and ${from}`);
    becomeFollower(d, snapshot.term, from);
    if (role !== "follower") change = { type: "become.follower" };
  }
  d.leader = from;
  d.electionElapsed = 0;
  const ack = (index: number) =>
    send(
      d,
      from,
      "raft.append.resp",
      { term: d.term, success: true, index, lastIndex: d.log.lastIndex, conflictIndex: 0, conflictTerm: 0, seq: 0 },
      true,
    );
  if (snapshot.index <= d.commitIndex) {
    // Stale: we already have everything it covers. Saying so ends the transfer, never a loop.
    ack(d.commitIndex);
    return change;
  }
  const kept = d.log.installSnapshot(snapshot.index, snapshot.lastTerm, snapshot.config);
  d.commitIndex = snapshot.index;
  d.persistedIndex = Math.max(Math.min(d.persistedIndex, kept ? d.log.lastIndex : snapshot.index), snapshot.index);
  d.out.install = {
    index: snapshot.index,
    term: snapshot.lastTerm,
    config: snapshot.config,
    data: snapshot.data,
    discardLog: !kept,
  };
  ack(snapshot.index);
  return change;
}

/** The host made a snapshot at `index` durable; the log before it can go. */
export function compactLog(d: RaftContext, index: number): void {
  if (index > d.log.snapshotIndex && index <= d.log.lastIndex && index <= d.commitIndex) d.log.compact(index);
}
