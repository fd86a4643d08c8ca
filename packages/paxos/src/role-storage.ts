import type { AcceptorState, AcceptorWrite, RaftStorage } from "@quorate/storage";

/**
 * What an acceptor must not forget: its promise, its votes and its truncation point, in the
 * records @quorate/storage persists. Its LmdbAcceptorStorage and MemoryAcceptorStorage are two.
 */
export interface AcceptorStorage {
  /** What is durable now. Called once, before any write. */
  load(): Promise<AcceptorState>;
  /** Applies the write atomically; resolves once durable (fsynced). Writes apply in call order. */
  write(write: AcceptorWrite): Promise<void>;
  close(): Promise<void>;
}

/** What a proposer must not forget: the highest round it used, so that after a restart it never reuses a ballot. */
export interface ProposerStorage {
  /** The highest round made durable; 0 for a proposer that never ran one. Called once, before any write. */
  loadRound(): Promise<number>;
  /** Resolves once `round` is durable. */
  writeRound(round: number): Promise<void>;
}

/** The state machine's state after applying every slot up to `slot`; acceptors may forget the slots below. */
export interface LearnerCheckpoint {
  readonly slot: number;
  readonly data: Uint8Array;
}

export interface LearnerDurableState {
  /** How many times the learner has started: request seqs of each incarnation are kept apart. 0 when new. */
  readonly incarnation: number;
  readonly checkpoint: LearnerCheckpoint | null;
}

/** What a learner must not forget: its incarnation and its latest checkpoint. */
export interface LearnerStorage {
  /** Called once, before any write. */
  load(): Promise<LearnerDurableState>;
  /** Resolves once `incarnation` is durable. */
  writeIncarnation(incarnation: number): Promise<void>;
  /** Resolves once the checkpoint is durable; it replaces the one before. */
  writeCheckpoint(checkpoint: LearnerCheckpoint): Promise<void>;
}

/*
 * Both roles keep their state in a Raft store, in the layout of earlier versions, so that their
 * data directories open unchanged: any RaftStorage serves, LMDB on disk or memory in tests.
 */

/** A proposer's storage in a Raft store: the round is the hard state's term. */
export function proposerStorageIn(store: RaftStorage): ProposerStorage {
  return {
    loadRound: async () => (await store.load()).hardState.term,
    writeRound: (round) => store.write({ hardState: { term: round, vote: null, commit: 0 } }),
  };
}

const NO_CONFIG = new Uint8Array(0);

/** A learner's storage in a Raft store: the incarnation is the hard state's term, a checkpoint a snapshot at its slot. */
export function learnerStorageIn(store: RaftStorage): LearnerStorage {
  return {
    async load() {
      const { hardState, snapshot } = await store.load();
      const checkpoint = snapshot === null ? null : { slot: snapshot.index, data: snapshot.data };
      return { incarnation: hardState.term, checkpoint };
    },
    writeIncarnation: (incarnation) => store.write({ hardState: { term: incarnation, vote: null, commit: 0 } }),
    writeCheckpoint: ({ slot, data }) => store.write({ snapshot: { index: slot, term: 0, config: NO_CONFIG, data } }),
  };
}
