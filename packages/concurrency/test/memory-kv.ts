import type { ConcurrencyKv } from "@quorate/concurrency";
import { ErrorCode, QuorateError } from "@quorate/core";
import {
  decodeKvResult,
  encodeKvCommand,
  type KvAnyCommand,
  type KvChange,
  type KvEvent,
  type KvResultValue,
  KvStateMachine,
} from "@quorate/kv";
import type { KvKeyEntry, KvWatchTarget } from "@quorate/kv/nats";

/**
 * The KV client API over one in-process KvStateMachine, applied in call order (a single replica
 * with a log of its own): Mutex and Election run on the real state machine's revisions, leases
 * and changes, without NATS. Each call yields to the event loop first, so concurrent callers
 * interleave as they would over a network. Time enters only through `tick`.
 */
export class MemoryKv implements ConcurrencyKv {
  readonly store = new KvStateMachine();
  /** What each watch call followed: a key, or `prefix:<p>`. */
  readonly watched: string[] = [];
  #index = 0;

  async #run(command: KvAnyCommand): Promise<KvResultValue> {
    await new Promise((r) => setImmediate(r));
    this.#index += 1;
    const result = decodeKvResult(this.store.apply(encodeKvCommand(command), this.#index));
    if (result === null) throw new Error("undecodable result");
    if (!result.ok) throw new QuorateError(result.code, result.message);
    return result.value;
  }

  /** Advances the lease clock by `elapsedMs`, as the leader's tick would. */
  async tick(elapsedMs: number): Promise<void> {
    await this.#run({ op: "tick", by: "memory", term: 1, elapsedMs });
  }

  async grant(ttlMs: number): Promise<number> {
    return (await this.#run({ op: "grant", ttlMs })) as number;
  }

  async revoke(lease: number): Promise<boolean> {
    return (await this.#run({ op: "revoke", lease })) as boolean;
  }

  create: ConcurrencyKv["create"] = async (key, value, options = {}) =>
    (await this.#run({ op: "create", key, value, ...options })) as number | null;

  update: ConcurrencyKv["update"] = async (key, value, revision, options = {}) =>
    (await this.#run({ op: "update", key, value, revision, ...options })) as number | null;

  delete: ConcurrencyKv["delete"] = async (key, options = {}) =>
    (await this.#run({ op: "delete", key, ...options })) as boolean;

  txn: ConcurrencyKv["txn"] = async (txn) =>
    (await this.#run({ op: "txn", compare: txn.compare, success: txn.success, failure: txn.failure ?? [] })) as {
      succeeded: boolean;
      revision: number;
    };

  entry: ConcurrencyKv["entry"] = async (key) => {
    await new Promise((r) => setImmediate(r));
    return this.store.entry(key);
  };

  list: ConcurrencyKv["list"] = async (prefix, options = {}) => {
    await new Promise((r) => setImmediate(r));
    const items: KvKeyEntry[] = [];
    const limit = options.limit ?? 1000;
    for (const [key, entry] of this.store.range(prefix, options.fromKey)) {
      if (items.length === limit) return { items, next: key };
      items.push({ key, ...entry });
    }
    return { items, next: null };
  };

  watch: ConcurrencyKv["watch"] = (target: KvWatchTarget, options = {}) => {
    this.watched.push("key" in target ? target.key : `prefix:${target.prefix}`);
    const matches =
      "key" in target ? (e: KvEvent) => e.key === target.key : (e: KvEvent) => e.key.startsWith(target.prefix);
    const queue: KvEvent[] = [];
    let wake: (() => void) | null = null;
    let stopped = false;
    const take = (change: KvChange) => {
      for (const event of change.events) if (matches(event)) queue.push(event);
      wake?.();
    };
    const from = options.fromRevision ?? this.store.revision + 1;
    const replay = this.store.changesAfter(from - 1);
    if (replay === null) throw new QuorateError(ErrorCode.Compacted, `revision ${from} was compacted`);
    for (const change of replay) take(change);
    const unsubscribe = this.store.onChange(take);
    const iterator: ReturnType<ConcurrencyKv["watch"]> = {
      async next(): Promise<IteratorResult<KvEvent, void>> {
        for (;;) {
          if (stopped) return { done: true, value: undefined };
          const event = queue.shift();
          if (event !== undefined) return { done: false, value: event };
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = null;
        }
      },
      async return(): Promise<IteratorResult<KvEvent, void>> {
        stopped = true;
        unsubscribe();
        wake?.();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  };
}
