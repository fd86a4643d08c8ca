import type { Timers } from "@quorate/core";
import { invariant, rejectAll, TakenRequests } from "@quorate/core/internal";

/** A read barrier's caller. */
interface Reader {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** A batch of reads given its read index: answered once the learner applied through `slot`. */
interface ReadIndex {
  readonly batch: number;
  readonly slot: number;
}

/**
 * The learner host's read barriers: queued until the next batch, which asks the proposer for
 * one read index for them all, then waiting until the learner applied through that index, or
 * failed (refused, timed out, or the host stopped). A batch that times out is reported as
 * abandoned, so the machine stops asking for its index.
 */
export class ReadBarriers {
  #queued: Reader[] = [];
  readonly #batches: TakenRequests<number, Reader>;
  #indexed: ReadIndex[] = [];
  #abandoned: number[] = [];

  constructor(
    timers: Timers,
    private readonly timeoutMs: number,
    /** Reads admitted at once (PendingLimit); a batch holds at least one. */
    private readonly limit: number,
    /** A batch was abandoned: the host tells its machine at the next flush. */
    private readonly abandoned: () => void,
  ) {
    this.#batches = new TakenRequests(timers, timeoutMs, limit);
  }

  get queued(): number {
    return this.#queued.length;
  }

  queue(reader: Reader): void {
    invariant(this.#queued.length < this.limit, "more read barriers queued than admitted");
    this.#queued.push(reader);
  }

  /** Every queued read becomes batch `batch`, waiting for its index. */
  takeBatch(batch: number): void {
    const reads = this.#queued;
    invariant(reads.length > 0, `read batch ${batch} taken with no read queued`);
    this.#queued = [];
    const reader: Reader = {
      resolve: () => {
        for (const r of reads) r.resolve();
      },
      reject: (err) => {
        rejectAll(reads, err);
        this.#indexed = this.#indexed.filter((r) => r.batch !== batch);
        this.#abandoned.push(batch);
        this.abandoned();
      },
    };
    this.#batches.add(batch, reader, `read barrier ${batch} was not confirmed within ${this.timeoutMs} ms`);
  }

  /** Batches abandoned since the last call. */
  takeAbandoned(): number[] {
    const batches = this.#abandoned;
    this.#abandoned = [];
    return batches;
  }

  /** The proposer gave batch `batch` its read index. */
  indexed(batch: number, slot: number): void {
    this.#indexed.push({ batch, slot });
  }

  refused(batch: number, err: Error): void {
    this.#batches.take(batch)?.reject(err);
  }

  /** Answers the batches whose index is applied. */
  answer(applied: number): void {
    if (this.#indexed.length === 0) return;
    const waiting: ReadIndex[] = [];
    for (const read of this.#indexed) {
      if (read.slot > applied) waiting.push(read);
      else this.#batches.take(read.batch)?.resolve();
    }
    this.#indexed = waiting;
  }

  /** The host stops: every read fails. */
  failAll(err: Error): void {
    this.#indexed = [];
    this.#batches.failAll(err);
    rejectAll(this.#queued, err);
    this.#queued = [];
  }
}
