import { CheckerError, CheckerErrorCode } from "./errors.js";
import { Interner } from "./interner.js";
import type { Operation, Value } from "./operation.js";

/*
 * The key-value model with revisions, for one key: used for a key whose history has any
 * revision-aware operation (create, update, entry, compare-and-delete, or a write or delete that
 * recorded its revision or whether it applied). Revisions are the store's: every write gets one,
 * and they increase strictly across the whole store, so along the writes of one key too.
 *
 * A state is (value, modRevision, createRevision, lastRevision): the key's value (absent, a string,
 * or unknown), the revision of its last write and of the write that created it, and the highest
 * revision any write to the key is known to have had (deletes included). A known-revision write
 * must come after lastRevision: that is "revisions of successive writes strictly increase".
 *
 * Writes of unknown revision (a put or cas that did not record one, any write of unknown outcome)
 * leave modRevision "at least" a bound instead of exact: the unknown revision is above
 * lastRevision, which they leave unchanged. A condition on a revision that is not exact cannot be
 * judged false: an update conditioned on r succeeds against "at least b" iff r >= b, and the state
 * then knows more (a read of modRevision r makes it exact). A write of unknown outcome whose
 * condition cannot be judged (an update against an inexact modRevision, a create on an unknown
 * value) may or may not have written: the state after it forgets the value and keeps only lower
 * bounds (it becomes less precise, never wrong); the next read makes it precise again. So the
 * model never refuses a linearizable history, and refuses: a conditional write that succeeded
 * against a state where its condition is known false, a create over a present key, a revision at
 * or below one the key already had, an entry whose value or revisions differ from the known ones.
 *
 * Never-written and deleted keys are one absent state, read as nil (this store's semantics).
 * Revisions across keys (two keys' writes ordered by real time) are checked by
 * `checkRevisionOrder`, not here.
 */

/** Value ids: absent, unknown, then one per distinct string. */
const absentValue = 0;
const unknownValue = 1;

const Kind = {
  get: 0,
  put: 1,
  delete: 2,
  cas: 3,
  create: 4,
  update: 5,
  entry: 6,
  /** Operations of unknown outcome: may or may not take effect. */
  casUnknown: 7,
  createUnknown: 8,
  updateUnknown: 9,
  deleteUnknown: 10,
  /** A read of unknown outcome observed nothing and changed nothing. */
  nothing: 11,
} as const;

interface State {
  readonly value: number;
  /** Exact, or a lower bound when `modExact` is false; 0 when absent. */
  readonly modRevision: number;
  readonly modExact: boolean;
  readonly createRevision: number;
  readonly createExact: boolean;
  readonly lastRevision: number;
}

const none = -1;
const unknownRevision = -1;

export class RevisionKeyModel {
  /** Value ids: 0 and 1 are absent and unknown (`absentValue` and its neighbour), 2 the empty string. */
  private readonly strings = new Interner<string | null>();
  private readonly states = new Interner<State>();
  private readonly kinds: Uint8Array;
  /** Per operation: the value id it reads or writes (cas: writes), the value id a cas expects. */
  private readonly values: Int32Array;
  private readonly expected: Int32Array;
  /** Per operation: the revision it is conditioned on (update, compare-and-delete), else unknownRevision. */
  private readonly conditions: Float64Array;
  /** Per operation: the revision it wrote or read (entry: modRevision), else unknownRevision. */
  private readonly revisions: Float64Array;
  private readonly createRevisions: Float64Array;
  /** Per operation: whether it wrote (create, update, delete); 1 yes, 0 no, -1 not recorded. */
  private readonly applied: Int8Array;
  private readonly transitions: (Map<number, number> | undefined)[];

