import type { NodeId, PaxosBallot } from "@quorate/core";

/**
 * What every Paxos role reports to `quorate status`, shaped like Raft's status so one table
 * shows both: `term` is the ballot round, `leader` the active proposer.
 */
export interface PaxosRoleStatus {
  protocol: "paxos";
  id: NodeId;
  /** "acceptor", "proposer:active", "proposer:scouting", "proposer:passive" or "learner". */
  role: string;
  term: number;
  ballot: PaxosBallot;
  leader: NodeId | null;
  /** The highest slot this role knows to be chosen. */
  commitIndex: number;
  /** Learners: the last slot applied to the state machine; others: the truncation point. */
  appliedIndex: number;
  /** The highest slot this role holds anything for. */
  lastLogIndex: number;
}
