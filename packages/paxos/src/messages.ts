import {
  arrayOf,
  type BodiesOf,
  bool,
  bytes,
  type Infer,
  object,
  paxosAcceptance,
  paxosValue,
  paxosValueKind,
  proposerBallot,
  registerMessages,
  uint,
} from "@quorate/core";

/**
 * The schema of every Multi-Paxos message (proposers, acceptors and learners; see the README).
 * The codec validates each decoded body against the schema of its type before anything else sees
 * it; this module registers them with it when it loads. The acceptor's vote (`paxosAcceptance`)
 * and the value it holds are in @quorate/core, because @quorate/storage persists them.
 */

export const paxosPrepare = object({
  ballot: proposerBallot,
  /** Report accepted values from this slot on: a long p1b arrives in pages, each asked for separately. */
  fromSlot: uint,
});
export type PaxosPrepare = Infer<typeof paxosPrepare>;

export const paxosPromise = object({
  ballot: proposerBallot,
  /** Slots at or below this were dropped after learners checkpointed them: decided, never proposed again. */
  truncated: uint,
  accepted: arrayOf(paxosAcceptance, 65536),
  /** The page is partial: ask again from the slot after its last acceptance. */
  more: bool,
});
export type PaxosPromise = Infer<typeof paxosPromise>;

export const paxosAccept = object({
  ballot: proposerBallot,
  proposals: arrayOf(object({ slot: uint, value: paxosValue }), 65536),
});
export type PaxosAccept = Infer<typeof paxosAccept>;

export const paxosAccepted = object({ ballot: proposerBallot, slots: arrayOf(uint, 65536), truncated: uint });
export type PaxosAccepted = Infer<typeof paxosAccepted>;

/** An acceptor refused `ballot` because it promised `promised`, a higher one. */
export const paxosNack = object({ ballot: proposerBallot, promised: proposerBallot, truncated: uint });
export type PaxosNack = Infer<typeof paxosNack>;

/**
 * The active proposer is alive; passive proposers stay passive while they hear it. `round`
 * numbers its heartbeats; acceptors echo it, so a read knows which answers left after it arrived.
 */
export const paxosHeartbeat = object({ ballot: proposerBallot, nextSlot: uint, round: uint });
export type PaxosHeartbeat = Infer<typeof paxosHeartbeat>;

/**
 * An acceptor's answer to heartbeat `round`: as it answered, it had promised no ballot above
 * `ballot`. Feeds the proposer's quorum check and confirms its reads; writes nothing durable.
 */
export const paxosAlive = object({ ballot: proposerBallot, round: uint, truncated: uint });
export type PaxosAlive = Infer<typeof paxosAlive>;

/** A learner asks the active proposer for a read index for these reads (ids of that learner's). */
export const paxosRead = object({ reads: arrayOf(uint, 65536) });
export type PaxosRead = Infer<typeof paxosRead>;

/** The active proposer's answer: once the learner applied through `slot`, these reads are linearizable. */
export const paxosReadIndex = object({ reads: arrayOf(uint, 65536), slot: uint });
export type PaxosReadIndex = Infer<typeof paxosReadIndex>;

/** A learner asks the active proposer to propose commands. */
export const paxosRequest = object({
  requests: arrayOf(object({ seq: uint, kind: paxosValueKind, data: bytes }), 65536),
});
export type PaxosRequest = Infer<typeof paxosRequest>;

/** A learner asks the active proposer to drive slots that stayed undecided (re-send or no-op). */
export const paxosFill = object({ slots: arrayOf(uint, 1024) });
export type PaxosFill = Infer<typeof paxosFill>;

/** A learner asks acceptors to repeat what they accepted in [from, to]. */
export const paxosRepeat = object({ from: uint, to: uint });
export type PaxosRepeat = Infer<typeof paxosRepeat>;

export const paxosRepeated = object({
  truncated: uint,
  accepted: arrayOf(paxosAcceptance, 65536),
  /** The last slot this reply covers; below the request's `to` when the reply was cut short. */
  through: uint,
});
export type PaxosRepeated = Infer<typeof paxosRepeated>;

/** A learner's progress, broadcast periodically: acceptors truncate below durable checkpoints. */
export const paxosLearned = object({ applied: uint, checkpoint: uint });
export type PaxosLearned = Infer<typeof paxosLearned>;

export const paxosSnapshotRequest = object({ slot: uint, offset: uint });
export type PaxosSnapshotRequest = Infer<typeof paxosSnapshotRequest>;

/** One piece of a learner's checkpoint (state through `slot`), sent in pieces below NATS max_payload. */
export const paxosSnapshotChunk = object({ slot: uint, offset: uint, total: uint, data: bytes });
export type PaxosSnapshotChunk = Infer<typeof paxosSnapshotChunk>;

export const paxosMessageSchemas = {
  "paxos.p1a": paxosPrepare,
  "paxos.p1b": paxosPromise,
  "paxos.p2a": paxosAccept,
  "paxos.p2b": paxosAccepted,
  "paxos.nack": paxosNack,
  "paxos.heartbeat": paxosHeartbeat,
  "paxos.alive": paxosAlive,
  "paxos.read": paxosRead,
  "paxos.read.index": paxosReadIndex,
  "paxos.request": paxosRequest,
  "paxos.fill": paxosFill,
  "paxos.repeat": paxosRepeat,
  "paxos.repeated": paxosRepeated,
  "paxos.learned": paxosLearned,
  "paxos.snapshot.req": paxosSnapshotRequest,
  "paxos.snapshot.chunk": paxosSnapshotChunk,
} as const;

registerMessages(paxosMessageSchemas);

type PaxosBodies = BodiesOf<typeof paxosMessageSchemas>;
declare module "@quorate/core" {
  interface MessageMap extends PaxosBodies {}
}
