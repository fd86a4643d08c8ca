import { CheckerError, CheckerErrorCode } from "./errors.js";
import { Interner } from "./interner.js";
import type { Operation, TickInput, TxnCompare, TxnWrite, Value } from "./operation.js";

/*
 * The key-value model of several keys at once, for a part of a history whose operations read or
 * write more than one key: a transaction (compares, then the writes of one branch, all at one
 * revision) or a range (`keys`, `list`: the first `limit` present keys under a prefix, from
 * `fromKey` on, in code-unit order, with their values and revisions). checkOperations gives this
 * model the keys such operations tie together (see partitionOperations), so each part is small.
 *
 * A model state is a set of concrete stores: each key is (value, modRevision, createRevision,
 * lastRevision), value absent or one string, lastRevision the highest known revision of a write to
 * the key. Where the history does not say what happened — an operation of unknown outcome, a write
 * whose revision was not recorded (modRevision "unknown", above lastRevision), a condition on an
 * unknown revision — the state holds every store it may have led to, and a later read keeps only
 * the stores it agrees with. An unknown revision is one marker, not a value: a condition on it is
 * judged both ways and a read of it is taken as exact. So the model only ever keeps more stores
 * than are possible, never fewer: it never refuses a linearizable history.
 *
 * Leases: a part that has lease operations (grant, keepAlive, revoke, tick, or a write attaching
 * its key to a lease) holds, with its keys, the store's lease table: the lease clock, the
 * proposer and term of its last tick, and per lease whether it is granted, live or ended and the
 * clock reading at which it expires. Every lease operation reads the clock, so one part holds
 * every lease and every key ever attached to one (see partitionOperations). The model applies the
 * store's rules (KvStateMachine): the clock advances only by ticks, as the log orders them; a
 * tick from the proposer and term of the previous one adds its elapsedMs, one from another adds
 * nothing and renews every live lease to its full TTL; then every lease whose expiry the clock
 * reached ends, deleting the keys attached to it. A write with a lease applies only while the
 * lease lives (else the store refused it, which a history records as :fail); a write without one
 * detaches the key from its lease, as etcd's put does. Expiry is thus an event the log decides,
 * not a client's clock: a key attached to a lease is absent from the tick that ends the lease
 * on, and present before it. The store ends the leases a tick passes all at once while their
 * keys fit in one change (MAX_CHANGE_EVENTS); the model assumes they do.
 */

/** Fields of one key in a concrete store, `fieldsPerKey` numbers per key. */
const VALUE = 0;
const MOD = 1;
const CREATE = 2;
const LAST = 3;
/** The lease the key is attached to: its slot + 1, or 0 for none. */
const LEASE = 4;
const fieldsPerKey = 5;

/** Fields of the lease table, after the keys: the clock, then the holder of the last tick (its id + 1, 0 for none). */
const CLOCK = 0;
const HOLDER = 1;
const tableFields = 2;
/** Fields of one lease, after the table's: its status and the clock reading at which it expires. */
const STATUS = 0;
const EXPIRES = 1;
const fieldsPerLease = 2;
const notGranted = 0;
const live = 1;
const ended = 2;

const absentValue = 0;
/** A revision written by a write whose revision is not known: above the key's lastRevision. */
const unknownRevision = -1;

/** The most concrete stores one state holds; beyond, the check gives up as "search-too-large". */
const maxStoresPerState = 4096;

type Store = readonly number[];

/** The keys an operation reads or writes, as far as its own fields say (a range: the keys it returned). */
export function operationKeys(operation: Operation): string[] {
  switch (operation.f) {
    case "grant":
    case "keepAlive":
    case "revoke":
    case "tick":
      return [];
    case "txn": {
      const { compare, success, failure } = operation.input;
      return [...new Set([...compare, ...success, ...failure].map((item) => item.key))];
    }
    case "keys":
    case "list":
      return (operation.entries ?? []).map((entry) => entry.key);
    default:
      return [operation.key];
  }
}

