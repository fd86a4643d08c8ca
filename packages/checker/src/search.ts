import { KeyModel } from "./model.js";
import type { Operation, Value } from "./operation.js";
import { RevisionKeyModel, usesRevisions } from "./revision-model.js";
import { isMultiKey, StoreModel, usesLeases } from "./store-model.js";

/** A key's model: states are small integers, 0 the initial one. */
interface Model {
  step(state: number, operation: number): number;
  valueOf(state: number): Value;
}

const initialState = 0;

export type SearchOutcome =
  | { readonly verdict: "linearizable" }
  | {
      readonly verdict: "not-linearizable";
      /** Indices of the operations of the deepest partial linearization, in order. */
      readonly linearized: readonly number[];
      /** Indices of the operations that could come next after it; each one failed. */
      readonly candidates: readonly number[];
      /** The key's value after `linearized`. */
      readonly value: Value;
    };

const none = -1;
const recordHeader = 3;
/** Small, because a history may have many keys with few operations each; the set doubles as needed. */
const initialVisitedCapacity = 64;

/**
 * Zobrist keys: the hash of a set of operations is the XOR of their keys, so adding or removing an
 * operation updates it in O(1). Mulberry32 with a fixed seed keeps runs deterministic.
 */
function zobristKeys(count: number): Int32Array {
  const keys = new Int32Array(count);
  let seed = 0x2545f491;
  for (let index = 0; index < count; index++) {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    keys[index] = t ^ (t >>> 14);
  }
  return keys;
}

/**
 * The configurations (set of linearized operations, model state) already explored. Records live in
 * one growing Int32Array — [hash, state, next record in bucket, ...bitset words] — so that adding
 * one allocates nothing in the common case.
 */
class VisitedSet {
  private buckets = new Int32Array(initialVisitedCapacity).fill(none);
  private records: Int32Array;
  private size = 0;
  private readonly stride: number;

  constructor(private readonly words: number) {
    this.stride = recordHeader + words;
    this.records = new Int32Array(this.stride * this.buckets.length);
  }

  /** Adds the configuration unless it is already there; returns whether it was added. */
  add(hash: number, state: number, bits: Int32Array): boolean {
    const { records, stride, words } = this;
    for (let record = this.buckets[hash & (this.buckets.length - 1)] as number; record !== none; ) {
      const base = record * stride;
      if (records[base] === hash && records[base + 1] === state) {
        let word = 0;
        while (word < words && records[base + recordHeader + word] === bits[word]) word++;
        if (word === words) return false;
      }
      record = records[base + 2] as number;
    }
    this.insert(hash, state, bits);
    return true;
  }

  private insert(hash: number, state: number, bits: Int32Array): void {
    if ((this.size + 1) * this.stride > this.records.length) {
      const grown = new Int32Array(this.records.length * 2);
      grown.set(this.records);
      this.records = grown;
    }
    const base = this.size * this.stride;
    this.records[base] = hash;
    this.records[base + 1] = state;
    this.records.set(bits, base + recordHeader);
    this.link(this.size);
    this.size++;
    if (this.size > this.buckets.length) this.rehash();
  }

  private link(record: number): void {
    const base = record * this.stride;
    const bucket = (this.records[base] as number) & (this.buckets.length - 1);
    this.records[base + 2] = this.buckets[bucket] as number;
    this.buckets[bucket] = record;
  }

  private rehash(): void {
    this.buckets = new Int32Array(this.buckets.length * 2).fill(none);
    for (let record = 0; record < this.size; record++) this.link(record);
  }
}

function configurationHash(operationsHash: number, state: number): number {
  const h = operationsHash ^ Math.imul(state, 0x9e3779b1);
  return Math.imul(h ^ (h >>> 16), 0x45d9f3b);
}

/**
 * Wing & Gong's search with Lowe's memoization, as in Porcupine's checkSingle: walk a doubly linked
 * list of call and return entries ordered by time; linearizing an operation lifts its two entries
 * out of the list, backtracking puts them back. Reaching a return entry means that operation had to
 * be linearized already, so the search backtracks.
 *
 * The search runs in slices of a given number of steps so that a caller can interleave the keys of
 * a history (and stop all of them once one fails) and enforce a time limit, deterministically.
 */
export class LinearizationSearch {
  private readonly count: number;
  private readonly model: Model;
  /** Entry e < count is the call of operation e, entry e + count its return; entry 2 * count is the list head. */
  private readonly head: number;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly zobrist: Int32Array;
  private readonly linearizedBits: Int32Array;
  private readonly visited: VisitedSet;
  private readonly stackCalls: Int32Array;
  private readonly stackStates: Int32Array;
  private depth = 0;
  private state = initialState;
  private hash = 0;
  private entry: number;
  private deepest: { linearized: number[]; candidates: number[]; state: number } | null = null;
  private outcome: SearchOutcome | null = null;

