import type { Operation, Value } from "./operation.js";

/*
 * The key-value model, for one key. A key is in one of three kinds of state:
 *
 * - never written: the initial state. It reads as nil AND as "" — Jepsen histories read a missing
 *   key as nil, Porcupine's test data read it as "" — so a get returning either is accepted, and
 *   a cas expecting either nil or "" succeeds.
 * - absent (after a delete): reads as nil only; a cas expecting nil succeeds, one expecting "" fails.
 * - a string (after put, append or a successful cas), "" included: reads as exactly that string.
 *
 * append concatenates to the current string, an absent or never-written key counting as "".
 *
 * States are small integers, so that the search compares and hashes integers instead of (possibly
 * long) strings. Each string an operation mentions is a "literal" state, one per distinct string;
 * an append creates a state from (previous state, suffix) without building the string: a state
 * keeps its length and a rolling hash, and the string is only built when a comparison with a
 * literal of the same length and hash needs it. Two states may therefore hold the same string
 * (e.g. put "ab" and put "a" then append "b"): that only costs the search some memoization hits.
 */

const unwrittenState = 0;
const absentState = 1;
const emptyState = 2;
const hashBase = 0x01000193;

const Kind = {
  get: 0,
  put: 1,
  append: 2,
  delete: 3,
  cas: 4,
  /** A cas of unknown outcome: if it takes effect it succeeds or fails depending on the state. */
  casUnknown: 5,
  /** A get of unknown outcome observed nothing and changed nothing. */
  nothing: 6,
} as const;

/** Polynomial hash of `text` and the factor by which appending `text` multiplies a hash, both mod 2^32. */
function rollingHash(text: string): { hash: number; factor: number } {
  let hash = 0;
  let factor = 1;
  for (let index = 0; index < text.length; index++) {
    hash = (Math.imul(hash, hashBase) + text.charCodeAt(index)) | 0;
    factor = Math.imul(factor, hashBase);
  }
  return { hash, factor };
}

export class KeyModel {
  private readonly literals = new Map<string, number>();
  /** Per state: the state it appended to (-1 for literals) and the operation whose suffix it appended. */
  private readonly parents: number[] = [];
  private readonly appended: number[] = [];
  private readonly lengths: number[] = [];
  private readonly hashes: number[] = [];
  /** Per state, the string it holds once built; "" for the never-written and absent states. */
  private readonly strings: (string | undefined)[] = [];
  private readonly kinds: Uint8Array;
  /** get: the state it read; cas: the state it expected; put: the state it writes. */
  private readonly first: Int32Array;
  /** cas: the state it writes. */
  private readonly second: Int32Array;
  private readonly suffixes: string[];
  private readonly suffixHashes: Int32Array;
  private readonly suffixFactors: Int32Array;
  /** Per append operation: the state it leads to from each state it was applied to. */
  private readonly appendResults: (Map<number, number> | undefined)[];

  constructor(operations: readonly Operation[]) {
    // In the order of unwrittenState, absentState, emptyState.
    this.addState(-1, -1, 0, 0, "");
    this.addState(-1, -1, 0, 0, "");
    this.intern("");
    const count = operations.length;
    this.kinds = new Uint8Array(count);
    this.first = new Int32Array(count);
    this.second = new Int32Array(count);
    this.suffixes = new Array<string>(count).fill("");
    this.suffixHashes = new Int32Array(count);
    this.suffixFactors = new Int32Array(count);
    this.appendResults = new Array<Map<number, number> | undefined>(count);
    operations.forEach((operation, index) => {
      switch (operation.f) {
        case "get":
          if (operation.status === "ok") {
            this.kinds[index] = Kind.get;
            this.first[index] = this.stateOfValue(operation.output);
          } else {
            this.kinds[index] = Kind.nothing;
          }
          break;
        case "put":
          this.kinds[index] = Kind.put;
          this.first[index] = this.intern(operation.input);
          break;
        case "append": {
          this.kinds[index] = Kind.append;
          this.suffixes[index] = operation.input;
          const { hash, factor } = rollingHash(operation.input);
          this.suffixHashes[index] = hash;
          this.suffixFactors[index] = factor;
          break;
        }
        case "delete":
          this.kinds[index] = Kind.delete;
          break;
        case "cas":
          this.kinds[index] = operation.status === "ok" ? Kind.cas : Kind.casUnknown;
          this.first[index] = this.stateOfValue(operation.input[0]);
          this.second[index] = this.intern(operation.input[1]);
          break;
      }
    });
  }

