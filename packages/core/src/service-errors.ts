import { ErrorCode } from "./errors.js";

/** Stable codes of the errors a SessionStateMachine returns as results. */
export const SessionErrorCode = {
  /**
   * The client's session is not open: never opened, or expired. This command was not applied
   * now; an earlier attempt of it may have been.
   */
  SessionExpired: "QUORATE_SESSION_EXPIRED",
  /**
   * The seq is below what the client acknowledged, or its result was evicted: it was applied
   * before (or abandoned by the client) and is not applied again, but its result is gone.
   */
  ResultDiscarded: "QUORATE_SESSION_RESULT_DISCARDED",
  /** The command could not be decoded or validated; nothing was applied. */
  MalformedCommand: "QUORATE_MALFORMED_COMMAND",
} as const;
export type SessionErrorCode = (typeof SessionErrorCode)[keyof typeof SessionErrorCode];

/**
 * Error replies in the NATS micro services protocol (ADR-32): besides the body, an error reply
 * carries these two headers, so `nats req`, NATS micro clients and services in other languages
 * see the failure without decoding Quorate's body.
 */
export const SERVICE_ERROR_HEADER = "Nats-Service-Error";
export const SERVICE_ERROR_CODE_HEADER = "Nats-Service-Error-Code";

/**
 * The numeric, HTTP-like status each Quorate code is sent with (NATS micro clients parse the code
 * header as a number): 400 the request is wrong, 409 it conflicts with the cluster's state,
 * 410 its session (or, for a watch, the history it asks for; for a lease, the lease) is gone, 503 try again (another member or later), 504 the outcome is unknown,
 * 500 a bug. The exact Quorate code leads the description.
 */
export const SERVICE_ERROR_STATUS: Readonly<Record<ErrorCode | SessionErrorCode, number>> = {
  [ErrorCode.Rejected]: 400,
  [ErrorCode.Config]: 400,
  [ErrorCode.Corrupt]: 400,
  [SessionErrorCode.MalformedCommand]: 400,
  [ErrorCode.Membership]: 409,
  [ErrorCode.ChangeInProgress]: 409,
  [ErrorCode.LeaseLimit]: 409,
  [SessionErrorCode.SessionExpired]: 410,
  [SessionErrorCode.ResultDiscarded]: 410,
  [ErrorCode.Compacted]: 410,
  [ErrorCode.LeaseNotFound]: 410,
  [ErrorCode.NotLeader]: 503,
  [ErrorCode.NoQuorum]: 503,
  [ErrorCode.Busy]: 503,
  [ErrorCode.Closed]: 503,
  [ErrorCode.Unreachable]: 503,
  [ErrorCode.Storage]: 503,
  [ErrorCode.Indeterminate]: 504,
  [ErrorCode.Invariant]: 500,
};

/** The two headers of an error reply: `Nats-Service-Error: <CODE>: <message>`, `Nats-Service-Error-Code: <status>`. */
export function serviceErrorHeaders(code: ErrorCode | SessionErrorCode, message: string): Record<string, string> {
  // A header value is one line.
  const description = `${code}: ${message}`.replace(/[\r\n]+/g, " ");
  return { [SERVICE_ERROR_HEADER]: description, [SERVICE_ERROR_CODE_HEADER]: String(SERVICE_ERROR_STATUS[code]) };
}
