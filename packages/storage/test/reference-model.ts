import { EntryKind } from "@quorate/core";
import fc from "fast-check";
import type { RaftState, RaftWrite, StoredEntry } from "../src/index.js";

export function emptyState(): RaftState {
  return { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] };
}

export function entry(index: number, term: number, data: Uint8Array = bytesOf(`${index}@${term}`)): StoredEntry {
  return { index, term, kind: EntryKind.Command, data };
}

/** Entries `from..to` of one term. */
export function entries(from: number, to: number, term: number): StoredEntry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));
}

export function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** The durable state as plainly as it can be said: the semantics both implementations must match. */
export class ReferenceModel {
  state: RaftState = emptyState();

  get lastIndex(): number {
    return this.state.entries.at(-1)?.index ?? this.state.snapshot?.index ?? 0;
  }

  termAt(index: number): number {
    if (index === (this.state.snapshot?.index ?? 0)) return this.state.snapshot?.term ?? 0;
    return this.state.entries.find((e) => e.index === index)?.term ?? 0;
  }

  apply(write: RaftWrite): void {
    const { state } = this;
    if (write.truncateFrom !== undefined) {
      const from = write.truncateFrom;
      state.entries = state.entries.filter((e) => e.index < from);
    }
    if (write.snapshot !== undefined) {
      const snapshot = write.snapshot;
      state.snapshot = { ...snapshot, config: snapshot.config.slice(), data: snapshot.data.slice() };
      state.entries = state.entries.filter((e) => e.index > snapshot.index);
    }
    for (const e of write.entries ?? []) state.entries.push({ ...e, data: e.data.slice() });
    if (write.hardState !== undefined) state.hardState = { ...write.hardState };
  }
}

/** An operation in terms of the state it meets, so that every generated sequence is valid. */
export type Operation =
  | { type: "append"; payloads: Uint8Array[]; kinds: EntryKind[]; newTerm: boolean }
  | { type: "truncate"; cut: number; payloads: Uint8Array[] }
  | { type: "hardState"; termBump: number; vote: string | null; commitAdvance: number }
  | { type: "snapshot"; back: number; ahead: number; data: Uint8Array }
  | { type: "compact" };

const payloads = fc.array(fc.uint8Array({ maxLength: 12 }), { minLength: 1, maxLength: 6 });
const kind = fc.constantFrom<EntryKind>(EntryKind.Command, EntryKind.Noop, EntryKind.Config);

export const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ type: fc.constant("append"), payloads, kinds: fc.array(kind), newTerm: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("truncate"), cut: fc.nat(6), payloads }) },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("hardState"),
      termBump: fc.nat(2),
      vote: fc.constantFrom(null, "a", "b", "c"),
      commitAdvance: fc.nat(4),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("snapshot"),
      back: fc.nat(4),
      ahead: fc.nat(3),
      data: fc.uint8Array({ maxLength: 16 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("compact") }) },
);

/**
 * Turns an operation into a valid write for the model's current state (or a compaction), or
 * null when the state admits none (e.g. nothing to truncate).
 */
export function toWrite(model: ReferenceModel, op: Operation): RaftWrite | { compact: number } | null {
  const { hardState, snapshot } = model.state;
  const last = model.lastIndex;
  const snapshotIndex = snapshot?.index ?? 0;
  const makeEntries = (from: number, term: number, data: Uint8Array[], kinds: EntryKind[] = []) =>
    data.map((d, i) => ({ index: from + i, term, kind: kinds[i] ?? EntryKind.Command, data: d }));
  switch (op.type) {
    case "append": {
      const term = op.newTerm ? hardState.term + 1 : Math.max(hardState.term, 1);
      const next = { term, vote: op.newTerm ? null : hardState.vote, commit: hardState.commit };
      return { hardState: next, entries: makeEntries(last + 1, term, op.payloads, op.kinds) };
    }
    case "truncate": {
      const floor = Math.max(hardState.commit, snapshotIndex);
      const truncateFrom = Math.max(floor + 1, last + 1 - op.cut);
      // A conflicting suffix comes from a newer leader, so the term moves on.
      const term = hardState.term + 1;
      return {
        hardState: { term, vote: "a", commit: hardState.commit },
        truncateFrom,
        entries: makeEntries(truncateFrom, term, op.payloads),
      };
    }
    case "hardState": {
      const term = hardState.term + op.termBump;
      const vote = op.termBump > 0 || hardState.vote === null ? op.vote : hardState.vote;
      return { hardState: { term, vote, commit: Math.min(last, hardState.commit + op.commitAdvance) } };
    }
    case "snapshot": {
      const index = op.ahead > 0 ? last + op.ahead : last - op.back;
      if (index <= snapshotIndex) return null;
      // A snapshot past the log's end comes from the current leader; one inside it must match it.
      const term = op.ahead > 0 ? hardState.term : model.termAt(index);
      return { snapshot: { index, term, config: bytesOf(`config@${index}`), data: op.data } };
    }
    case "compact":
      return { compact: snapshotIndex };
  }
}
