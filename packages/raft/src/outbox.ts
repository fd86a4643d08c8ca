import type { MessageMap, MessageType, NodeId } from "@quorate/core";

/** A message the host must send. `to === null` is a broadcast to the whole group. */
export interface OutboundMessage<T extends MessageType = MessageType> {
  readonly to: NodeId | null;
  readonly type: T;
  readonly body: MessageMap[T];
  /**
   * True when the message depends on state not yet durable (a vote, an ack, a candidate's
   * request): the host sends it only once every write requested before it is on disk.
   * Only the leader's AppendEntries go out at once (thesis §10.2.1: the leader writes its
   * own log in parallel with replication and counts itself only once durable).
   */
  readonly afterPersist: boolean;
}

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Observations for logs, traces and metrics. They never feed back into the protocol. */
export type RaftObservation =
  | { kind: "role"; role: Role; term: number; leader: NodeId | null }
  | { kind: "campaign"; term: number; preVote: boolean }
  | { kind: "vote"; from: NodeId; granted: boolean; preVote: boolean; term: number }
  | { kind: "campaign-end"; term: number; preVote: boolean; outcome: "won" | "lost" | "superseded" | "timed-out" }
  | { kind: "append"; firstIndex: number; lastIndex: number; term: number }
  | { kind: "ack"; from: NodeId; index: number }
  | { kind: "commit"; index: number; term: number }
  | { kind: "step-down"; term: number; reason: "higher-term" | "check-quorum" };

export type ProposalOutcome =
  | { id: number; ok: true; firstIndex: number; term: number }
  | { id: number; ok: false; reason: "not-leader" | "busy"; leader: NodeId | null };

export type ReadOutcome = { id: number; ok: true; index: number } | { id: number; ok: false; leader: NodeId | null };

/**
 * What one or more machine steps ask the host to do: etcd-raft's Ready, accumulated in
 * place by the machine and drained by the host after each event.
 */
export class Outbox {
  messages: OutboundMessage[] = [];
  /** Lowest log index changed since the last drain (entries from here on must be written). */
  unstableFrom: number | null = null;
  /** Term or vote changed and must be durable before dependent messages leave. */
  hardStateChanged = false;
  proposals: ProposalOutcome[] = [];
  reads: ReadOutcome[] = [];
  observations: RaftObservation[] = [];

  send<T extends MessageType>(to: NodeId | null, type: T, body: MessageMap[T], afterPersist: boolean): void {
    this.messages.push({ to, type, body, afterPersist } as OutboundMessage);
  }

  logChangedFrom(index: number): void {
    this.unstableFrom = this.unstableFrom === null ? index : Math.min(this.unstableFrom, index);
  }

  observe(observation: RaftObservation): void {
    this.observations.push(observation);
  }

  /** Hands the accumulated effects to the host and starts a new batch. */
  take(): Omit<Outbox, "take" | "send" | "logChangedFrom" | "observe"> {
    const taken = {
      messages: this.messages,
      unstableFrom: this.unstableFrom,
      hardStateChanged: this.hardStateChanged,
      proposals: this.proposals,
      reads: this.reads,
      observations: this.observations,
    };
    this.messages = [];
    this.unstableFrom = null;
    this.hardStateChanged = false;
    this.proposals = [];
    this.reads = [];
    this.observations = [];
    return taken;
  }
}