  constructor(operations: readonly Operation[]) {
    const count = operations.length;
    this.count = count;
    // A part of several keys needs the model of several keys even if none of its operations spans
    // keys: a one-key model would let one key's writes change what a read of another sees. Only
    // the store model holds the lease table.
    this.model = operations.some(
      (operation) => isMultiKey(operation) || usesLeases(operation) || operation.key !== operations[0]?.key,
    )
      ? new StoreModel(operations)
      : usesRevisions(operations)
        ? new RevisionKeyModel(operations)
        : new KeyModel(operations);
    this.head = 2 * count;
    this.next = new Int32Array(this.head + 1);
    this.prev = new Int32Array(this.head + 1);
    const time = (entry: number) =>
      entry < count ? (operations[entry] as Operation).call : (operations[entry - count] as Operation).return;
    const ordered = Array.from({ length: this.head }, (_, entry) => entry).sort(
      // At equal times calls come first: such operations are taken as concurrent.
      (a, b) => time(a) - time(b) || Number(a >= count) - Number(b >= count) || a - b,
    );
    let last = this.head;
    this.prev[this.head] = none;
    for (const entry of ordered) {
      this.next[last] = entry;
      this.prev[entry] = last;
      last = entry;
    }
    this.next[last] = none;
    this.entry = this.next[this.head] as number;

    this.zobrist = zobristKeys(count);
    const words = Math.max(1, Math.ceil(count / 32));
    this.linearizedBits = new Int32Array(words);
    this.visited = new VisitedSet(words);
    this.stackCalls = new Int32Array(count);
    this.stackStates = new Int32Array(count);
  }

  /** Runs up to `maxSteps` steps; returns the outcome, or null when the search is not over yet. */
  run(maxSteps: number): SearchOutcome | null {
    if (this.outcome !== null) return this.outcome;
    const { count, head, next, model, zobrist, linearizedBits, visited, stackCalls, stackStates } = this;
    // The hot loop works on locals, saved back when the slice ends.
    let { depth, state, hash, entry } = this;
    for (let steps = 0; entry !== none; steps++) {
      if (steps === maxSteps) {
        this.depth = depth;
        this.state = state;
        this.hash = hash;
        this.entry = entry;
        return null;
      }
      if (entry < count) {
        const nextState = model.step(state, entry);
        if (nextState !== none) {
          const word = entry >>> 5;
          const bit = 1 << (entry & 31);
          linearizedBits[word] = (linearizedBits[word] as number) | bit;
          const nextHash = hash ^ (zobrist[entry] as number);
          if (visited.add(configurationHash(nextHash, nextState), nextState, linearizedBits)) {
            stackCalls[depth] = entry;
            stackStates[depth] = state;
            depth++;
            state = nextState;
            hash = nextHash;
            this.lift(entry);
            entry = next[head] as number;
            continue;
          }
          linearizedBits[word] = (linearizedBits[word] as number) & ~bit;
        }
        entry = next[entry] as number;
      } else {
        // Every entry before this return is a call (the walk only moves past calls): those are the candidates.
        if (this.deepest === null || depth > this.deepest.linearized.length) {
          const candidates: number[] = [];
          for (let call = next[head] as number; call !== entry; call = next[call] as number) candidates.push(call);
          this.deepest = { linearized: Array.from(stackCalls.subarray(0, depth)), candidates, state };
        }
        if (depth === 0) {
          const { linearized, candidates, state: deepestState } = this.deepest;
          this.outcome = { verdict: "not-linearizable", linearized, candidates, value: model.valueOf(deepestState) };
          return this.outcome;
        }
        depth--;
        entry = stackCalls[depth] as number;
        state = stackStates[depth] as number;
        hash ^= zobrist[entry] as number;
        linearizedBits[entry >>> 5] = (linearizedBits[entry >>> 5] as number) & ~(1 << (entry & 31));
        this.unlift(entry);
        entry = next[entry] as number;
      }
    }
    this.outcome = { verdict: "linearizable" };
    return this.outcome;
  }

  private lift(call: number): void {
    const { next, prev } = this;
    const ret = call + this.count;
    next[prev[call] as number] = next[call] as number;
    prev[next[call] as number] = prev[call] as number;
    next[prev[ret] as number] = next[ret] as number;
    if (next[ret] !== none) prev[next[ret] as number] = prev[ret] as number;
  }

  private unlift(call: number): void {
    const { next, prev } = this;
    const ret = call + this.count;
    if (next[ret] !== none) prev[next[ret] as number] = ret;
    next[prev[ret] as number] = ret;
    prev[next[call] as number] = call;
    next[prev[call] as number] = call;
  }
}
