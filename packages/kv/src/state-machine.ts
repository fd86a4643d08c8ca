import {
  arrayOf,
  ErrorCode,
  invariant,
  literal,
  object,
  packValue,
  QuorateError,
  type StateMachine,
  uint,
  unpackValue,
} from "@quorate/core";
import {
  type KvCommand,
  type KvCompare,
  type KvEntry,
  type KvResult,
  type KvResultValue,
  type KvRevisionCommand,
  type KvTxnOp,
  type KvValue,
  kvCommand,
  kvKey,
  kvValue,
} from "./commands.js";

/** Version 1 held `[key, value]` pairs; version 2 adds the revisions. Both restore. */
const SNAPSHOT_VERSION = 2;

export const DEFAULT_WATCH_WINDOW = 4096;

const snapshotV1 = object({
  version: literal(1),
  entries: arrayOf(
    (v: unknown): v is [string, KvValue] => Array.isArray(v) && v.length === 2 && kvKey(v[0]) && kvValue(v[1]),
    Number.MAX_SAFE_INTEGER,
  ),
});

/** `[key, value, createRevision, revision, version]`. */
type SnapshotEntry = [string, KvValue, number, number, number];

const snapshotV2 = object({
  version: literal(SNAPSHOT_VERSION),
  revision: uint,
  entries: arrayOf(
    (v: unknown): v is SnapshotEntry =>
      Array.isArray(v) && v.length === 5 && kvKey(v[0]) && kvValue(v[1]) && uint(v[2]) && uint(v[3]) && uint(v[4]),
    Number.MAX_SAFE_INTEGER,
  ),
});

/** One change of one key, as watchers see it. A delete carries `value: null`. */
export interface KvEvent {
  readonly op: "put" | "delete";
  readonly key: string;
  readonly value: KvValue | null;
  readonly revision: number;
}

/**
 * The events of one applied write command, all at one revision. `previous` is the store's
 * revision before it: a watcher that saw everything through `previous` and then this change has
 * seen everything through `revision`, which is how it notices a change it missed.
 */
export interface KvChange {
  readonly previous: number;
  readonly revision: number;
  readonly events: readonly KvEvent[];
}

export interface KvStateMachineOptions {
  /** How many recent events this member keeps for watchers to catch up from. Default 4096. */
  readonly watchWindow?: number;
}

function rejected(message: string): Uint8Array {
  const result: KvResult = { ok: false, code: ErrorCode.Rejected, message };
  return packValue(result);
}

function sameValue(a: KvValue, b: KvValue): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return Buffer.compare(a, b) === 0;
}

/** The index of the first key in `sorted` that is not below `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The replicated key-value map, with revisions. Commands are encoded with `encodeKvCommand`,
 * results are KvResults. Deterministic, and never throws on a bad command: it returns a Rejected
 * result, because a throw would stop every replica at the same log entry.
 *
 * Besides the replicated state it keeps, locally, a bounded window of recent changes for
 * watchers (not replicated, not in snapshots: every member fills its own as it applies).
 */
export class KvStateMachine implements StateMachine {
  #entries = new Map<string, KvEntry>();
  /** The keys of #entries in code-unit order, for ranges. */
  #sorted: string[] = [];
  /** The revision of the last write applied; 0 before any. */
  #revision = 0;
  readonly #watchWindow: number;
  /** Recent changes from #windowHead on, in revision order, holding at most #watchWindow events. */
  #window: KvChange[] = [];
  #windowHead = 0;
  #windowEvents = 0;
  /** Every change after this revision is in the window. */
  #compactedThrough = 0;
  readonly #listeners = new Set<(change: KvChange) => void>();

  constructor(options: KvStateMachineOptions = {}) {
    const watchWindow = options.watchWindow ?? DEFAULT_WATCH_WINDOW;
    if (!Number.isSafeInteger(watchWindow) || watchWindow < 1) {
      throw new QuorateError(ErrorCode.Config, `watchWindow must be a positive integer (got ${watchWindow})`);
    }
    this.#watchWindow = watchWindow;
  }

