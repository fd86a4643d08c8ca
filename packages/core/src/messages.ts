import { arrayOf, bool, bytes, type Infer, object, optional, uint } from "./schema.js";

/**
 * The schema of every message that crosses the network between consensus members. The codec
 * validates each decoded body against the schema of its type before anything else sees it.
 */

/** Kinds of Raft log entry. */
export const EntryKind = {
  /** A command for the state machine. */
  Command: 0,
  /** The no-op a new leader appends so that entries of earlier terms commit (Raft §5.4.2). */
  Noop: 1,
  /** A membership configuration. */
  Config: 2,
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

const entryKind = (v: unknown): v is EntryKind => v === 0 || v === 1 || v === 2;

/** A log entry on the wire; its index is implied by its position after prevLogIndex. */
export const logEntry = object({ term: uint, kind: entryKind, data: bytes });
export type WireEntry = Infer<typeof logEntry>;

export const requestVote = object({
  term: uint,
  lastLogIndex: uint,
  lastLogTerm: uint,
  /** A pre-vote asks "would you vote for me at this term?" without anyone changing term (thesis §9.6). */
  preVote: bool,
  /** Set when the leader asked this candidate to campaign (TimeoutNow): voters skip the live-leader check. */
  transfer: optional(bool),
});
export type RequestVote = Infer<typeof requestVote>;

export const voteResponse = object({
  /** The voter's term, or for a pre-vote the term that was asked about when granted. */
  term: uint,
  granted: bool,
  preVote: bool,
});
export type VoteResponse = Infer<typeof voteResponse>;

export const appendEntries = object({
  term: uint,
  prevLogIndex: uint,
  prevLogTerm: uint,
  leaderCommit: uint,
  entries: arrayOf(logEntry, 65536),
  /** Leader-local round number echoed in the response; ReadIndex uses it to confirm leadership. */
  seq: uint,
});
export type AppendEntries = Infer<typeof appendEntries>;

export const appendResponse = object({
  term: uint,
  success: bool,
  /**
   * On success, the index up to which the follower's log now matches the leader's.
   * On rejection, the prevLogIndex that did not match (so the leader can tell stale rejections).
   */
  index: uint,
  /** The follower's last index; with conflictTerm/conflictIndex a hint for fast backtracking. */
  lastIndex: uint,
  conflictTerm: uint,
  conflictIndex: uint,
  seq: uint,
});
export type AppendResponse = Infer<typeof appendResponse>;

export const timeoutNow = object({ term: uint });
export type TimeoutNow = Infer<typeof timeoutNow>;

export const messageSchemas = {
  "raft.vote": requestVote,
  "raft.vote.resp": voteResponse,
  "raft.append": appendEntries,
  "raft.append.resp": appendResponse,
  "raft.timeout-now": timeoutNow,
} as const;

export type MessageType = keyof typeof messageSchemas;
export type MessageMap = { [K in MessageType]: Infer<(typeof messageSchemas)[K]> };

export function isMessageType(value: unknown): value is MessageType {
  return typeof value === "string" && Object.hasOwn(messageSchemas, value);
}
