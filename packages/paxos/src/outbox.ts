import type {
  MessageMap,
  MessageType,
  NodeId,
  PaxosAcceptance,
  PaxosBallot,
  PaxosValue,
  PaxosValueKind,
} from "@quorate/core";
import { HostOutbox, handOver } from "@quorate/core/internal";

// A broadcast (`to === null`) reaches every role of the group; promises, acceptances and new
// rounds wait for durability (`afterPersist`).
export type { OutboundMessage } from "@quorate/core/internal";

/** A message as a role machine sees it: its type and validated body. */
export type PaxosMessage = { [K in MessageType]: { type: K; body: MessageMap[K] } }[MessageType];

export type ProposerMode = "passive" | "scouting" | "active";

/** Observations for logs, metrics and the simulator's invariant checks. They never feed back. */
export type PaxosObservation =
  | { kind: "promise"; acceptor: NodeId; ballot: PaxosBallot }
  | { kind: "accept"; acceptor: NodeId; slot: number; ballot: PaxosBallot; value: PaxosValue }
  | { kind: "truncate"; acceptor: NodeId; through: number }
  | { kind: "mode"; proposer: NodeId; mode: ProposerMode; ballot: PaxosBallot }
  | { kind: "preempted"; proposer: NodeId; ballot: PaxosBallot; by: PaxosBallot }
  | { kind: "adopted"; proposer: NodeId; ballot: PaxosBallot; reproposed: number; noops: number }
  | { kind: "decided"; proposer: NodeId; ballot: PaxosBallot; slots: readonly number[] }
  | { kind: "chosen"; learner: NodeId; slot: number; value: PaxosValue }
  /** Reported by the learner host as it applies; `value` is what the state machine saw. */
  | { kind: "applied"; learner: NodeId; slot: number; value: PaxosValue }
  | { kind: "restored"; learner: NodeId; slot: number };

/** Effects common to every role: messages and observations, drained by the host after each event. */
export class Outbox extends HostOutbox<PaxosObservation> {}

/** Acceptor effects: what must be durable before its replies leave. */
export class AcceptorOutbox extends Outbox {
  promised: PaxosBallot | null = null;
  accepted: PaxosAcceptance[] = [];
  truncateThrough: number | null = null;

  take() {
    const { messages, observations } = this.takeCommon();
    const accepted = handOver(this.accepted);
    if (accepted.length > 0) this.accepted = [];
    const taken = { messages, observations, promised: this.promised, accepted, truncateThrough: this.truncateThrough };
    this.promised = null;
    this.truncateThrough = null;
    return taken;
  }
}

/** Proposer effects: a round to make durable before its p1a leaves. */
export class ProposerOutbox extends Outbox {
  round: number | null = null;

  take() {
    const { messages, observations } = this.takeCommon();
    const taken = { messages, observations, round: this.round };
    this.round = null;
    return taken;
  }
}

export type LearnerProposalOutcome =
  | { id: number; ok: true; firstSeq: number }
  | {
      id: number;
      ok: false;
      leader: NodeId | null;
      /** Refused because `maxPendingRequests` requests are not yet chosen, not for want of a leader. */
      busy?: boolean;
    };

/** What became of a batch of read barriers: refused, or given its read index. */
export type LearnerReadOutcome =
  | { batch: number; ok: true; slot: number }
  | { batch: number; ok: false; leader: NodeId | null; busy?: boolean };

/** Learner effects: outcomes of client requests and reads, and a snapshot to restore. */
export class LearnerOutbox extends Outbox {
  proposals: LearnerProposalOutcome[] = [];
  reads: LearnerReadOutcome[] = [];
  restore: { slot: number; data: Uint8Array } | null = null;

  take() {
    const { messages, observations } = this.takeCommon();
    const proposals = handOver(this.proposals);
    if (proposals.length > 0) this.proposals = [];
    const reads = handOver(this.reads);
    if (reads.length > 0) this.reads = [];
    const taken = { messages, observations, proposals, reads, restore: this.restore };
    this.restore = null;
    return taken;
  }
}

/** A client request a learner hands to the machine (a command; no-ops and read markers are not requested). */
export interface LearnerRequest {
  readonly kind: PaxosValueKind;
  readonly data: Uint8Array;
}