  apply(command: Uint8Array, index: number): Uint8Array {
    let raw: unknown;
    try {
      raw = unpackValue(command);
    } catch {
      return rejected("undecodable KV command");
    }
    if (!kvCommand(raw)) return rejected("invalid KV command");
    invariant(index > this.#revision, `KV command applied at index ${index}, not above revision ${this.#revision}`);
    const events: KvEvent[] = [];
    const result: KvResult = { ok: true, value: this.#execute(raw, index, events) };
    if (events.length > 0) this.#record({ previous: this.#revision, revision: index, events });
    return packValue(result);
  }

  /**
   * The value stored under `key`, or null. Linearizable only after the consensus node's
   * readBarrier() resolved. The bytes returned are the stored ones: do not modify them.
   */
  read(key: string): KvValue | null {
    return this.#entries.get(key)?.value ?? null;
  }

  /** The value and revisions of `key`, or null. Linearizable after a read barrier, as `read`. */
  entry(key: string): KvEntry | null {
    return this.#entries.get(key) ?? null;
  }

  /** The keys starting with `prefix`, from `fromKey` on (inclusive), in code-unit order. */
  *range(prefix: string, fromKey = ""): Generator<[string, KvEntry]> {
    const sorted = this.#sorted;
    for (let i = lowerBound(sorted, fromKey > prefix ? fromKey : prefix); i < sorted.length; i++) {
      const key = sorted[i] as string;
      if (!key.startsWith(prefix)) return;
      yield [key, this.#entries.get(key) as KvEntry];
    }
  }

  /** The revision of the last write applied (0 before any). */
  get revision(): number {
    return this.#revision;
  }

  /** Number of keys stored. */
  get size(): number {
    return this.#entries.size;
  }

  /** The lowest revision a watch may start from here: every change from it on is in the window. */
  get oldestWatchableRevision(): number {
    return this.#compactedThrough + 1;
  }

  /** The changes above `afterRevision` in the window, oldest first; null if some were dropped. */
  changesAfter(afterRevision: number): readonly KvChange[] | null {
    if (afterRevision < this.#compactedThrough) return null;
    const window = this.#window;
    let i = this.#windowHead;
    // Binary search: the window is in revision order.
    let hi = window.length;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if ((window[mid] as KvChange).revision <= afterRevision) i = mid + 1;
      else hi = mid;
    }
    return window.slice(i);
  }

  /** Calls `listener` with every change applied from now on, in order. Returns the unsubscribe. */
  onChange(listener: (change: KvChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  snapshot(): Uint8Array {
    // Sorted by key, so replicas with the same contents produce the same bytes whatever the
    // history of insertions (and restores) behind them.
    const entries: SnapshotEntry[] = this.#sorted.map((key) => {
      const e = this.#entries.get(key) as KvEntry;
      return [key, e.value, e.createRevision, e.revision, e.version];
    });
    return packValue({ version: SNAPSHOT_VERSION, revision: this.#revision, entries });
  }

  restore(snapshot: Uint8Array): void {
    let raw: unknown;
    try {
      raw = unpackValue(snapshot);
    } catch (cause) {
      throw new QuorateError(ErrorCode.Storage, "undecodable KV snapshot", { cause });
    }
    const entries = new Map<string, KvEntry>();
    let revision: number;
    if (snapshotV2(raw)) {
      revision = raw.revision;
      for (const [key, value, createRevision, modRevision, version] of raw.entries) {
        entries.set(key, { value, revision: modRevision, createRevision, version });
      }
    } else if (snapshotV1(raw)) {
      // Version 1 kept no history: its keys restore at revision 0, version 1.
      revision = 0;
      for (const [key, value] of raw.entries) entries.set(key, { value, revision: 0, createRevision: 0, version: 1 });
    } else {
      throw new QuorateError(ErrorCode.Storage, "malformed KV snapshot");
    }
    this.#entries = entries;
    this.#sorted = [...entries.keys()].sort();
    this.#revision = revision;
    // The changes up to the snapshot are not known here: watchers must start after it.
    this.#window = [];
    this.#windowHead = 0;
    this.#windowEvents = 0;
    this.#compactedThrough = revision;
  }

  #execute(command: KvCommand | KvRevisionCommand, index: number, events: KvEvent[]): KvResultValue {
    switch (command.op) {
      case "get":
        return this.read(command.key);
      case "put":
        this.#put(command.key, command.value, index, events);
        return index;
      case "delete": {
        const current = this.#entries.get(command.key);
        if (current === undefined) return false;
        if (command.revision !== undefined && command.revision !== null && current.revision !== command.revision) {
          return false;
        }
        this.#delete(command.key, index, events);
        return true;
      }
      case "cas": {
        const current = this.#entries.get(command.key);
        const matches =
          command.expected === null
            ? current === undefined
            : current !== undefined && sameValue(current.value, command.expected);
        if (matches) this.#put(command.key, command.value, index, events);
        return matches;
      }
      case "create":
        if (this.#entries.has(command.key)) return null;
        this.#put(command.key, command.value, index, events);
        return index;
      case "update":
        if (this.#entries.get(command.key)?.revision !== command.revision) return null;
        this.#put(command.key, command.value, index, events);
        return index;
      case "txn": {
        const succeeded = command.compare.every((c) => this.#holds(c));
        for (const op of succeeded ? command.success : (command.failure ?? [])) this.#txnWrite(op, index, events);
        return { succeeded, revision: events.length > 0 ? index : this.#revision };
      }
    }
  }

  #holds(compare: KvCompare): boolean {
    const current = this.#entries.get(compare.key);
    if ("absent" in compare) return current === undefined;
    if (current === undefined) return false;
    if ("revision" in compare) return current.revision === compare.revision;
    return sameValue(current.value, compare.value);
  }

  #txnWrite(op: KvTxnOp, index: number, events: KvEvent[]): void {
    if (op.op === "put") this.#put(op.key, op.value, index, events);
    else if (this.#entries.has(op.key)) this.#delete(op.key, index, events);
  }

  #put(key: string, value: KvValue, revision: number, events: KvEvent[]): void {
    const current = this.#entries.get(key);
    if (current === undefined) {
      this.#sorted.splice(lowerBound(this.#sorted, key), 0, key);
      this.#entries.set(key, { value, revision, createRevision: revision, version: 1 });
    } else {
      this.#entries.set(key, { value, revision, createRevision: current.createRevision, version: current.version + 1 });
    }
    events.push({ op: "put", key, value, revision });
  }

  #delete(key: string, revision: number, events: KvEvent[]): void {
    this.#entries.delete(key);
    const at = lowerBound(this.#sorted, key);
    invariant(this.#sorted[at] === key, `deleted key '${key}' is missing from the sorted keys`);
    this.#sorted.splice(at, 1);
    events.push({ op: "delete", key, value: null, revision });
  }

  #record(change: KvChange): void {
    this.#revision = change.revision;
    this.#window.push(change);
    this.#windowEvents += change.events.length;
    while (this.#windowEvents > this.#watchWindow && this.#windowHead < this.#window.length - 1) {
      const dropped = this.#window[this.#windowHead++] as KvChange;
      this.#windowEvents -= dropped.events.length;
      this.#compactedThrough = dropped.revision;
    }
    if (this.#windowHead > 1024 && this.#windowHead * 2 > this.#window.length) {
      this.#window = this.#window.slice(this.#windowHead);
      this.#windowHead = 0;
    }
    for (const listener of this.#listeners) listener(change);
  }
}
