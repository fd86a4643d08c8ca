/**
 * Gives each distinct item a small integer id, the same one every time it comes back, so the
 * models compare and memoise states, stores and values as numbers. An item's identity is the
 * key its caller derives from it.
 */
export class Interner<T> {
  readonly #ids = new Map<string, number>();
  readonly #items: T[] = [];

  /** The id of `item`, whose identity is `key`: a new id the first time, the same one after. */
  intern(key: string, item: T): number {
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#items.length;
      this.#items.push(item);
      this.#ids.set(key, id);
    }
    return id;
  }

  /** The item that `id` was given to. */
  item(id: number): T {
    if (id < 0 || id >= this.#items.length)
      throw new RangeError(`no item has id ${id} (${this.#items.length} interned)`);
    return this.#items[id] as T;
  }
}
