import {
  arrayOf,
  ErrorCode,
  literal,
  object,
  packValue,
  QuorateError,
  type StateMachine,
  unpackValue,
} from "@quorate/core";
import {
  type KvCommand,
  type KvResult,
  type KvResultValue,
  type KvValue,
  kvCommand,
  kvKey,
  kvValue,
} from "./commands.js";

const SNAPSHOT_VERSION = 1;

const kvSnapshot = object({
  version: literal(SNAPSHOT_VERSION),
  entries: arrayOf(
    (v: unknown): v is [string, KvValue] => Array.isArray(v) && v.length === 2 && kvKey(v[0]) && kvValue(v[1]),
    Number.MAX_SAFE_INTEGER,
  ),
});

function rejected(message: string): Uint8Array {
  const result: KvResult = { ok: false, code: ErrorCode.Rejected, message };
  return packValue(result);
}

function sameValue(a: KvValue, b: KvValue): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return Buffer.compare(a, b) === 0;
}

/**
 * The replicated key-value map. Commands are encoded with `encodeKvCommand`, results are
 * KvResults. Deterministic, and never throws on a bad command: it returns a Rejected result,
 * because a throw would stop every replica at the same log entry.
 */
export class KvStateMachine implements StateMachine {
  #entries = new Map<string, KvValue>();

  apply(command: Uint8Array, _index: number): Uint8Array {
    let raw: unknown;
    try {
      raw = unpackValue(command);
    } catch {
      return rejected("undecodable KV command");
    }
    if (!kvCommand(raw)) return rejected("invalid KV command");
    const result: KvResult = { ok: true, value: this.#execute(raw) };
    return packValue(result);
  }

  /**
   * The value stored under `key`, or null. Linearizable only after the consensus node's
   * readBarrier() resolved. The bytes returned are the stored ones: do not modify them.
   */
  read(key: string): KvValue | null {
    return this.#entries.get(key) ?? null;
  }

  /** Number of keys stored. */
  get size(): number {
    return this.#entries.size;
  }

  snapshot(): Uint8Array {
    // Sorted by key, so replicas with the same contents produce the same bytes whatever the
    // history of insertions (and restores) behind them.
    const entries = [...this.#entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return packValue({ version: SNAPSHOT_VERSION, entries });
  }

  restore(snapshot: Uint8Array): void {
    let raw: unknown;
    try {
      raw = unpackValue(snapshot);
    } catch (cause) {
      throw new QuorateError(ErrorCode.Storage, "undecodable KV snapshot", { cause });
    }
    if (!kvSnapshot(raw)) throw new QuorateError(ErrorCode.Storage, "malformed KV snapshot");
    this.#entries = new Map(raw.entries);
  }

  #execute(command: KvCommand): KvResultValue {
    switch (command.op) {
      case "get":
        return this.read(command.key);
      case "put":
        this.#entries.set(command.key, command.value);
        return null;
      case "delete":
        return this.#entries.delete(command.key);
      case "cas": {
        const current = this.#entries.get(command.key);
        const matches =
          command.expected === null
            ? current === undefined
            : current !== undefined && sameValue(current, command.expected);
        if (matches) this.#entries.set(command.key, command.value);
        return matches;
      }
    }
  }
}
