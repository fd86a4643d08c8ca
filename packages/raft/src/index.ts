export type { Timers } from "@quorate/core";
export type { LogEntry } from "./log.js";
export { entryBytes, RaftLog } from "./log.js";
export type { RaftEvent, RaftInput, RaftMachine } from "./machine.js";
export { raftMachine, rule } from "./machine.js";
export type { RaftNodeOptions, RaftStatus } from "./node.js";
export { RaftNode } from "./node.js";
export type { RaftOptions } from "./options.js";
export { DEFAULT_RAFT_OPTIONS, resolveRaftOptions } from "./options.js";
export type { OutboundMessage, ProposalOutcome, RaftObservation, ReadOutcome, Role } from "./outbox.js";
export { Outbox } from "./outbox.js";
export type { Progress, RaftContext, RaftMessage } from "./protocol.js";
/** The protocol rules and the action wrapper, for simulators that build deliberately broken variants. */
export * as protocol from "./protocol.js";
