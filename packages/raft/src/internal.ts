/**
 * Raft's internals, for Quorate's own tests and the simulator: the machine and the rules it is
 * built from (broken variants replace one with `provide()`), the log, the outbox and the wire
 * messages. No stability promise: applications use "@quorate/raft".
 */

export type { IndexedConfig } from "./config.js";
export { applyChange, EMPTY_CONFIG } from "./config.js";
export * from "./index.js";
export type { LogEntry, RaftLogInit } from "./log.js";
export { entryBytes, RaftLog } from "./log.js";
export type { RaftEvent, RaftInput } from "./machine.js";
export { raftMachine, rule } from "./machine.js";
export * from "./messages.js";
export { resolveRaftOptions } from "./options.js";
export type { OutboundMessage } from "./outbox.js";
export { Outbox } from "./outbox.js";
export type { Progress, RaftContext, RaftGuard, RaftGuardParams, RaftMessage } from "./protocol.js";
/** The protocol rules, for simulators that build deliberately broken variants. */
export * as protocol from "./protocol.js";
