/**
 * Paxos's internals, for Quorate's own tests and the simulator: each role's machine and the rules
 * it is built from (broken variants replace one with `provide()`), the role logs and outboxes'
 * message types. No stability promise: applications use "@quorate/paxos".
 */

export { type AcceptorEvent, type AcceptorInput, acceptorMachine } from "./acceptor-machine.js";
/** The rules of every role, for simulators that build deliberately broken variants. */
export * as acceptorRules from "./acceptor-protocol.js";
export { type AcceptorContext, AcceptorLog, sameValue } from "./acceptor-protocol.js";
export { type CommanderEvent, type CommanderMachine, commanderMachine } from "./commander.js";
export * from "./index.js";
export { type LearnerEvent, type LearnerInput, learnerMachine } from "./learner-machine.js";
export * as learnerRules from "./learner-protocol.js";
export { type LearnerContext, LearnerLog } from "./learner-protocol.js";
export { resolvePaxosOptions } from "./options.js";
export type { LearnerRequest, OutboundMessage, PaxosMessage } from "./outbox.js";
export { type ProposerEvent, type ProposerInput, proposerMachine } from "./proposer-machine.js";
export * as proposerRules from "./proposer-protocol.js";
export { NOOP, type ProposerContext, ProposerSlots } from "./proposer-protocol.js";
export { type ScoutEvent, type ScoutMachine, scoutMachine } from "./scout.js";
