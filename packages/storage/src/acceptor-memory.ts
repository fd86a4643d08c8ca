import { ErrorCode, type PaxosAcceptance, type PaxosBallot, QuorateError } from "@quorate/core";
import { AcceptorShape } from "./acceptor-shape.js";
import { type AcceptorState, type AcceptorStorage, type AcceptorWrite, NO_BALLOT } from "./acceptor-types.js";
import { copyBytes } from "./bytes.js";
import type { DurabilitySchedule, MemoryStorageOptions } from "./memory.js";

/** What an attached storage may do with its disk. */
interface DiskAttachment {
  apply(write: AcceptorWrite): void;
  detach(): void;
}

let attach: (disk: MemoryAcceptorDisk, onCrash: () => void) => DiskAttachment;

/**
 * The durable state of one simulated acceptor: what survives a crash. Like a data directory,
 * it serves one live storage at a time.
 */
export class MemoryAcceptorDisk {
  #promised: PaxosBallot = NO_BALLOT;
  #truncated = 0;
  readonly #accepted = new Map<number, PaxosAcceptance>();
  #crashAttached: (() => void) | null = null;

  static {
    attach = (disk, onCrash) => disk.#attach(onCrash);
  }

  /**
   * Simulates a crash: the attached storage loses every write not yet durable and is dead
   * (its promises never settle). A new MemoryAcceptorStorage then loads only what was durable.
   */
  crash(): void {
    const crashAttached = this.#crashAttached;
    this.#crashAttached = null;
    crashAttached?.();
  }

  /** A copy of what is durable now, for checkers; needs no attached storage. */
  durableState(): AcceptorState {
    const accepted = [...this.#accepted.values()].sort((a, b) => a.slot - b.slot).map(copyAcceptance);
    return { promised: this.#promised, truncated: this.#truncated, accepted };
  }

  #attach(onCrash: () => void): DiskAttachment {
    if (this.#crashAttached !== null) {
      throw new QuorateError(ErrorCode.Storage, "memory acceptor disk is in use; close() it or crash() the disk first");
    }
    this.#crashAttached = onCrash;
    return {
      apply: (write) => this.#apply(write),
      detach: () => {
        if (this.#crashAttached === onCrash) this.#crashAttached = null;
      },
    };
  }

  #apply({ truncateThrough, accepted, promised }: AcceptorWrite): void {
    if (truncateThrough !== undefined && truncateThrough > this.#truncated) {
      this.#truncated = truncateThrough;
      for (const slot of this.#accepted.keys()) if (slot <= truncateThrough) this.#accepted.delete(slot);
    }
    for (const acceptance of accepted ?? []) {
      if (acceptance.slot > this.#truncated) this.#accepted.set(acceptance.slot, acceptance);
    }
    if (promised !== undefined) this.#promised = promised;
  }
}

interface PendingWrite {
  readonly write: AcceptorWrite;
  readonly resolve: () => void;
}

/**
 * AcceptorStorage over a MemoryAcceptorDisk with crash semantics, for tests and the simulator,
 * the acceptor's counterpart of MemoryRaftStorage: a write is pending until the schedule calls
 * back, then durable together with every earlier pending write, in call order.
 */
export class MemoryAcceptorStorage implements AcceptorStorage {
  readonly #disk: MemoryAcceptorDisk;
  readonly #attachment: DiskAttachment;
  readonly #schedule: DurabilitySchedule;
  #shape: AcceptorShape | null = null;
  #pending: PendingWrite[] = [];
  #latest: Promise<void> = Promise.resolve();
  #crashed = false;
  #closing: Promise<void> | null = null;

  constructor(disk: MemoryAcceptorDisk, options?: MemoryStorageOptions) {
    this.#disk = disk;
    this.#schedule = options?.schedule ?? queueMicrotask;
    this.#attachment = attach(disk, () => {
      this.#crashed = true;
      this.#pending = [];
    });
  }

  async load(): Promise<AcceptorState> {
    if (this.#crashed) return never();
    this.#checkOpen();
    const state = this.#disk.durableState();
    this.#shape = new AcceptorShape(state.promised, state.truncated);
    return state;
  }

  async write(write: AcceptorWrite): Promise<void> {
    if (this.#crashed) return never();
    this.#checkOpen();
    if (this.#shape === null)
      throw new QuorateError(ErrorCode.Invariant, "load() must complete before the first write");
    this.#shape.accept(write);
    const accepted = copyWrite(write);
    this.#latest = new Promise((resolve) => {
      const pending = { write: accepted, resolve };
      this.#pending.push(pending);
      this.#schedule(() => this.#makeDurableThrough(pending));
    });
    return this.#latest;
  }

  close(): Promise<void> {
    if (this.#crashed) return Promise.resolve();
    this.#closing ??= this.#latest.then(() => this.#attachment.detach());
    return this.#closing;
  }

  #makeDurableThrough(target: PendingWrite): void {
    if (this.#crashed) return;
    const position = this.#pending.indexOf(target);
    if (position < 0) return;
    const durable = this.#pending.splice(0, position + 1);
    for (const { write } of durable) this.#attachment.apply(write);
    for (const { resolve } of durable) resolve();
  }

  #checkOpen(): void {
    if (this.#closing !== null) throw new QuorateError(ErrorCode.Closed, "memory acceptor storage is closed");
  }
}

/** A MemoryAcceptorStorage over a fresh disk. */
export function createMemoryAcceptorStorage(options?: MemoryStorageOptions): MemoryAcceptorStorage {
  return new MemoryAcceptorStorage(new MemoryAcceptorDisk(), options);
}

function never(): Promise<never> {
  return new Promise(() => undefined);
}

function copyAcceptance(a: PaxosAcceptance): PaxosAcceptance {
  return {
    slot: a.slot,
    ballot: [a.ballot[0], a.ballot[1]],
    value: { kind: a.value.kind, data: copyBytes(a.value.data), origin: a.value.origin, seq: a.value.seq },
  };
}

function copyWrite(write: AcceptorWrite): AcceptorWrite {
  const copy: AcceptorWrite = {};
  if (write.promised !== undefined) copy.promised = [write.promised[0], write.promised[1]];
  if (write.truncateThrough !== undefined) copy.truncateThrough = write.truncateThrough;
  if (write.accepted !== undefined) copy.accepted = write.accepted.map(copyAcceptance);
  return copy;
}
