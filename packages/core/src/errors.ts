/**
 * Every error a user can hit carries a stable `code`. Codes are part of the public API:
 * callers branch on them, so they never change meaning.
 */
export const ErrorCode = {
  /** The request may or may not have taken effect (timeout or connection loss during failover). */
  Indeterminate: "QUORATE_INDETERMINATE",
  /** The request definitely did not take effect and may be retried as a new request. */
  Rejected: "QUORATE_REJECTED",
  /** This node is not the leader; the error carries a hint when one is known. */
  NotLeader: "QUORATE_NOT_LEADER",
  /** No quorum could be reached before the deadline. */
  NoQuorum: "QUORATE_NO_QUORUM",
  /** The component was closed. */
  Closed: "QUORATE_CLOSED",
  /** Invalid configuration or argument. */
  Config: "QUORATE_CONFIG",
  /** NATS could not be reached. */
  Unreachable: "QUORATE_UNREACHABLE",
  /** Durable storage failed or holds data of another cluster. */
  Storage: "QUORATE_STORAGE",
  /** The cluster is busy (too many uncommitted proposals); retry later. */
  Busy: "QUORATE_BUSY",
  /** An impossible membership change: adding a member twice, removing the last voter or a non-member. */
  Membership: "QUORATE_MEMBERSHIP",
  /** Another membership change or a leadership transfer is under way, or a learner has not caught up; retry. */
  ChangeInProgress: "QUORATE_CHANGE_IN_PROGRESS",
  /** An invariant the protocol depends on was violated: a bug, never a user error. */
  Invariant: "QUORATE_INVARIANT",
  /** A watch asked for changes older than a member still keeps; the error names the oldest it can serve. */
  Compacted: "QUORATE_COMPACTED",
  /** The lease is unknown: never granted, revoked, or expired. */
  LeaseNotFound: "QUORATE_LEASE_NOT_FOUND",
  /** Too many leases in the store, or too many keys attached to one lease. */
  LeaseLimit: "QUORATE_LEASE_LIMIT",
  /** A backup file is truncated, damaged or not a backup at all: refused before anything is written. */
  Corrupt: "QUORATE_CORRUPT",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class QuorateError extends Error {
  readonly code: ErrorCode;
  /** The leader this member knows of, on NotLeader errors. */
  readonly leader: string | null;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; leader?: string | null }) {
    super(message, options);
    this.name = "QuorateError";
    this.code = code;
    this.leader = options?.leader ?? null;
  }
}

export function isQuorateError(err: unknown, code?: ErrorCode): err is QuorateError {
  return err instanceof QuorateError && (code === undefined || err.code === code);
}

/** Throws an Invariant error. Protocol code calls this where continuing would risk safety. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new QuorateError(ErrorCode.Invariant, `invariant violated: ${message}`);
}
