/**
 * Multi-Paxos for users: the acceptor, proposer and learner roles, their options, topology,
 * status and storage. The role machines, their rules, logs and the wire messages are internals,
 * for Quorate's own tests and the simulator: "@quorate/paxos/internal".
 */
// Registers Paxos's message schemas with the codec: a role must decode what its peers send.
import "./messages.js";

export type { Timers } from "@quorate/core";
export type { AcceptorState, AcceptorWrite } from "@quorate/storage";
export { Acceptor, type AcceptorOptions } from "./acceptor.js";
export type { AcceptorMachine } from "./acceptor-machine.js";
export { Learner, type LearnerOptions } from "./learner.js";
export type { LearnerMachine } from "./learner-machine.js";
export {
  DEFAULT_PAXOS_OPTIONS,
  type PaxosOptions,
  type PaxosRoleName,
  type PaxosTopology,
  type PaxosTopologyInput,
  paxosRoleId,
  resolveTopology,
} from "./options.js";
export type { LearnerProposalOutcome, PaxosObservation, ProposerMode } from "./outbox.js";
export { Proposer, type ProposerOptions } from "./proposer.js";
export type { ProposerMachine } from "./proposer-machine.js";
export {
  type AcceptorStorage,
  type LearnerCheckpoint,
  type LearnerDurableState,
  type LearnerStorage,
  learnerStorageIn,
  type ProposerStorage,
  proposerStorageIn,
} from "./role-storage.js";
export type { PaxosRoleStatus } from "./status.js";
