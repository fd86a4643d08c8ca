import type { PaxosBallot } from "@quorate/core";
import type { Attributes } from "@quorate/telemetry";

// What the telemetry of the three roles shares; each role's telemetry sits next to its host
// (acceptor-telemetry.ts, proposer-telemetry.ts, learner-telemetry.ts).

/** Paxos span names, beside `@quorate/telemetry`'s SpanName. Every name and attribute is listed in docs/telemetry.md. */
export const PaxosSpanName = {
  phase1: "paxos.phase1",
  phase2: "paxos.phase2",
} as const;

/** Paxos attributes, beside `@quorate/telemetry`'s Attr (cluster, group, member, peer, message type). */
export const PaxosAttr = {
  round: "quorate.paxos.round",
  proposer: "quorate.paxos.proposer",
  firstSlot: "quorate.paxos.first_slot",
  lastSlot: "quorate.paxos.last_slot",
  slot: "quorate.paxos.slot",
  slots: "quorate.paxos.slots",
  batchSize: "quorate.paxos.batch_size",
  quorumSize: "quorate.paxos.quorum_size",
  votes: "quorate.paxos.votes",
  promisedRound: "quorate.paxos.promised_round",
  promisedProposer: "quorate.paxos.promised_proposer",
  outcome: "quorate.paxos.outcome",
  reproposed: "quorate.paxos.reproposed",
  noops: "quorate.paxos.noops",
  requests: "quorate.paxos.requests",
} as const;

export function ballotAttributes(ballot: PaxosBallot): Attributes {
  return { [PaxosAttr.round]: ballot[0], [PaxosAttr.proposer]: ballot[1] };
}
