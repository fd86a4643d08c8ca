import type { NodeId, PaxosValue } from "@quorate/core";

interface SlotProposal {
  readonly value: PaxosValue;
  chosen: boolean;
  /** The commander driving it, while one is. */
  commander: string | null;
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
  readonly #commanders = new Map<string, readonly number[]>();
  #undecided = 0;

  get(slot: number): Readonly<SlotProposal> | undefined {
    return this.#slots.get(slot);
  }

  get undecided(): number {
    return this.#undecided;
  }

  hasRequest(origin: NodeId, seq: number): boolean {
    return this.#requests.has(requestKey(origin, seq));
  }

  propose(slot: number, value: PaxosValue, commander: string): void {
    const existing = this.#slots.get(slot);
    if (existing !== undefined && !existing.chosen) this.#undecided--;
    this.#slots.set(slot, { value, chosen: existing?.chosen ?? false, commander });
    if (!existing?.chosen) this.#undecided++;
    if (value.origin !== "") this.#requests.set(requestKey(value.origin, value.seq), slot);
  }

  addCommander(id: string, slots: readonly number[]): void {
    this.#commanders.set(id, slots);
  }

  /** The commander finished: its slots are chosen. */
  decided(commander: string): readonly number[] {
    const slots = this.#commanders.get(commander) ?? [];
    this.#commanders.delete(commander);
    for (const slot of slots) {
      const entry = this.#slots.get(slot);
      if (entry === undefined) continue;
      if (!entry.chosen) this.#undecided--;
      entry.chosen = true;
      if (entry.commander === commander) entry.commander = null;
    }
    return slots;
  }

  commanders(): IterableIterator<string> {
    return this.#commanders.keys();
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
    this.#slots.clear();
    this.#requests.clear();
    this.#commanders.clear();
    this.#undecided = 0;
  }
}

function requestKey(origin: NodeId, seq: number): string {
  return `${origin} ${seq}`;
}