  /** The state after `operation` takes effect in `state`, or -1 if its observed result rules that out. */
  step(state: number, operation: number): number {
    switch (this.kinds[operation]) {
      case Kind.get:
        return this.matches(state, this.first[operation] as number) ? state : -1;
      case Kind.put:
        return this.first[operation] as number;
      case Kind.append:
        return this.append(state, operation);
      case Kind.delete:
        return absentState;
      case Kind.cas:
        return this.matches(state, this.first[operation] as number) ? (this.second[operation] as number) : -1;
      case Kind.casUnknown:
        return this.matches(state, this.first[operation] as number) ? (this.second[operation] as number) : state;
      default:
        return state;
    }
  }

  /** The value a client reading `state` would see; null for absent and never-written keys. */
  valueOf(state: number): Value {
    return state === unwrittenState || state === absentState ? null : this.stringOf(state);
  }

  /** Whether a read or a cas expecting the literal state `expected` is satisfied in `state`. */
  private matches(state: number, expected: number): boolean {
    if (state === expected) return true;
    if (state === unwrittenState) return expected === absentState || expected === emptyState;
    if (state === absentState || expected === absentState) return false;
    return (
      this.lengths[state] === this.lengths[expected] &&
      this.hashes[state] === this.hashes[expected] &&
      this.stringOf(state) === this.stringOf(expected)
    );
  }

  private append(state: number, operation: number): number {
    let results = this.appendResults[operation];
    if (results === undefined) {
      results = new Map();
      this.appendResults[operation] = results;
    }
    let next = results.get(state);
    if (next === undefined) {
      // Appending to an absent or never-written key appends to "".
      const parent = state === unwrittenState || state === absentState ? emptyState : state;
      const shifted = Math.imul(this.hashes[parent] as number, this.suffixFactors[operation] as number);
      const hash = (shifted + (this.suffixHashes[operation] as number)) | 0;
      const length = (this.lengths[parent] as number) + (this.suffixes[operation] as string).length;
      next = this.addState(parent, operation, length, hash, undefined);
      results.set(state, next);
    }
    return next;
  }

  private stringOf(state: number): string {
    const known = this.strings[state];
    if (known !== undefined) return known;
    // Build from the nearest ancestor whose string is known, iteratively: append chains can be long.
    const chain: number[] = [];
    let ancestor = state;
    while (this.strings[ancestor] === undefined) {
      chain.push(ancestor);
      ancestor = this.parents[ancestor] as number;
    }
    let text = this.strings[ancestor] as string;
    for (let index = chain.length - 1; index >= 0; index--) {
      const link = chain[index] as number;
      text += this.suffixes[this.appended[link] as number];
      this.strings[link] = text;
    }
    return text;
  }

  private addState(parent: number, appended: number, length: number, hash: number, text: string | undefined): number {
    this.parents.push(parent);
    this.appended.push(appended);
    this.lengths.push(length);
    this.hashes.push(hash);
    this.strings.push(text);
    return this.strings.length - 1;
  }

  private stateOfValue(value: Value): number {
    return value === null ? absentState : this.intern(value);
  }

  private intern(value: string): number {
    let id = this.literals.get(value);
    if (id === undefined) {
      const { hash } = rollingHash(value);
      id = this.addState(-1, -1, value.length, hash, value);
      this.literals.set(value, id);
    }
    return id;
  }
}
