/** Raft's span and attribute names, apart from the telemetry that records them. */

/** Raft's span names, beside `@quorate/telemetry`'s SpanName. Every name is listed in docs/telemetry.md. */
export const RaftSpanName = {
  round: "raft.round",
  election: "raft.election",
  read: "raft.read",
} as const;

/** Raft's attributes, beside `@quorate/telemetry`'s Attr (cluster, group, member, peer, message type). */
export const RaftAttr = {
  term: "quorate.raft.term",
  firstIndex: "quorate.raft.first_index",
  lastIndex: "quorate.raft.last_index",
  batchSize: "quorate.raft.batch_size",
  quorumSize: "quorate.raft.quorum_size",
  preVote: "quorate.raft.pre_vote",
  outcome: "quorate.raft.outcome",
  granted: "quorate.raft.granted",
  index: "quorate.raft.index",
  /** The leader's round counter a heartbeat carries and its acknowledgement echoes. */
  seq: "quorate.raft.seq",
  /** On `raft.read`: the commit index the read waits to be applied (ReadIndex, thesis §6.4). */
  readIndex: "quorate.raft.read_index",
  /** On a follower's `process raft.append`: whether its reply accepted the entries. */
  success: "quorate.raft.success",
  /** On a `process` span ended without a reply (evicted, or the member stopped): false. */
  answered: "quorate.raft.answered",
} as const;
