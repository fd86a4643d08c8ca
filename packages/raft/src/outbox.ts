import type { NodeId } from "@quorate/core";
import { HostOutbox, handOver, type OutboundMessage } from "@quorate/core/internal";
import type { ClusterConfig } from "./config.js";

// Every message but the leader's AppendEntries waits for durability (`afterPersist`): a vote, an
// ack, a candidate's request. The leader's appends go out at once (thesis §10.2.1: the leader
// writes its own log in parallel with replication and counts itself only once durable).
export type { OutboundMessage } from "@quorate/core/internal";

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

const ROLE_OF_STATE: Record<string, Role> = {
  follower: "follower",
  preCandidate: "pre-candidate",
  candidate: "candidate",
  leader: "leader",
};

/** The role a state of the Raft machine stands for. */
export function roleOfState(state: unknown): Role {
  return ROLE_OF_STATE[String(state)] ?? "follower";
}

/** Observations for logs, traces and metrics. They never feed back into the protocol. */
export type RaftObservation =
  | { kind: "role"; role: Role; term: number; leader: NodeId | null }
  | { kind: "campaign"; term: number; preVote: boolean }
  | { kind: "vote"; from: NodeId; granted: boolean; preVote: boolean; term: number }
  | { kind: "campaign-end"; term: number; preVote: boolean; outcome: "won" | "lost" | "superseded" | "timed-out" }
  | { kind: "append"; firstIndex: number; lastIndex: number; term: number }
  | { kind: "ack"; from: NodeId; index: number }
  | { kind: "commit"; index: number; term: number }
  | { kind: "step-down"; term: number; reason: "higher-term" | "check-quorum" | "removed" }
  | { kind: "transfer"; to: NodeId | null; status: "started" | "aborted" | "rejected" }
  /** A message a correct peer cannot have sent (it answers something never sent); ignored. */
  | { kind: "refused"; from: NodeId; reason: string };

export type ProposalOutcome =
  | { id: number; ok: true; firstIndex: number; term: number }
  | { id: number; ok: false; reason: "not-leader" | "busy" | "transferring"; leader: NodeId | null };

export type ChangeOutcome =
  | { id: number; ok: true; index: number; term: number; config: ClusterConfig }
  | {
      id: number;
      ok: false;
      reason: "not-leader" | "in-progress" | "invalid" | "not-caught-up";
      message: string;
      leader: NodeId | null;
    };

export interface SnapshotInstall {
  readonly index: number;
  readonly term: number;
  readonly config: ClusterConfig;
  readonly data: Uint8Array;
  /** The local log did not match the snapshot and was dropped; storage must drop it too. */
  readonly discardLog: boolean;
}

export type ReadOutcome = { id: number; ok: true; index: number } | { id: number; ok: false; leader: NodeId | null };

/** What one drain of the outbox hands the host: etcd-raft's Ready. */
export interface RaftReady {
  readonly messages: readonly OutboundMessage[];
  readonly observations: readonly RaftObservation[];
  readonly unstableFrom: number | null;
  readonly hardStateChanged: boolean;
  readonly proposals: readonly ProposalOutcome[];
  readonly reads: readonly ReadOutcome[];
  readonly changes: readonly ChangeOutcome[];
  readonly snapshotSends: readonly NodeId[];
  readonly install: SnapshotInstall | null;
}

/**
 * What one or more machine steps ask the host to do: etcd-raft's Ready, accumulated in
 * place by the machine and drained by the host after each event.
 */
export class Outbox extends HostOutbox<RaftObservation> {
  /** Lowest log index changed since the last drain (entries from here on must be written). */
  unstableFrom: number | null = null;
  /** Term or vote changed and must be durable before dependent messages leave. */
  hardStateChanged = false;
  proposals: ProposalOutcome[] = [];
  reads: ReadOutcome[] = [];
  changes: ChangeOutcome[] = [];
  /** Followers that need the current snapshot: the host streams it in chunks. */
  snapshotSends: NodeId[] = [];
  /** A snapshot received from the leader, to persist and restore before applying further. */
  install: SnapshotInstall | null = null;

  logChangedFrom(index: number): void {
    this.unstableFrom = this.unstableFrom === null ? index : Math.min(this.unstableFrom, index);
  }

  /** Hands the accumulated effects to the host and starts a new batch. */
  take(): RaftReady {
    const ready: RaftReady = {
      ...this.takeCommon(),
      unstableFrom: this.unstableFrom,
      hardStateChanged: this.hardStateChanged,
      proposals: handOver(this.proposals),
      reads: handOver(this.reads),
      changes: handOver(this.changes),
      snapshotSends: handOver(this.snapshotSends),
      install: this.install,
    };
    this.unstableFrom = null;
    this.hardStateChanged = false;
    if (ready.proposals.length > 0) this.proposals = [];
    if (ready.reads.length > 0) this.reads = [];
    if (ready.changes.length > 0) this.changes = [];
    if (ready.snapshotSends.length > 0) this.snapshotSends = [];
    this.install = null;
    return ready;
  }
}
