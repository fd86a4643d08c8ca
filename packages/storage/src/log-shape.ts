import { isEntryKind } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { HardState, RaftState, RaftWrite } from "./types.js";

/** Entries `from..to` (inclusive) that a write deletes. */
export interface IndexRange {
  from: number;
  to: number;
}

/** Entries from `start` up to the next run's start all carry `term`; terms change rarely, so runs stay few. */
interface TermRun {
  start: number;
  term: number;
}

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
const isIndex = (n: unknown): n is number => isCount(n) && n >= 1;

/**
 * The log as it will be once every accepted write is durable. Writes apply in call order, so
 * each write is checked against the state all earlier writes leave behind, not against the disk.
 * It keeps only indices and terms, never entry data.
 */
export class LogShape {
  #hardState: HardState;
  #snapshotIndex: number;
  #snapshotTerm: number;
  /** Index of the last entry, or of the snapshot when no entry follows it. */
  #lastIndex: number;
  #runs: readonly TermRun[];

  private constructor(
    hardState: HardState,
    snapshotIndex: number,
    snapshotTerm: number,
    runs: TermRun[],
    last: number,
  ) {
    this.#hardState = hardState;
    this.#snapshotIndex = snapshotIndex;
    this.#snapshotTerm = snapshotTerm;
    this.#runs = runs;
    this.#lastIndex = last;
  }

  static of(state: RaftState): LogShape {
    const runs: TermRun[] = [];
    for (const entry of state.entries) addToRuns(runs, entry.index, entry.term);
    const snapshotIndex = state.snapshot?.index ?? 0;
    const last = state.entries.at(-1)?.index ?? snapshotIndex;
    return new LogShape({ ...state.hardState }, snapshotIndex, state.snapshot?.term ?? 0, runs, last);
  }

