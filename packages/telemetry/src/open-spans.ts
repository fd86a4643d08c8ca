/** The default bound on spans waiting for something that may never come. */
export const MAX_OPEN_SPANS = 1024;

/**
 * Spans, or the records that hold them, waiting for something that may never come: a reply
 * after a crash, an apply after a leader change. Bounded, as every queue is: past `limit`
 * the oldest is evicted and handed to `evicted`, which ends it as given up on.
 */
export class OpenSpans<K, V> {
  readonly #open = new Map<K, V>();

  constructor(
    private readonly evicted: (value: V, key: K) => void,
    readonly limit: number = MAX_OPEN_SPANS,
  ) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`open span limit must be ≥ 1 (got ${limit})`);
  }

  get size(): number {
    return this.#open.size;
  }

  get(key: K): V | undefined {
    return this.#open.get(key);
  }

  has(key: K): boolean {
    return this.#open.has(key);
  }

  /** Holds `value` under `key` (replacing what was there, which the caller has dealt with). */
  set(key: K, value: V): void {
    this.#open.delete(key);
    this.#open.set(key, value);
    if (this.#open.size <= this.limit) return;
    const [oldest] = this.#open;
    if (oldest === undefined) return;
    this.#open.delete(oldest[0]);
    this.evicted(oldest[1], oldest[0]);
  }

  /** Removes and returns what waits under `key`. */
  take(key: K): V | undefined {
    const value = this.#open.get(key);
    if (value !== undefined) this.#open.delete(key);
    return value;
  }

  /** Removes everything, oldest first, for the caller to end. */
  drain(): [K, V][] {
    const entries = [...this.#open];
    this.#open.clear();
    return entries;
  }

  entries(): IterableIterator<[K, V]> {
    return this.#open.entries();
  }
}
