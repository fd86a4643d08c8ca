/**
 * The leader sending AppendEntries (§5.3): to each follower as its Progress allows, as one
 * broadcast when every follower continues its pipeline, heartbeats to all.
 */
import type { NodeId } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import { entryBytes, type LogEntry } from "../log.js";
import { type AppendEntries, packEntries } from "../messages.js";
import { type RaftContext, send } from "./context.js";
import { canSend, type Progress, sent, setProgress, snapshotting, trackReplicas } from "./progress.js";
import { replicas } from "./quorum.js";

/** Appends entries of the current term and sends them to everyone in one broadcast per chunk. */
export function appendAndBroadcast(d: RaftContext, entries: readonly LogEntry[]): void {
  invariant(d.leader === d.id, "only the leader appends to its log");
  invariant(entries.length > 0, "an append carries entries");
  for (const e of entries) invariant(e.term === d.term, "a leader appends entries of its own term only");
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
export function broadcastAppend(d: RaftContext, prev: number, entries: readonly LogEntry[]): void {
  const prevLogTerm = d.log.term(prev);
  invariant(prevLogTerm !== undefined, "a broadcast starts after an entry the log still holds");
  invariant(prev + entries.length <= d.log.lastIndex, "a broadcast sends entries the log holds");
  d.heartbeatRound++;
  const body: AppendEntries = {
    term: d.term,
    prevLogIndex: prev,
    prevLogTerm,
    leaderCommit: d.commitIndex,
    entries: packEntries(entries),
    seq: d.heartbeatRound,
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
  for (const peer of streaming) setProgress(d, peer, sent(d.progress[peer] as Progress, last, entries.length, bytes));
  for (const peer of peers) if ((d.progress[peer] as Progress).state === "probe") sendAppend(d, peer);
}

export function broadcastHeartbeat(d: RaftContext): void {
  // A heartbeat is an empty AppendEntries: followers check prevLogIndex/prevLogTerm on it too.
  broadcastAppend(d, d.log.lastIndex, []);
}

export function sendAppend(d: RaftContext, peer: NodeId): void {
  invariant(peer !== d.id, "the leader sends no AppendEntries to itself");
  const pr = d.progress[peer];
  invariant(pr !== undefined, "AppendEntries go to replicas the leader tracks");
  if (!canSend(d, pr)) return;
  const prev = pr.next - 1;
  const prevTerm = d.log.term(prev);
  if (prevTerm === undefined) {
    // What the follower needs next was compacted away: it gets the snapshot instead (§7).
    setProgress(d, peer, snapshotting(pr, d.log.snapshotIndex));
    d.out.snapshotSends.push(peer);
    return;
  }
  const entries = pr.next <= d.log.lastIndex ? d.log.slice(pr.next, d.log.lastIndex, d.options.maxMessageBytes) : [];
  d.heartbeatRound++;
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
      seq: d.heartbeatRound,
    },
    false,
  );
  let bytes = 0;
  for (const e of entries) bytes += entryBytes(e);
  setProgress(d, peer, sent(pr, prev + entries.length, entries.length, bytes));
}

/**
 * Tells `to` to campaign at once (thesis §3.10). From here on `to` may win an election of the
 * next term whenever the message arrives, even after this leader gave the transfer up, so the
 * read lease is over for the rest of this term.
 */
export function sendTimeoutNow(d: RaftContext, to: NodeId): void {
  invariant(d.leader === d.id, "only the leader hands leadership over");
  invariant(to !== d.id, "a leader hands leadership to another member");
  d.timeoutNowSent = true;
  d.leaseRound = null;
  send(d, to, "raft.timeout-now", { term: d.term }, false);
}
