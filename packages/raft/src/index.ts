export type { LogEntry } from "./log.js";
export { entryBytes, RaftLog } from "./log.js";
export type { RaftEvent, RaftInput, RaftMachine } from "./machine.js";
export { raftMachine } from "./machine.js";
export type { RaftOptions } from "./options.js";
export { DEFAULT_RAFT_OPTIONS, resolveRaftOptions } from "./options.js";
export type { OutboundMessage, ProposalOutcome, RaftObservation, ReadOutcome, Role } from "./outbox.js";
export { Outbox } from "./outbox.js";
export type { Progress, RaftContext, RaftMessage } from "./protocol.js";
