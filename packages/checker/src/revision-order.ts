import type { Operation } from "./operation.js";

/** Two operations whose revisions contradict each other or real time, on any keys. */
export interface RevisionOrderFailure {
  readonly reason: string;
  readonly operations: readonly [Operation, Operation];
}

/**
 * Where an operation sits in revision order, doubled so that one order serves writes and reads:
 * a write at revision r sits at 2r; a read that saw the key's state after revision r (and before
 * the key's next write) sits somewhere in [2r + 1, 2 * next - 1].
 */
interface Placement {
  readonly operation: Operation;
  readonly low: number;
  readonly high: number;
}

/** A write at a known revision, and the keys it surely wrote there. */
interface Write {
  readonly operation: Operation;
  readonly revision: number;
  readonly keys: readonly string[];
}

/**
 * The write a completed operation made at its known revision, else null. A transaction counts
 * only when its branch puts a key: a branch of deletes may have found nothing to delete, and then
 * its revision is the store's, another write's. Its deletes are left out of its keys for the
 * same reason.
 */
function writeOf(operation: Operation): Write | null {
  const { revision } = operation;
  if (operation.status !== "ok" || revision === null) return null;
  switch (operation.f) {
    case "get":
    case "entry":
    case "keys":
    case "list":
    case "keepAlive":
    case "revoke":
    case "tick":
      return null;
    case "grant":
      // A grant takes a revision of its own (its lease's id) and writes no key.
      return { operation, revision, keys: [] };
    case "txn": {
      if (operation.succeeded === null || operation.succeeded === undefined) return null;
      const branch = operation.succeeded ? operation.input.success : operation.input.failure;
      const keys = branch.filter((write) => "put" in write).map((write) => write.key);
      return keys.length === 0 ? null : { operation, revision, keys };
    }
    default:
      return operation.applied === false ? null : { operation, revision, keys: [operation.key] };
  }
}

/**
 * The revisions of a history checked across keys, which the per-key search cannot see: the store
 * has one revision counter, so the revision order is one total order of all writes, and a
 * linearization must follow it. Checks that no two writes recorded one revision, that an entry
 * never shows another key's write's revision, and that revisions respect real time: an operation
 * that completed before another was invoked sits no later in revision order. Sound (refuses only
 * histories no linearization explains) and incomplete: it sees only recorded revisions of writes
 * (transactions that put a key among them) and entries; ranges are left to the store model.
 *
 * Placing each operation at the highest low bound among itself and the operations that completed
 * before it was invoked satisfies every real-time constraint (real-time precedence is transitive),
 * so it suffices to compare that bound with each operation's high bound.
 */
export function checkRevisionOrder(operations: readonly Operation[]): RevisionOrderFailure | null {
  const writers = new Map<number, Write>();
  /** Per key, the known revisions of its writes, ascending. */
  const keyRevisions = new Map<string, number[]>();
  for (const operation of operations) {
    const write = writeOf(operation);
    if (write === null) continue;
    const { revision } = write;
    const other = writers.get(revision);
    if (other !== undefined) {
      return { reason: `two writes got revision ${revision}`, operations: [other.operation, operation] };
    }
    writers.set(revision, write);
    for (const key of write.keys) {
      const revisions = keyRevisions.get(key) ?? [];
      revisions.push(revision);
      keyRevisions.set(key, revisions);
    }
  }
  for (const revisions of keyRevisions.values()) revisions.sort((a, b) => a - b);

  const placements: Placement[] = [];
  for (const operation of operations) {
    const write = writeOf(operation);
    if (write !== null) {
      placements.push({ operation, low: 2 * write.revision, high: 2 * write.revision });
      continue;
    }
    if (operation.f !== "entry" || operation.status !== "ok" || operation.revision === null) continue;
    const read = operation.revision;
    const writer = writers.get(read);
    if (writer !== undefined && !writer.keys.includes(operation.key)) {
      return {
        reason: `an entry of ${operation.key} shows revision ${read}, written to another key`,
        operations: [writer.operation, operation],
      };
    }
    const next = (keyRevisions.get(operation.key) ?? []).find((revision) => revision > read);
    placements.push({
      operation,
      low: 2 * read + 1,
      high: next === undefined ? Number.POSITIVE_INFINITY : 2 * next - 1,
    });
  }

  const byReturn = [...placements].sort((a, b) => a.operation.return - b.operation.return);
  const byCall = [...placements].sort((a, b) => a.operation.call - b.operation.call);
  let completed = 0;
  let latest: Placement | null = null;
  for (const placement of byCall) {
    while (
      completed < byReturn.length &&
      (byReturn[completed] as Placement).operation.return < placement.operation.call
    ) {
      const done = byReturn[completed] as Placement;
      if (latest === null || done.low > latest.low) latest = done;
      completed++;
    }
    if (latest !== null && latest.low > placement.high) {
      return {
        reason: "an operation completed before another was invoked, yet comes later in revision order",
        operations: [latest.operation, placement.operation],
      };
    }
  }
  return null;
}
