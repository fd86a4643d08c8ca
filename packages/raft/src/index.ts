/**
 * Raft for users: a member (RaftNode), its options and status, membership changes and backups.
 * The machine, its rules, the log and the wire messages are internals, for Quorate's own tests
 * and the simulator: "@quorate/raft/internal".
 */
// Registers Raft's message schemas with the codec: a member must decode what its peers send.
import "./messages.js";

export type { Timers } from "@quorate/core";
export type { RaftBackup, SeededSnapshot } from "./backup.js";
export { BACKUP_FORMAT_VERSION, BACKUP_MAGIC, decodeBackup, encodeBackup, seedFromBackup } from "./backup.js";
export type { ClusterConfig, MembershipChange } from "./config.js";
export { decodeConfig, encodeConfig } from "./config.js";
export type { RaftMachine } from "./machine.js";
export { RaftNode } from "./node.js";
export type { AddMemberOptions, Membership, RaftNodeOptions, RaftStatus } from "./node-options.js";
export {
  DEFAULT_MAX_PENDING_PROPOSALS,
  DEFAULT_MAX_PENDING_READS,
  DEFAULT_SNAPSHOT_THRESHOLD,
} from "./node-options.js";
export type { RaftOptions } from "./options.js";
export { DEFAULT_RAFT_OPTIONS } from "./options.js";
export type { ChangeOutcome, ProposalOutcome, RaftObservation, ReadOutcome, Role } from "./outbox.js";
export { SNAPSHOT_CHUNK_BYTES } from "./snapshots.js";