/** Whether an operation reads or writes more than the one key it names. */
export function isMultiKey(operation: Operation): boolean {
  return operation.f === "txn" || operation.f === "keys" || operation.f === "list";
}

/** The lease a write attaches its key to, or null (no lease, or not a write that takes one). */
function leaseOf(operation: Operation): number | null {
  if (operation.f !== "put" && operation.f !== "create" && operation.f !== "update") return null;
  return operation.lease ?? null;
}

/** Whether an operation reads or changes the lease table: a lease operation, or a write with a lease. */
export function usesLeases(operation: Operation): boolean {
  switch (operation.f) {
    case "grant":
    case "keepAlive":
    case "revoke":
    case "tick":
      return true;
    default:
      return leaseOf(operation) !== null;
  }
}

/** The leases of a part and their TTLs, by id; its grants' ids are their revisions. */
function leaseTtls(operations: readonly Operation[]): Map<number, number> {
  const ttls = new Map<number, number>();
  for (const operation of operations) {
    if (operation.f !== "grant") continue;
    if (operation.status !== "ok" || operation.revision === null) {
      throw new CheckerError(
        CheckerErrorCode.Argument,
        `operation ${operation.id}: a grant must be completed with its lease id as :revision ` +
          "(one of unknown outcome names no lease anyone can use: leave it out)",
      );
    }
    ttls.set(operation.revision, operation.input);
  }
  for (const operation of operations) {
    const lease = operation.f === "keepAlive" || operation.f === "revoke" ? operation.input : leaseOf(operation);
    if (lease !== null && !ttls.has(lease)) {
      throw new CheckerError(
        CheckerErrorCode.Argument,
        `operation ${operation.id}: lease ${lease} was not returned by a completed grant of the history`,
      );
    }
  }
  return ttls;
}

export class StoreModel {
  /** The part's keys in code-unit order, as ranges return them. */
  private readonly keys: string[];
  private readonly keyIndex = new Map<string, number>();
  /** Value ids: 0 is absent (`absentValue`). */
  private readonly strings = new Interner<string | null>();
  /** The part's leases in id order (a lease's slot is its position), their TTLs, and where the table starts in a store. */
  private readonly leaseIds: number[];
  private readonly leaseSlots = new Map<number, number>();
  private readonly ttls: number[];
  private readonly tableBase: number;
  /** The proposers and terms of ticks, as JSON `[by, term]`: the holder field is an id + 1. */
  private readonly holders = new Interner<null>();
  private readonly stores = new Interner<Store>();
  /** Per state: the ids of its stores, ascending. */
  private readonly states = new Interner<readonly number[]>();
  private readonly transitions: (Map<number, number> | undefined)[];

  constructor(private readonly operations: readonly Operation[]) {
    this.strings.intern("absent", null);
    const keys = new Set<string>();
    for (const operation of operations) {
      if (operation.f === "append") {
        throw new CheckerError(
          CheckerErrorCode.Argument,
          `operation ${operation.id}: append cannot be checked together with transactions or ranges ` +
            `(key ${JSON.stringify(operation.key)})`,
        );
      }
      for (const key of operationKeys(operation)) keys.add(key);
    }
    this.keys = [...keys].sort();
    this.keys.forEach((key, index) => {
      this.keyIndex.set(key, index);
    });
    const ttls = leaseTtls(operations);
    this.leaseIds = [...ttls.keys()].sort((a, b) => a - b);
    this.ttls = this.leaseIds.map((id) => ttls.get(id) as number);
    this.leaseIds.forEach((id, slot) => {
      this.leaseSlots.set(id, slot);
    });
    this.tableBase = this.keys.length * fieldsPerKey;
    const tableLength = operations.some(usesLeases) ? tableFields + this.leaseIds.length * fieldsPerLease : 0;
    const initial = new Array<number>(this.tableBase + tableLength).fill(0);
    this.internState([this.internStore(initial)]);
    this.transitions = new Array<Map<number, number> | undefined>(operations.length);
  }

