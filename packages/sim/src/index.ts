export {
  DEFAULT_NEMESIS,
  emptyFaultCounts,
  FAULT_KINDS,
  type FaultCounts,
  type FaultKind,
  HEALTHY_NETWORK,
  NEMESIS_PROFILES,
  type NemesisOptions,
  READ_WINDOW_NEMESIS,
} from "./faults.js";
export {
  PAXOS_FAULT_PERIOD_MS,
  type PaxosAdapterOptions,
  paxosAdapter,
  SIM_CHECKPOINT_INTERVAL,
  SIM_PAXOS_OPTIONS,
  SIM_PAXOS_TICK_MS,
} from "./paxos/adapter.js";
export type { PaxosInvariant } from "./paxos/invariants.js";
export type { MemberEnvironment, ProtocolAdapter, ProtocolRun, Violation } from "./protocol.js";
export {
  LEASE_RAFT_OPTIONS,
  leaseRaftAdapter,
  type RaftAdapterOptions,
  raftAdapter,
  SIM_RAFT_OPTIONS,
  SIM_TICK_MS,
} from "./raft/adapter.js";
export type { RaftInvariant } from "./raft/invariants.js";
export { formatFailure, replayCommand } from "./report.js";
export { Scheduler, VirtualTimers } from "./scheduler.js";
export {
  DEFAULT_FAULT_PERIOD_MS,
  DEFAULT_LIVENESS_BOUND_MS,
  deriveSeed,
  type OperationCounts,
  type RunViolation,
  type SimulationMode,
  type SimulationOptions,
  type SimulationResult,
  simulate,
} from "./simulation.js";
export { formatTraceEvent, formatTraceRecord, type TraceEvent, type TraceRecord } from "./trace.js";
export { DEFAULT_WORKLOAD, type WorkloadOptions } from "./workload.js";
