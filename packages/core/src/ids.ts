import { ErrorCode, QuorateError } from "./errors.js";

/** A member id. It appears as a NATS subject token, so it is restricted to safe characters. */
export type NodeId = string;

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidToken(value: unknown): value is string {
  return typeof value === "string" && TOKEN.test(value);
}

/** Validates a cluster, group or member name for use in subjects; throws a Config error. */
export function assertToken(kind: string, value: unknown): asserts value is string {
  if (!isValidToken(value)) {
    throw new QuorateError(
      ErrorCode.Config,
      `${kind} must be 1-64 characters of letters, digits, '_' or '-' (got ${JSON.stringify(value)})`,
    );
  }
}

/** Checks a member list: valid, unique ids that include `self` when given. */
export function validateMembers(members: readonly string[], self?: string): void {
  if (members.length === 0) throw new QuorateError(ErrorCode.Config, "the member list is empty");
  const seen = new Set<string>();
  for (const id of members) {
    assertToken("member id", id);
    if (seen.has(id)) throw new QuorateError(ErrorCode.Config, `duplicate member id '${id}'`);
    seen.add(id);
  }
  if (self !== undefined && !seen.has(self)) {
    throw new QuorateError(ErrorCode.Config, `id '${self}' is not among the members (${members.join(",")})`);
  }
}
