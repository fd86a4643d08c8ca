import {
  arrayOf,
  EntryKind,
  ErrorCode,
  type Inbound,
  isValidToken,
  type NodeId,
  object,
  packValue,
  QuorateError,
  unpackValue,
  type Validator,
} from "@quorate/core";
import { unpackEntries } from "./messages.js";

/**
 * A cluster membership configuration. Voters elect leaders and count towards quorums;
 * learners receive the log and apply it but never vote or campaign, so a new member can catch
 * up without weakening the quorum (thesis §4.2.1).
 */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** A configuration and the log index of the entry that set it (0: the bootstrap configuration). */
export interface IndexedConfig extends ClusterConfig {
  readonly index: number;
}

/** One change at a time (thesis §4.1): a single server enters or leaves the voters per change. */
export type MembershipChange =
  | { readonly type: "add-learner"; readonly member: NodeId }
  | { readonly type: "promote"; readonly member: NodeId }
  | { readonly type: "remove"; readonly member: NodeId };

export const EMPTY_CONFIG: ClusterConfig = { voters: [], learners: [] };

const memberList: Validator<string[]> = arrayOf(isValidToken, 1024);
const configShape = object({ voters: memberList, learners: memberList });

export function encodeConfig(config: ClusterConfig): Uint8Array {
  return packValue({ voters: [...config.voters], learners: [...config.learners] });
}

/**
 * Decodes a configuration from a log entry or snapshot. Snapshots written before learners
 * existed hold a plain list of voters. Throws a Config error on anything else, and on a member
 * listed twice.
 */
export function decodeConfig(data: Uint8Array): ClusterConfig {
  let value: unknown;
  try {
    value = unpackValue(data);
  } catch (err) {
    throw new QuorateError(ErrorCode.Config, "membership configuration is not valid msgpack", { cause: err });
  }
  const config: ClusterConfig | null = memberList(value)
    ? { voters: value, learners: [] }
    : configShape(value)
      ? { voters: value.voters, learners: value.learners }
      : null;
  if (config === null) throw new QuorateError(ErrorCode.Config, "malformed membership configuration");
  const all = [...config.voters, ...config.learners];
  if (new Set(all).size !== all.length) {
    throw new QuorateError(ErrorCode.Config, `membership configuration lists a member twice (${all.join(",")})`);
  }
  return config;
}

export function isMember(config: ClusterConfig, id: NodeId): boolean {
  return config.voters.includes(id) || config.learners.includes(id);
}

/**
 * The configuration after `change`, or why the change is impossible. Pure: the leader calls it
 * before appending the change, the CLI and API surface its message as is.
 */
export function applyChange(config: ClusterConfig, change: MembershipChange): ClusterConfig | string {
  const { member } = change;
  switch (change.type) {
    case "add-learner":
      if (isMember(config, member)) {
        return `'${member}' is already a ${config.voters.includes(member) ? "voter" : "learner"}`;
      }
      return { voters: config.voters, learners: [...config.learners, member] };
    case "promote":
      if (config.voters.includes(member)) return `'${member}' is already a voter`;
      if (!config.learners.includes(member)) return `'${member}' is not a learner; add it first`;
      return { voters: [...config.voters, member], learners: config.learners.filter((m) => m !== member) };
    case "remove":
      if (!isMember(config, member)) return `'${member}' is not a member`;
      if (config.voters.length === 1 && config.voters[0] === member) {
        return `'${member}' is the last voter; a cluster cannot remove its last voter`;
      }
      return {
        voters: config.voters.filter((m) => m !== member),
        learners: config.learners.filter((m) => m !== member),
      };
  }
}

/**
 * Whether every configuration entry in an AppendEntries decodes. The codec validated the frame's
 * shape; a configuration entry's payload is checked here, before the log decodes it.
 */
export function configEntriesValid(body: Inbound<"raft.append">["body"]): boolean {
  if (!body.entries.kinds.includes(EntryKind.Config)) return true;
  try {
    for (const entry of unpackEntries(body.entries)) if (entry.kind === EntryKind.Config) decodeConfig(entry.data);
    return true;
  } catch {
    return false;
  }
}
