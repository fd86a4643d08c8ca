import type { NodeId, PaxosValue } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { PaxosAccept } from "./messages.js";

interface SlotProposal {
  readonly value: PaxosValue;
  chosen: boolean;
  /** The phase-2 batch driving it, while one is; null while queued for the next batch, or decided. */
  batch: string | null;
}

/**
 * What the active proposer proposed, owned by the host and referenced by the machine: values
 * never pass through context copies. Entries stay until truncation, so a learner that missed
 * a decision can ask for it to be driven again.
 */
export class ProposerSlots {
  readonly #slots = new Map<number, SlotProposal>();
  /** "origin seq" of every request held, so a retransmitted request gets no second slot. */
  readonly #requests = new Map<string, number>();
  /** Phase-2 batches in flight (the commander drives them) and their slots. */
  readonly #batches = new Map<string, readonly number[]>();
  /** Slots given to requests and not yet to a batch, ascending: the next phase-2 batch. */
  #queued: number[] = [];
  #undecided = 0;

  get(slot: number): Readonly<SlotProposal> | undefined {
    return this.#slots.get(slot);
  }

  get undecided(): number {
    return this.#undecided;
  }

  /** Slots waiting for the next batch. */
  get queued(): number {
    return this.#queued.length;
  }

  /** Phase-2 batches in flight. */
  get inflight(): number {
    return this.#batches.size;
  }

  hasRequest(origin: NodeId, seq: number): boolean {
    return this.#requests.has(requestKey(origin, seq));
  }

  propose(slot: number, value: PaxosValue, batch: string): void {
    const existing = this.#slots.get(slot);
    if (existing !== undefined && !existing.chosen) this.#undecided--;
    this.#slots.set(slot, { value, chosen: existing?.chosen ?? false, batch });
    if (!existing?.chosen) this.#undecided++;
    if (value.origin !== "") this.#requests.set(requestKey(value.origin, value.seq), slot);
  }

  /** A request took a fresh slot; it leaves with the next batch. */
  queue(slot: number, value: PaxosValue): void {
    invariant(!this.#slots.has(slot), `slot ${slot} queued while it holds a proposal`);
    invariant(
      this.#queued.length === 0 || slot > (this.#queued.at(-1) as number),
      `slot ${slot} queued after slot ${this.#queued.at(-1)}`,
    );
    this.#slots.set(slot, { value, chosen: false, batch: null });
    this.#undecided++;
    if (value.origin !== "") this.#requests.set(requestKey(value.origin, value.seq), slot);
    this.#queued.push(slot);
  }

  /** Every queued slot with its value, for the next batch; the queue empties. */
  takeQueued(): PaxosAccept["proposals"] {
    const proposals: PaxosAccept["proposals"] = [];
    for (const slot of this.#queued) {
      const entry = this.#slots.get(slot);
      // Pruned (truncated) while queued: decided elsewhere, nothing to propose.
      if (entry !== undefined) proposals.push({ slot, value: entry.value });
    }
    this.#queued = [];
    return proposals;
  }

  addBatch(id: string, slots: readonly number[]): void {
    this.#batches.set(id, slots);
  }

  /** A phase-2 quorum voted for every slot of the batch: they are chosen. */
  decided(batch: string): readonly number[] {
    const slots = this.#batches.get(batch) ?? [];
    this.#batches.delete(batch);
    for (const slot of slots) {
      const entry = this.#slots.get(slot);
      if (entry === undefined) continue;
      if (!entry.chosen) this.#undecided--;
      entry.chosen = true;
      if (entry.batch === batch) entry.batch = null;
    }
    return slots;
  }

  /** Forgets slots at or below `through`: truncated, so decided and never needed again. */
  prune(through: number): void {
    for (const [slot, entry] of this.#slots) {
      if (slot > through) continue;
      if (!entry.chosen) this.#undecided--;
      if (entry.value.origin !== "") this.#requests.delete(requestKey(entry.value.origin, entry.value.seq));
      this.#slots.delete(slot);
    }
  }

  clear(): void {
    this.#queued = [];
    this.#slots.clear();
    this.#requests.clear();
    this.#batches.clear();
    this.#undecided = 0;
  }
}

function requestKey(origin: NodeId, seq: number): string {
  return `${origin} ${seq}`;
}
