export type { Timers } from "@quorate/core";
export type { RaftBackup, SeededSnapshot } from "./backup.js";
export { BACKUP_FORMAT_VERSION, BACKUP_MAGIC, decodeBackup, encodeBackup, seedFromBackup } from "./backup.js";
export type { ClusterConfig, IndexedConfig, MembershipChange } from "./config.js";
export { applyChange, decodeConfig, EMPTY_CONFIG, encodeConfig } from "./config.js";
export type { LogEntry, RaftLogInit } from "./log.js";
export { entryBytes, RaftLog } from "./log.js";
export type { RaftEvent, RaftInput, RaftMachine } from "./machine.js";
export { raftMachine, rule } from "./machine.js";
export * from "./messages.js";
export { RaftNode } from "./node.js";
export type { AddMemberOptions, Membership, RaftNodeOptions, RaftStatus } from "./node-options.js";
export {
  DEFAULT_MAX_PENDING_PROPOSALS,
  DEFAULT_MAX_PENDING_READS,
  DEFAULT_SNAPSHOT_THRESHOLD,
} from "./node-options.js";
export type { RaftOptions } from "./options.js";
export { DEFAULT_RAFT_OPTIONS, resolveRaftOptions } from "./options.js";
export type {
  ChangeOutcome,
  OutboundMessage,
  ProposalOutcome,
  RaftObservation,
  ReadOutcome,
  Role,
} from "./outbox.js";
export { Outbox } from "./outbox.js";
export type { Progress, RaftContext, RaftMessage } from "./protocol.js";
/** The protocol rules and the action wrapper, for simulators that build deliberately broken variants. */
export * as protocol from "./protocol.js";
export { SNAPSHOT_CHUNK_BYTES } from "./snapshots.js";