  /** The state after `operation` takes effect in `state`, or -1 if its observed result rules that out. */
  step(state: number, operation: number): number {
    let transitions = this.transitions[operation];
    if (transitions === undefined) {
      transitions = new Map();
      this.transitions[operation] = transitions;
    }
    let next = transitions.get(state);
    if (next === undefined) {
      const after = new Set<number>();
      for (const store of this.states.item(state)) {
        for (const result of this.apply(this.stores.item(store), this.operations[operation] as Operation)) {
          after.add(this.internStore(result));
        }
      }
      if (after.size > maxStoresPerState) {
        // The search reports a RangeError as "search-too-large".
        throw new RangeError(`a state of the store model holds more than ${maxStoresPerState} stores`);
      }
      next = after.size === 0 ? -1 : this.internState([...after].sort((a, b) => a - b));
      transitions.set(state, next);
    }
    return next;
  }

  /** The part's contents in one store the state holds, as JSON (key → value, absent keys left out). */
  valueOf(state: number): Value {
    const store = this.stores.item(this.states.item(state)[0] as number);
    const contents: Record<string, string> = {};
    this.keys.forEach((key, index) => {
      const value = this.strings.item(store[index * fieldsPerKey + VALUE] as number);
      if (value !== null && value !== undefined) contents[key] = value;
    });
    return JSON.stringify(contents);
  }

  /** The stores `operation` may lead to from `store`; none if its observed result rules `store` out. */
  private apply(store: Store, operation: Operation): Store[] {
    const ok = operation.status === "ok";
    const revision = ok ? (operation.revision ?? unknownRevision) : unknownRevision;
    /** An operation of unknown outcome may also not have happened. */
    const orNot = (results: (Store | null)[]): Store[] => {
      const kept = results.filter((result): result is Store => result !== null);
      return ok ? kept : [store, ...kept];
    };
    switch (operation.f) {
      case "get":
        return this.valueIs(store, operation.key, operation.output) ? [store] : [];
      case "entry": {
        if (!this.valueIs(store, operation.key, operation.output)) return [];
        if (operation.output === null) return [store];
        const read = this.readRevisions(
          store,
          this.indexOf(operation.key),
          operation.revision,
          operation.createRevision,
        );
        return read === null ? [] : [read];
      }
      case "put":
        return orNot([this.write(store, operation.key, operation.input, revision, leaseOf(operation))]);
      case "cas": {
        if (!this.valueIs(store, operation.key, operation.input[0])) return ok ? [] : [store];
        return orNot([this.write(store, operation.key, operation.input[1], revision)]);
      }
      case "create": {
        const absent = this.valueIs(store, operation.key, null);
        if (ok && operation.applied === false) return absent ? [] : [store];
        if (!absent) return ok && operation.applied === true ? [] : [store];
        return orNot([this.write(store, operation.key, operation.input, revision, leaseOf(operation))]);
      }
      case "update": {
        const [condition, value] = operation.input;
        const lease = leaseOf(operation);
        return this.conditional(store, operation, condition, (s) =>
          this.write(s, operation.key, value, revision, lease),
        );
      }
      case "delete": {
        const remove = (s: Store) => this.remove(s, operation.key, revision);
        if (operation.input !== null) return this.conditional(store, operation, operation.input, remove);
        const present = !this.valueIs(store, operation.key, null);
        if (ok && operation.applied === false) return present ? [] : [store];
        if (!present) return ok && operation.applied === true ? [] : [store];
        return orNot([remove(store)]);
      }
      case "txn":
        return this.transaction(store, operation, revision);
      case "keys":
      case "list": {
        const read = this.range(store, operation);
        return read === null ? [] : [read];
      }
      case "grant": {
        // A grant's revision is its lease's id (leaseTtls refused a grant without one).
        const base = this.leaseBase(operation.revision as number);
        if (store[base + STATUS] !== notGranted) return [];
        const result = [...store];
        result[base + STATUS] = live;
        result[base + EXPIRES] = (store[this.tableBase + CLOCK] as number) + operation.input;
        return [result];
      }
      case "keepAlive": {
        const base = this.leaseBase(operation.input);
        const alive = store[base + STATUS] === live;
        if (ok && operation.applied !== null) return alive === operation.applied ? [this.renew(store, base)] : [];
        return alive ? [store, this.renew(store, base)] : [store];
      }
      case "revoke": {
        const base = this.leaseBase(operation.input);
        const alive = store[base + STATUS] === live;
        if (ok && operation.applied !== null) return alive === operation.applied ? [this.endLease(store, base)] : [];
        return alive ? [store, this.endLease(store, base)] : [store];
      }
      case "tick":
        return orNot([this.tick(store, operation.input)]);
      case "append":
        return [];
    }
  }

