import { ErrorCode, NO_BALLOT, type PaxosAcceptance, type PaxosBallot, QuorateError } from "@quorate/core";
import { AcceptorShape } from "./acceptor-shape.js";
import type { AcceptorState, AcceptorWrite } from "./acceptor-types.js";
import { copyBytes } from "./bytes.js";
import { DiskTenancy, DurabilityQueue, type MemoryStorageOptions, never } from "./memory-durability.js";

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
  readonly #tenancy = new DiskTenancy("memory acceptor disk is in use; close() it or crash() the disk first");

  static {
    attach = (disk, onCrash) => disk.#attach(onCrash);
  }

  /**
   * Simulates a crash: the attached storage loses every write not yet durable and is dead
   * (its promises never settle). A new MemoryAcceptorStorage then loads only what was durable.
   */
  crash(): void {
    this.#tenancy.crash();
  }

  /** A copy of what is durable now, for checkers; needs no attached storage. */
  durableState(): AcceptorState {
    const accepted = [...this.#accepted.values()].sort((a, b) => a.slot - b.slot).map(copyAcceptance);
    return { promised: this.#promised, truncated: this.#truncated, accepted };
  }

  #attach(onCrash: () => void): DiskAttachment {
    const detach = this.#tenancy.attach(onCrash);
    return { apply: (write) => this.#apply(write), detach };
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

/**
 * An acceptor's storage (@quorate/paxos's AcceptorStorage) over a MemoryAcceptorDisk with crash semantics, for tests and the simulator,
 * the acceptor's counterpart of MemoryRaftStorage: a write is pending until the schedule calls
 * back, then durable together with every earlier pending write, in call order.
 */
export class MemoryAcceptorStorage {
  readonly #disk: MemoryAcceptorDisk;
  readonly #attachment: DiskAttachment;
  readonly #queue: DurabilityQueue<AcceptorWrite>;
  #shape: AcceptorShape | null = null;

  constructor(disk: MemoryAcceptorDisk, options?: MemoryStorageOptions) {
    this.#disk = disk;
    this.#queue = new DurabilityQueue(
      options?.schedule ?? queueMicrotask,
      (write) => this.#attachment.apply(write),
      "memory acceptor storage",
    );
    this.#attachment = attach(disk, () => this.#queue.crash());
  }

  async load(): Promise<AcceptorState> {
    if (this.#queue.crashed) return never();
    this.#queue.checkOpen();
    const state = this.#disk.durableState();
    this.#shape = new AcceptorShape(state.promised, state.truncated);
    return state;
  }

  async write(write: AcceptorWrite): Promise<void> {
    if (this.#queue.crashed) return never();
    this.#queue.checkOpen();
    if (this.#shape === null)
      throw new QuorateError(ErrorCode.Invariant, "load() must complete before the first write");
    this.#shape.accept(write);
    return this.#queue.enqueue(copyWrite(write));
  }

  close(): Promise<void> {
    return this.#queue.close(() => this.#attachment.detach());
  }
}

/** A MemoryAcceptorStorage over a fresh disk. */
export function createMemoryAcceptorStorage(options?: MemoryStorageOptions): MemoryAcceptorStorage {
  return new MemoryAcceptorStorage(new MemoryAcceptorDisk(), options);
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