  /**
   * Checks `write` against the state earlier writes leave and, if it is valid, makes it the new
   * state. Returns the stored entries the write deletes. Throws an Invariant error, changing
   * nothing, if the write would break a property Raft relies on.
   */
  accept(write: RaftWrite): IndexRange[] {
    const deleted: IndexRange[] = [];
    let runs = this.#runs;
    let snapshotIndex = this.#snapshotIndex;
    let snapshotTerm = this.#snapshotTerm;
    let last = this.#lastIndex;
    const termAt = (index: number): number =>
      index === snapshotIndex ? snapshotTerm : (runs.findLast((run) => run.start <= index)?.term ?? 0);

    const { truncateFrom, snapshot, entries, hardState } = write;
    if (truncateFrom !== undefined) {
      invariant(isIndex(truncateFrom), `truncateFrom must be an index >= 1, got ${truncateFrom}`);
      invariant(
        truncateFrom > snapshotIndex,
        `truncateFrom ${truncateFrom} reaches into the snapshot at ${snapshotIndex}`,
      );
      invariant(truncateFrom <= last + 1, `truncateFrom ${truncateFrom} is past the end of the log at ${last}`);
      invariant(
        truncateFrom > this.#hardState.commit,
        `truncateFrom ${truncateFrom} would delete committed entries (commit ${this.#hardState.commit})`,
      );
      if (truncateFrom <= last) deleted.push({ from: truncateFrom, to: last });
      runs = runs.filter((run) => run.start < truncateFrom);
      last = truncateFrom - 1;
    }

    if (snapshot !== undefined) {
      invariant(isIndex(snapshot.index), `snapshot index must be >= 1, got ${snapshot.index}`);
      invariant(isCount(snapshot.term), `snapshot term must be a non-negative integer, got ${snapshot.term}`);
      invariant(snapshot.data instanceof Uint8Array, "snapshot data must be a Uint8Array");
      invariant(snapshot.config instanceof Uint8Array, "snapshot config must be a Uint8Array");
      invariant(
        snapshot.index > snapshotIndex,
        `snapshot at ${snapshot.index} does not advance past the stored snapshot at ${snapshotIndex}`,
      );
      invariant(
        snapshot.term >= snapshotTerm,
        `snapshot term ${snapshot.term} is below the stored snapshot's term ${snapshotTerm}`,
      );
      if (snapshot.index <= last) {
        const term = termAt(snapshot.index);
        invariant(
          term === snapshot.term,
          `snapshot at ${snapshot.index} has term ${snapshot.term} but the log's entry there has term ${term}; truncate the suffix first`,
        );
      }
      const coveredTo = Math.min(snapshot.index, last);
      if (coveredTo > snapshotIndex) deleted.push({ from: snapshotIndex + 1, to: coveredTo });
      runs = snapshot.index >= last ? [] : dropRunsThrough(runs, snapshot.index);
      last = Math.max(last, snapshot.index);
      snapshotIndex = snapshot.index;
      snapshotTerm = snapshot.term;
    }

    if (entries !== undefined && entries.length > 0) {
      const appended = [...runs];
      let previousTerm = termAt(last);
      for (const entry of entries) {
        invariant(
          entry.index === last + 1,
          `entry ${entry.index} does not follow ${last}: entries must be contiguous after the log's end`,
        );
        invariant(isCount(entry.term), `entry ${entry.index} has invalid term ${entry.term}`);
        invariant(
          entry.term >= previousTerm,
          `entry ${entry.index} has term ${entry.term}, below term ${previousTerm} of the entry before it`,
        );
        invariant(isEntryKind(entry.kind), `entry ${entry.index} has unknown kind ${entry.kind}`);
        invariant(entry.data instanceof Uint8Array, `entry ${entry.index} data must be a Uint8Array`);
        addToRuns(appended, entry.index, entry.term);
        last = entry.index;
        previousTerm = entry.term;
      }
      runs = appended;
    }

    const current = this.#hardState;
    if (hardState !== undefined) {
      invariant(isCount(hardState.term), `hard state term must be a non-negative integer, got ${hardState.term}`);
      invariant(hardState.term >= current.term, `term would go back from ${current.term} to ${hardState.term}`);
      invariant(
        hardState.vote === null || typeof hardState.vote === "string",
        "hard state vote must be a string or null",
      );
      invariant(
        hardState.term > current.term || current.vote === null || hardState.vote === current.vote,
        `vote in term ${current.term} would change from ${current.vote} to ${hardState.vote}`,
      );
      invariant(isCount(hardState.commit), `commit must be a non-negative integer, got ${hardState.commit}`);
      invariant(
        hardState.commit >= current.commit,
        `commit would go back from ${current.commit} to ${hardState.commit}`,
      );
    }
    const next =
      hardState === undefined ? current : { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    invariant(next.commit <= last, `commit ${next.commit} is past the end of the log at ${last}`);
    invariant(termAt(last) <= next.term, `the log holds term ${termAt(last)}, above the current term ${next.term}`);

    this.#hardState = next;
    this.#snapshotIndex = snapshotIndex;
    this.#snapshotTerm = snapshotTerm;
    this.#runs = runs;
    this.#lastIndex = last;
    return deleted;
  }

  /**
   * Checks a compaction. Installing a snapshot already deletes every entry it covers, so a valid
   * compaction never has entries left to delete; what it guarantees is order and durability.
   */
  acceptCompaction(upTo: number): void {
    invariant(isCount(upTo), `compact needs a non-negative index, got ${upTo}`);
    invariant(
      upTo <= this.#snapshotIndex,
      `compact(${upTo}) reaches past the stored snapshot at ${this.#snapshotIndex}`,
    );
  }
}

function addToRuns(runs: TermRun[], index: number, term: number): void {
  if (runs.at(-1)?.term !== term) runs.push({ start: index, term });
}

/** The runs of the entries after `index`, which is below the last entry's index. */
function dropRunsThrough(runs: readonly TermRun[], index: number): TermRun[] {
  const kept: TermRun[] = [];
  runs.forEach((run, i) => {
    const end = runs[i + 1]?.start ?? Number.POSITIVE_INFINITY;
    if (end > index + 1) kept.push({ start: Math.max(run.start, index + 1), term: run.term });
  });
  return kept;
}