  /** Where lease `id`'s fields start in a store. */
  private leaseBase(id: number): number {
    const slot = this.leaseSlots.get(id);
    if (slot === undefined) throw new CheckerError(CheckerErrorCode.Argument, `lease ${id} is not in this part`);
    return this.slotBase(slot);
  }

  /** The store with the lease at `base` given its full TTL again, if it lives. */
  private renew(store: Store, base: number): Store {
    if (store[base + STATUS] !== live) return store;
    const result = [...store];
    this.renewIn(result, base);
    return result;
  }

  /** The store with the lease at `base` ended, if it lives. */
  private endLease(store: Store, base: number): Store {
    if (store[base + STATUS] !== live) return store;
    const result = [...store];
    this.endLeaseIn(result, base);
    return result;
  }

  /** Gives the live lease at `base` its full TTL again by the clock, in a store the caller owns. */
  private renewIn(result: number[], base: number): void {
    result[base + EXPIRES] = (result[this.tableBase + CLOCK] as number) + (this.ttls[this.slotAt(base)] as number);
  }

  /**
   * Ends the live lease at `base`, in a store the caller owns: its keys are deleted at the
   * revision of the command that ended it (a revoke or a tick), which histories do not record.
   */
  private endLeaseIn(result: number[], base: number): void {
    const attached = this.slotAt(base) + 1;
    for (let index = 0; index < this.keys.length; index++) {
      if (result[index * fieldsPerKey + LEASE] === attached) this.removeIn(result, index, unknownRevision);
    }
    result[base + STATUS] = ended;
    result[base + EXPIRES] = 0;
  }

  private slotAt(base: number): number {
    return (base - this.tableBase - tableFields) / fieldsPerLease;
  }

  /**
   * The store's tick: the clock advances by `elapsedMs` if the holder ticked last, else the holder
   * takes over and every live lease gets its full TTL; then every lease the clock reached ends.
   */
  private tick(store: Store, [by, term, elapsedMs]: TickInput): Store {
    const table = this.tableBase;
    const holder = this.holders.intern(JSON.stringify([by, term]), null) + 1;
    const result = [...store];
    if (store[table + HOLDER] === holder) result[table + CLOCK] = (store[table + CLOCK] as number) + elapsedMs;
    result[table + HOLDER] = holder;
    const clock = result[table + CLOCK] as number;
    for (let slot = 0; slot < this.leaseIds.length; slot++) {
      const base = this.slotBase(slot);
      if (result[base + STATUS] !== live) continue;
      if (store[table + HOLDER] !== holder) this.renewIn(result, base);
      if ((result[base + EXPIRES] as number) <= clock) this.endLeaseIn(result, base);
    }
    return result;
  }

  /** Where the fields of the lease in `slot` start in a store. */
  private slotBase(slot: number): number {
    return this.tableBase + tableFields + slot * fieldsPerLease;
  }

