/**
 * Kinds of Raft log entry. The one piece of Raft's log format that stays in core: storage persists
 * and checks the kind of every entry, and storage sits below @quorate/raft (raft depends on it),
 * so the kinds cannot live in raft with the rest of its wire format.
 */
export const EntryKind = {
  /** A command for the state machine. */
  Command: 0,
  /** The no-op a new leader appends so that entries of earlier terms commit (Raft §5.4.2). */
  Noop: 1,
  /** A membership configuration. */
  Config: 2,
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

export const isEntryKind = (v: unknown): v is EntryKind => v === 0 || v === 1 || v === 2;
