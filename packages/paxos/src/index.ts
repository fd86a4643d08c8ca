export type { Timers } from "@quorate/core";
export { Acceptor, type AcceptorOptions } from "./acceptor.js";
export { type AcceptorEvent, type AcceptorInput, type AcceptorMachine, acceptorMachine } from "./acceptor-machine.js";
/** The rules of every role, for simulators that build deliberately broken variants. */
export * as acceptorRules from "./acceptor-protocol.js";
export { type AcceptorContext, AcceptorLog, sameValue } from "./acceptor-protocol.js";
export { type CommanderEvent, type CommanderMachine, commanderMachine } from "./commander.js";
export { Learner, type LearnerOptions } from "./learner.js";
export { type LearnerEvent, type LearnerInput, type LearnerMachine, learnerMachine } from "./learner-machine.js";
export * as learnerRules from "./learner-protocol.js";
export { type LearnerContext, LearnerLog } from "./learner-protocol.js";
export {
  DEFAULT_PAXOS_OPTIONS,
  type PaxosOptions,
  type PaxosRoleName,
  type PaxosTopology,
  type PaxosTopologyInput,
  paxosRoleId,
  resolvePaxosOptions,
  resolveTopology,
} from "./options.js";
export type {
  LearnerProposalOutcome,
  LearnerRequest,
  OutboundMessage,
  PaxosMessage,
  PaxosObservation,
  ProposerMode,
} from "./outbox.js";
export { Proposer, type ProposerOptions } from "./proposer.js";
export { type ProposerEvent, type ProposerInput, type ProposerMachine, proposerMachine } from "./proposer-machine.js";
export * as proposerRules from "./proposer-protocol.js";
export { NOOP, type ProposerContext, ProposerSlots } from "./proposer-protocol.js";
export {
  type LearnerCheckpoint,
  type LearnerDurableState,
  type LearnerStorage,
  learnerStorageIn,
  type ProposerStorage,
  proposerStorageIn,
} from "./role-storage.js";
export { type ScoutEvent, type ScoutMachine, scoutMachine } from "./scout.js";
export type { PaxosRoleStatus } from "./status.js";