  /** An update or compare-and-delete conditioned on the key's modRevision being `condition`. */
  private conditional(
    store: Store,
    operation: Operation,
    condition: number,
    effect: (store: Store) => Store | null,
  ): Store[] {
    const holds = this.revisionHolds(store, this.indexOf(operation.key), condition);
    if (operation.status === "ok" && operation.applied === false) return holds === true ? [] : [store];
    if (operation.status === "ok" && operation.applied === true) {
      if (holds === false) return [];
      const written = effect(this.assumeRevision(store, this.indexOf(operation.key), condition));
      return written === null ? [] : [written];
    }
    // Unknown outcome, or completed without saying whether it applied.
    const written = holds === false ? null : effect(this.assumeRevision(store, this.indexOf(operation.key), condition));
    return written === null ? [store] : [store, written];
  }

  private transaction(store: Store, operation: Operation & { f: "txn" }, revision: number): Store[] {
    const { compare, success, failure } = operation.input;
    let anyUnknown = false;
    let anyFalse = false;
    for (const condition of compare) {
      const holds = this.compareHolds(store, condition);
      if (holds === false) anyFalse = true;
      else if (holds === null) anyUnknown = true;
    }
    const outcomes: boolean[] = anyFalse ? [false] : anyUnknown ? [true, false] : [true];
    const ok = operation.status === "ok";
    const results: Store[] = ok ? [] : [store];
    for (const succeeded of outcomes) {
      if (
        ok &&
        operation.succeeded !== null &&
        operation.succeeded !== undefined &&
        operation.succeeded !== succeeded
      ) {
        continue;
      }
      let assumed: Store = store;
      if (succeeded) {
        for (const condition of compare) {
          if ("revision" in condition) {
            assumed = this.assumeRevision(assumed, this.indexOf(condition.key), condition.revision);
          }
        }
      }
      const written = this.writeBranch(assumed, succeeded ? success : failure, revision);
      if (written !== null) results.push(written);
    }
    return results;
  }

  /** A branch's writes, all at `revision`; null if a write's revision is not above its key's last. */
  private writeBranch(store: Store, writes: readonly TxnWrite[], revision: number): Store | null {
    let result: Store | null = store;
    for (const write of writes) {
      if (result === null) return null;
      if ("put" in write) result = this.write(result, write.key, write.put, revision);
      else if (!this.valueIs(result, write.key, null)) result = this.remove(result, write.key, revision);
    }
    return result;
  }

  /** The store if the range read agrees with it (revisions read made exact), else null. */
  private range(store: Store, operation: Operation & { f: "keys" | "list" }): Store | null {
    const { fromKey, limit } = operation.input;
    const entries = operation.entries ?? [];
    const expected: number[] = [];
    for (let index = 0; index < this.keys.length && expected.length < limit; index++) {
      const key = this.keys[index] as string;
      if (!key.startsWith(operation.key) || (fromKey !== null && key < fromKey)) continue;
      if (store[index * fieldsPerKey + VALUE] !== absentValue) expected.push(index);
    }
    if (expected.length !== entries.length) return null;
    let result: Store | null = store;
    for (let position = 0; position < entries.length && result !== null; position++) {
      const entry = entries[position] as (typeof entries)[number];
      const index = expected[position] as number;
      if (this.keys[index] !== entry.key) return null;
      if (operation.f === "list" && !this.valueIs(result, entry.key, entry.value)) return null;
      result = this.readRevisions(result, index, entry.revision, entry.createRevision);
    }
    return result;
  }

  private compareHolds(store: Store, condition: TxnCompare): boolean | null {
    if ("absent" in condition) return this.valueIs(store, condition.key, null);
    if ("value" in condition) return this.valueIs(store, condition.key, condition.value);
    return this.revisionHolds(store, this.indexOf(condition.key), condition.revision);
  }

  /** Whether the key's modRevision is `revision`: null when it is unknown and may be. */
  private revisionHolds(store: Store, index: number, revision: number): boolean | null {
    const base = index * fieldsPerKey;
    if (store[base + VALUE] === absentValue) return false;
    const mod = store[base + MOD] as number;
    if (mod !== unknownRevision) return mod === revision;
    // The unknown revision is above lastRevision.
    return revision > (store[base + LAST] as number) ? null : false;
  }

