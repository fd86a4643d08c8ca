/**
 * Seeded pseudo-random numbers for protocol logic. The whole generator state is one uint32,
 * so it can live in actor context and every draw is a pure function of it (splitmix32).
 */
export type PrngState = number;

export function seedPrng(seed: number | string): PrngState {
  if (typeof seed === "number") return seed >>> 0;
  // FNV-1a over the string, so a member id can seed its own stream.
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Returns a float in [0, 1) and the next state. */
export function nextFloat(state: PrngState): [number, PrngState] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z = (z ^ (z >>> 16)) >>> 0;
  return [z / 0x100000000, next];
}

/** Returns an integer in [lo, hi] (inclusive) and the next state. */
export function nextInt(state: PrngState, lo: number, hi: number): [number, PrngState] {
  const [f, next] = nextFloat(state);
  return [lo + Math.floor(f * (hi - lo + 1)), next];
}

/** A mutable wrapper for hosts and simulators that do not keep the state in a context. */
export class Prng {
  #state: PrngState;
  constructor(seed: number | string) {
    this.#state = seedPrng(seed);
  }
  get state(): PrngState {
    return this.#state;
  }
  float(): number {
    const [f, s] = nextFloat(this.#state);
    this.#state = s;
    return f;
  }
  int(lo: number, hi: number): number {
    const [n, s] = nextInt(this.#state, lo, hi);
    this.#state = s;
    return n;
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(0, items.length - 1)] as T;
  }
}
