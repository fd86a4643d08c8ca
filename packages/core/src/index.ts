/**
 * Quorate's ground, for applications and for implementing a state machine or a transport: ids,
 * errors, logging, the wire envelope and its msgpack codec, message schemas, subjects, the
 * Transport interface, StateMachine and ConsensusNode, timers. The host kit the protocol packages
 * are built from (durable pipeline, request batching, outbox, lifecycle, rule helper), the seeded
 * PRNG, manual timers and timeline marks are internals: "@quorate/core/internal".
 */
export * from "./ballot.js";
export * from "./codec.js";
export { ErrorCode, isQuorateError, QuorateError } from "./errors.js";
export { realTimers, type Timers } from "./host.js";
export * from "./ids.js";
export { createLogger, type Logger, type LogLevel, silentLogger } from "./log.js";
export * from "./log-entry.js";
export * from "./paxos-acceptance.js";
export * from "./schema.js";
export * from "./service-errors.js";
export * from "./state-machine.js";
export * from "./subjects.js";
export * from "./transport.js";