  /** The store with an unknown modRevision taken to be `revision` (a condition on it held). */
  private assumeRevision(store: Store, index: number, revision: number): Store {
    const base = index * fieldsPerKey;
    if (store[base + MOD] !== unknownRevision || store[base + VALUE] === absentValue) return store;
    const result = [...store];
    result[base + MOD] = revision;
    result[base + LAST] = Math.max(result[base + LAST] as number, revision);
    return result;
  }

  /** A read of a present key's revisions (null: not recorded): they must fit the store's, and become exact. */
  private readRevisions(store: Store, index: number, mod: number | null, create: number | null): Store | null {
    if (mod === null || create === null) return store;
    if (create > mod) return null;
    const base = index * fieldsPerKey;
    const knownMod = store[base + MOD] as number;
    const knownCreate = store[base + CREATE] as number;
    const last = store[base + LAST] as number;
    if (knownMod !== unknownRevision ? knownMod !== mod : mod <= last) return null;
    if (knownCreate !== unknownRevision && knownCreate !== create) return null;
    if (knownMod === mod && knownCreate === create) return store;
    const result = [...store];
    result[base + MOD] = mod;
    result[base + CREATE] = create;
    result[base + LAST] = Math.max(last, mod);
    return result;
  }

  /**
   * `value` written to `key` at `revision`, attached to `lease` (null: to none); null if a known
   * revision is not above the key's last, or the lease does not live (the store refuses the write).
   */
  private write(store: Store, key: string, value: string, revision: number, lease: number | null = null): Store | null {
    const base = this.indexOf(key) * fieldsPerKey;
    const last = store[base + LAST] as number;
    if (revision !== unknownRevision && revision <= last) return null;
    const leaseBase = lease === null ? null : this.leaseBase(lease);
    if (leaseBase !== null && store[leaseBase + STATUS] !== live) return null;
    const result = [...store];
    result[base + LEASE] = leaseBase === null ? 0 : this.slotAt(leaseBase) + 1;
    const created = store[base + VALUE] === absentValue;
    result[base + VALUE] = this.literal(value);
    result[base + MOD] = revision;
    if (created) result[base + CREATE] = revision;
    if (revision !== unknownRevision) result[base + LAST] = revision;
    return result;
  }

  /** `key` deleted at `revision`; null if a known revision is not above the key's last. */
  private remove(store: Store, key: string, revision: number): Store | null {
    const index = this.indexOf(key);
    const last = store[index * fieldsPerKey + LAST] as number;
    if (revision !== unknownRevision && revision <= last) return null;
    const result = [...store];
    this.removeIn(result, index, revision);
    return result;
  }

  /** Deletes the key at `index` at `revision` (unknownRevision: not known), detaching it from its lease, in a store the caller owns. */
  private removeIn(result: number[], index: number, revision: number): void {
    const base = index * fieldsPerKey;
    result[base + VALUE] = absentValue;
    result[base + MOD] = 0;
    result[base + CREATE] = 0;
    result[base + LEASE] = 0;
    if (revision !== unknownRevision) result[base + LAST] = revision;
  }

  private valueIs(store: Store, key: string, value: Value): boolean {
    const held = store[this.indexOf(key) * fieldsPerKey + VALUE] as number;
    return value === null ? held === absentValue : this.strings.item(held) === value;
  }

  private indexOf(key: string): number {
    const index = this.keyIndex.get(key);
    if (index === undefined)
      throw new CheckerError(CheckerErrorCode.Argument, `key ${JSON.stringify(key)} is not in this part`);
    return index;
  }

  private literal(value: string): number {
    return this.strings.intern(`=${value}`, value);
  }

  private internStore(store: Store): number {
    return this.stores.intern(store.join(","), store);
  }

  private internState(stores: readonly number[]): number {
    return this.states.intern(stores.join(","), stores);
  }
}
