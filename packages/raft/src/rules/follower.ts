/**
 * The follower: becoming one, its election timer, AppendEntries (§5.3) and InstallSnapshot (§7).
 */
import type { NodeId } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { ClusterConfig } from "../config.js";
import type { LogEntry } from "../log.js";
import { type AppendEntries, type AppendResponse, unpackEntries } from "../messages.js";
import { type RaftContext, type RoleChange, resetElectionTimer, send, setCommitIndex, setTerm } from "./context.js";
import { isVoter } from "./quorum.js";
import { failPendingReads } from "./read.js";

/** Becomes (or stays) a follower at `term`; the caller raises the role change if needed. */
export function becomeFollower(d: RaftContext, term: number, leader: NodeId | null): void {
  invariant(leader !== d.id, "a follower follows another member");
  setTerm(d, term);
  d.leader = leader;
  d.votes = {};
  d.transferee = null;
  resetElectionTimer(d);
  failPendingReads(d);
}

export function tickElection(d: RaftContext): RoleChange | null {
  invariant(d.leader !== d.id, "the leader ticks its own timers (tickLeader)");
  invariant(d.randomizedElectionTicks >= d.options.electionTicks, "an election timeout is at least electionTicks");
  d.electionElapsedTicks++;
  if (d.restartQuiet && d.electionElapsedTicks >= d.options.electionTicks) d.restartQuiet = false;
  // Learners and members outside the configuration never campaign.
  if (d.electionElapsedTicks >= d.randomizedElectionTicks && isVoter(d, d.id)) {
    return { type: "election.timeout" };
  }
  return null;
}

export function rejection(
  d: RaftContext,
  m: AppendEntries,
  conflictIndex: number,
  conflictTerm: number,
): AppendResponse {
  invariant(conflictIndex <= d.log.lastIndex, "a conflict hint points into this member's log");
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

export function handleAppend(d: RaftContext, from: NodeId, m: AppendEntries): void {
  // stepTerm adopted a later term and dropped older ones: the sender leads this very term.
  invariant(m.term === d.term, "an AppendEntries is handled in its own term");
  invariant(from !== d.id, "a member never follows itself");
  d.leader = from;
  d.electionElapsedTicks = 0;
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
  invariant(lastNew <= d.log.lastIndex, "the log holds every entry the leader sent");
  // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
  const commit = Math.min(m.leaderCommit, lastNew);
  if (commit > d.commitIndex) setCommitIndex(d, commit);
  send(d, from, "raft.append.resp", success(d, lastNew, m.seq), true);
}

export function success(d: RaftContext, index: number, seq: number): AppendResponse {
  invariant(index <= d.log.lastIndex, "a member acknowledges only entries it holds");
  return { term: d.term, success: true, index, lastIndex: d.log.lastIndex, conflictIndex: 0, conflictTerm: 0, seq };
}

/** A whole snapshot the host assembled from a leader's chunks. */
export interface ReceivedSnapshot {
  readonly term: number;
  readonly index: number;
  readonly lastTerm: number;
  /** The membership at `index`, decoded and validated by the host. */
  readonly config: ClusterConfig;
  readonly data: Uint8Array;
}

/**
 * A snapshot from the leader of `snapshot.term` (§7): a follower installs it, catching up on the
 * term first if it is a later one; one of an older term is stale and dropped.
 */
export function receiveSnapshot(d: RaftContext, from: NodeId, snapshot: ReceivedSnapshot): void {
  if (snapshot.term < d.term) return;
  if (snapshot.term > d.term) becomeFollower(d, snapshot.term, from);
  installSnapshot(d, from, snapshot);
}

/** A (pre-)candidate receiving a snapshot of its term or a later one: a leader exists, it follows it. */
export function candidateReceiveSnapshot(d: RaftContext, from: NodeId, snapshot: ReceivedSnapshot): RoleChange | null {
  if (snapshot.term < d.term) return null;
  becomeFollower(d, snapshot.term, from);
  installSnapshot(d, from, snapshot);
  return { type: "become.follower" };
}

/** A leader receiving a snapshot: only a leader of a later term sends one, and this one steps down. */
export function leaderReceiveSnapshot(d: RaftContext, from: NodeId, snapshot: ReceivedSnapshot): RoleChange | null {
  if (snapshot.term < d.term) return null;
  invariant(snapshot.term > d.term, `two leaders in term ${d.term}: ${d.id} and ${from}`);
  becomeFollower(d, snapshot.term, from);
  installSnapshot(d, from, snapshot);
  return { type: "become.follower" };
}

function installSnapshot(d: RaftContext, from: NodeId, snapshot: ReceivedSnapshot): void {
  invariant(snapshot.term === d.term, "a snapshot is installed in its leader's term");
  d.leader = from;
  d.electionElapsedTicks = 0;
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
    return;
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
}

/**
 * A write finished: the log is durable up to `index` if it still holds that entry, and the hard
 * state up to `durableTerm`. Returns whether the durable index advanced.
 */
export function recordPersisted(d: RaftContext, index: number, term: number, durableTerm: number): boolean {
  invariant(durableTerm <= d.term, `durable term ${durableTerm} above the current term ${d.term}`);
  d.durableTerm = Math.max(d.durableTerm, durableTerm);
  if (d.log.term(index) !== term || index <= d.persistedIndex) return false;
  invariant(index <= d.log.lastIndex, `persisted index ${index} beyond the last log index ${d.log.lastIndex}`);
  d.persistedIndex = index;
  return true;
}

/** The host made a snapshot at `index` durable; the log before it can go. */
export function compactLog(d: RaftContext, index: number): void {
  invariant(index >= 0, "a snapshot index is not negative");
  // Already covered by the log's snapshot (another one was installed meanwhile): nothing to drop.
  if (index <= d.log.snapshotIndex) return;
  // Entries this member no longer holds (its log was cut back) or has not committed stay as they are.
  if (index > d.log.lastIndex) return;
  if (index > d.commitIndex) return;
  d.log.compact(index);
  invariant(d.log.snapshotIndex === index, "the log starts after the snapshot");
}
