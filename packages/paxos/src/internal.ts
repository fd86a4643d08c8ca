/**
 * Paxos's internals, for Quorate's own tests and the simulator: each role's machine and the rules
 * it is built from (broken variants replace one with `provide()`), the role logs, the outboxes'
 * message types and the wire messages' schemas. No stability promise: applications use
 * "@quorate/paxos".
 */

export { type AcceptorEvent, type AcceptorInput, acceptorMachine } from "./acceptor-machine.js";
/** The rules of every role, for simulators that build deliberately broken variants. */
export * as acceptorRules from "./acceptor-protocol.js";
export { type AcceptorContext, type AcceptorGuardParams, AcceptorLog, sameValue } from "./acceptor-protocol.js";
export { type CommanderEvent, type CommanderMachine, commanderMachine } from "./commander.js";
export * from "./index.js";
export { LearnerLog } from "./learner-log.js";
export { type LearnerEvent, type LearnerInput, learnerMachine } from "./learner-machine.js";
export type { LearnerContext, LearnerGuardParams } from "./learner-protocol.js";
export * as learnerRules from "./learner-protocol.js";
export * from "./messages.js";
export { resolvePaxosOptions } from "./options.js";
export type { LearnerReadOutcome, LearnerRequest, OutboundMessage, PaxosMessage } from "./outbox.js";
export * as proposerLeadershipRules from "./proposer-leadership.js";
export { type PendingRead, type ProposerGuardParams, ProposerReads } from "./proposer-leadership.js";
export { type ProposerEvent, type ProposerInput, proposerMachine } from "./proposer-machine.js";
export * as proposerRules from "./proposer-protocol.js";
export { NOOP, type ProposerContext } from "./proposer-protocol.js";
export { ProposerSlots } from "./proposer-slots.js";
export { type ScoutEvent, type ScoutMachine, scoutMachine } from "./scout.js";