  constructor(operations: readonly Operation[]) {
    this.strings.intern("absent", null);
    this.strings.intern("unknown", null);
    this.strings.intern("=", "");
    this.intern({
      value: absentValue,
      modRevision: 0,
      modExact: true,
      createRevision: 0,
      createExact: true,
      lastRevision: 0,
    });
    const count = operations.length;
    this.kinds = new Uint8Array(count);
    this.values = new Int32Array(count);
    this.expected = new Int32Array(count);
    this.conditions = new Float64Array(count).fill(unknownRevision);
    this.revisions = new Float64Array(count).fill(unknownRevision);
    this.createRevisions = new Float64Array(count).fill(unknownRevision);
    this.applied = new Int8Array(count).fill(-1);
    this.transitions = new Array<Map<number, number> | undefined>(count);
    operations.forEach((operation, index) => {
      const ok = operation.status === "ok";
      if (ok) {
        this.revisions[index] = operation.revision ?? unknownRevision;
        this.createRevisions[index] = operation.createRevision ?? unknownRevision;
        this.applied[index] = operation.applied === null ? -1 : Number(operation.applied);
      }
      switch (operation.f) {
        case "get":
        case "entry":
          this.kinds[index] = ok ? (operation.f === "get" ? Kind.get : Kind.entry) : Kind.nothing;
          this.values[index] = this.valueId(operation.output);
          break;
        case "put":
          this.kinds[index] = Kind.put;
          this.values[index] = this.valueId(operation.input);
          break;
        case "create":
          this.kinds[index] = ok ? Kind.create : Kind.createUnknown;
          this.values[index] = this.valueId(operation.input);
          break;
        case "update":
          this.kinds[index] = ok ? Kind.update : Kind.updateUnknown;
          this.conditions[index] = operation.input[0];
          this.values[index] = this.valueId(operation.input[1]);
          break;
        case "delete":
          this.kinds[index] = ok ? Kind.delete : Kind.deleteUnknown;
          this.conditions[index] = operation.input ?? unknownRevision;
          break;
        case "cas":
          this.kinds[index] = ok ? Kind.cas : Kind.casUnknown;
          this.expected[index] = this.valueId(operation.input[0]);
          this.values[index] = this.valueId(operation.input[1]);
          break;
        case "append":
          throw new CheckerError(
            CheckerErrorCode.Argument,
            `operation ${operation.id}: append cannot be checked on key ${JSON.stringify(operation.key)}, ` +
              "which has revision-aware operations",
          );
      }
    });
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
      const after = this.apply(this.states.item(state), operation);
      next = after === null ? none : this.intern(after);
      transitions.set(state, next);
    }
    return next;
  }

  /** The value a client reading `state` would see; null when absent (or not known). */
  valueOf(state: number): Value {
    return this.strings.item(this.states.item(state).value);
  }

  private apply(s: State, operation: number): State | null {
    const value = this.values[operation] as number;
    const revision = this.revisions[operation] as number;
    const condition = this.conditions[operation] as number;
    const applied = this.applied[operation] as number;
    switch (this.kinds[operation]) {
      case Kind.get:
        return this.read(s, value);
      case Kind.entry: {
        const read = this.read(s, value);
        if (read === null || value === absentValue) return read;
        const createRevision = this.createRevisions[operation] as number;
        return this.readRevisions(read, revision, createRevision);
      }
      case Kind.put:
        return this.write(s, value, revision);
      case Kind.cas: {
        const read = this.read(s, this.expected[operation] as number);
        return read === null ? null : this.write(read, value, revision);
      }
      case Kind.create: {
        if (applied === 0) return this.readPresent(s);
        const read = this.read(s, absentValue);
        return read === null ? null : this.write(read, value, revision);
      }
      case Kind.update: {
        if (applied === 0) return this.revisionDiffers(s, condition) ? s : null;
        const matched = this.revisionMatches(s, condition);
        return matched === null ? null : this.write(matched, value, revision);
      }
      case Kind.delete: {
        if (applied === 0) {
          // Nothing to delete, or (compare-and-delete) a revision that differs.
          if (condition === unknownRevision) return this.read(s, absentValue);
          return s.value === absentValue || this.revisionDiffers(s, condition) ? s : null;
        }
        if (applied === -1 && condition === unknownRevision) {
          // Not recorded whether it found the key: absent afterwards either way.
          return this.remove(s, revision);
        }
        const present = condition === unknownRevision ? this.readPresent(s) : this.revisionMatches(s, condition);
        return present === null ? null : this.remove(present, revision);
      }
      case Kind.casUnknown:
        return this.maybeWrite(s, this.judgeValue(s, this.expected[operation] as number), value);
      case Kind.createUnknown:
        return this.maybeWrite(s, this.judgeValue(s, absentValue), value);
      case Kind.updateUnknown:
        return this.maybeWrite(s, this.judgeRevision(s, condition), value);
      case Kind.deleteUnknown: {
        if (condition === unknownRevision) return this.remove(s, unknownRevision);
        const holds = this.judgeRevision(s, condition);
        return holds === true ? this.remove(s, unknownRevision) : holds === false ? s : this.forget(s, true);
      }
      default:
        return s;
    }
  }

  /** `s` if a read of `value` is possible in it, made precise; null if not. */
  private read(s: State, value: number): State | null {
    if (s.value === value) return s;
    if (s.value !== unknownValue) return null;
    if (value === absentValue)
      return { ...s, value, modRevision: 0, modExact: true, createRevision: 0, createExact: true };
    return { ...s, value };
  }

  /** `s` if the key may be present in it; null if it is known absent. */
  private readPresent(s: State): State | null {
    return s.value === absentValue ? null : s;
  }

  /** An entry read `modRevision` and `createRevision` of a present key: they must fit, and become exact. */
  private readRevisions(s: State, modRevision: number, createRevision: number): State | null {
    if (modRevision === unknownRevision || createRevision === unknownRevision) return s;
    if (createRevision > modRevision) return null;
    if (s.modExact ? s.modRevision !== modRevision : modRevision < s.modRevision) return null;
    if (s.createExact ? s.createRevision !== createRevision : createRevision < s.createRevision) return null;
    return {
      ...s,
      modRevision,
      modExact: true,
      createRevision,
      createExact: true,
      lastRevision: Math.max(s.lastRevision, modRevision),
    };
  }

  /** `s` made precise if the key may be present with modRevision `revision`; null if not. */
  private revisionMatches(s: State, revision: number): State | null {
    if (this.readPresent(s) === null) return null;
    if (s.modExact) return s.modRevision === revision ? s : null;
    if (revision < s.modRevision) return null;
    return { ...s, modRevision: revision, modExact: true, lastRevision: Math.max(s.lastRevision, revision) };
  }

  /** Whether the key may be absent or have another modRevision than `revision`. */
  private revisionDiffers(s: State, revision: number): boolean {
    return s.value === absentValue || s.value === unknownValue || !s.modExact || s.modRevision !== revision;
  }

  /** Whether a write conditioned on the key's modRevision being `revision` holds in `s`; null when not known. */
  private judgeRevision(s: State, revision: number): boolean | null {
    if (s.value === absentValue) return false;
    if (s.value === unknownValue || !s.modExact) return null;
    return s.modRevision === revision;
  }

  /** Whether the key holds `value` (absentValue: is absent) in `s`; null when not known. */
  private judgeValue(s: State, value: number): boolean | null {
    if (s.value === unknownValue) return null;
    return s.value === value;
  }

  /** A write of unknown outcome whose condition is `holds`: written, unchanged, or either. */
  private maybeWrite(s: State, holds: boolean | null, value: number): State {
    if (holds === true) return this.write(s, value, unknownRevision) as State;
    if (holds === false) return s;
    return this.forget(s, false);
  }

  /**
   * The state after a write that may or may not have happened: value unknown, revisions lower
   * bounds (the write's own revision would be above lastRevision, the old ones are kept as bounds).
   */
  private forget(s: State, mayDelete: boolean): State {
    const present = s.value !== absentValue;
    return {
      value: unknownValue,
      modRevision: present ? s.modRevision : 0,
      modExact: false,
      createRevision: present && !mayDelete ? s.createRevision : 0,
      createExact: false,
      lastRevision: s.lastRevision,
    };
  }

  /** `value` written at `revision` (unknownRevision: not known); null if the revision is not above the key's last. */
  private write(s: State, value: number, revision: number): State | null {
    const created = s.value === absentValue;
    if (revision === unknownRevision) {
      return {
        value,
        modRevision: s.lastRevision + 1,
        modExact: false,
        createRevision: created ? s.lastRevision + 1 : s.createRevision,
        createExact: created ? false : s.createExact && s.value !== unknownValue,
        lastRevision: s.lastRevision,
      };
    }
    if (revision <= s.lastRevision) return null;
    return {
      value,
      modRevision: revision,
      modExact: true,
      createRevision: created ? revision : s.createRevision,
      createExact: created ? true : s.createExact && s.value !== unknownValue,
      lastRevision: revision,
    };
  }

  private remove(s: State, revision: number): State | null {
    if (revision !== unknownRevision && revision <= s.lastRevision) return null;
    const lastRevision = revision === unknownRevision ? s.lastRevision : revision;
    return { value: absentValue, modRevision: 0, modExact: true, createRevision: 0, createExact: true, lastRevision };
  }

  private valueId(value: Value): number {
    if (value === null) return absentValue;
    return this.strings.intern(`=${value}`, value);
  }

  private intern(s: State): number {
    return this.states.intern(
      `${s.value},${s.modRevision},${+s.modExact},${s.createRevision},${+s.createExact},${s.lastRevision}`,
      s,
    );
  }
}

/** Whether a key's history needs the revision model: any revision-aware operation or recorded revision. */
export function usesRevisions(operations: readonly Operation[]): boolean {
  return operations.some(
    (operation) =>
      operation.f === "create" ||
      operation.f === "update" ||
      operation.f === "entry" ||
      (operation.f === "delete" && operation.input !== null) ||
      operation.revision !== null ||
      operation.applied !== null,
  );
}
