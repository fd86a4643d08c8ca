import { invariant } from "./errors.js";

/**
 * A small validator kit for decoded frames. Each validator is a type guard, so a validated
 * body has its static type without a cast. Peer input is untrusted: validators never throw.
 */
export type Validator<T> = (value: unknown) => value is T;
export type Infer<V> = V extends Validator<infer T> ? T : never;

const OPTIONAL = Symbol("optional");
export interface OptionalValidator<T> extends Validator<T | undefined> {
  readonly [OPTIONAL]: true;
}

export const uint: Validator<number> = (v): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

export const bool: Validator<boolean> = (v): v is boolean => typeof v === "boolean";

export function string(maxLength = 1024): Validator<string> {
  return (v): v is string => typeof v === "string" && v.length <= maxLength;
}

export const bytes: Validator<Uint8Array> = (v): v is Uint8Array => v instanceof Uint8Array;

export function literal<const T extends string | number>(...values: T[]): Validator<T> {
  return (v): v is T => values.includes(v as T);
}

export function nullable<T>(inner: Validator<T>): Validator<T | null> {
  return (v): v is T | null => v === null || inner(v);
}

export function optional<T>(inner: Validator<T>): OptionalValidator<T> {
  const check = ((v: unknown) => v === undefined || v === null || inner(v)) as OptionalValidator<T>;
  Object.defineProperty(check, OPTIONAL, { value: true });
  return check;
}

export function arrayOf<T>(inner: Validator<T>, maxLength = 1 << 20): Validator<T[]> {
  return (v): v is T[] => {
    if (!Array.isArray(v) || v.length > maxLength) return false;
    for (const item of v) if (!inner(item)) return false;
    return true;
  };
}

type Shape = Record<string, Validator<unknown>>;
type RequiredKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalValidator<unknown> ? never : K }[keyof S];
type OptionalKeys<S extends Shape> = Exclude<keyof S, RequiredKeys<S>>;
export type ObjectOf<S extends Shape> = { [K in RequiredKeys<S>]: Infer<S[K]> } & {
  [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined>;
};

/** A plain object with the given fields. Extra fields are allowed, so newer peers may add some. */
export function object<S extends Shape>(shape: S): Validator<ObjectOf<S>> {
  const entries = Object.entries(shape);
  return (v): v is ObjectOf<S> => {
    if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) return false;
    const record = v as Record<string, unknown>;
    for (const [key, check] of entries) if (!check(record[key])) return false;
    return true;
  };
}

/**
 * The body of each message type that crosses the network, by type name. Core knows the envelope
 * and the codec but no protocol: each protocol adds its messages to this interface next to their
 * schemas (`declare module "@quorate/core" { interface MessageMap extends BodiesOf<typeof schemas> {} }`)
 * and registers the schemas with `registerMessages`, so that the codec can validate their bodies.
 */
// biome-ignore lint/suspicious/noEmptyInterface: protocols extend it by declaration merging.
export interface MessageMap {}
export type MessageType = keyof MessageMap;

/** The body types a table of schemas validates, by message type: what a protocol merges into MessageMap. */
export type BodiesOf<S extends Record<string, Validator<unknown>>> = { -readonly [K in keyof S]: Infer<S[K]> };

const registry = new Map<string, Validator<unknown>>();

/**
 * Makes the codec accept these message types, each validated by its schema. A protocol calls it
 * once, when its messages module loads. Registering a type again with another schema throws: two
 * protocols would otherwise share a type name, and frames of one would reach the other.
 */
export function registerMessages<K extends MessageType>(
  schemas: { readonly [T in K]: Validator<MessageMap[T]> },
): void {
  const entries = Object.entries<Validator<unknown>>(schemas);
  for (const [type, schema] of entries) {
    const registered = registry.get(type);
    invariant(
      registered === undefined || registered === schema,
      `message type ${type} is registered twice, with different schemas`,
    );
  }
  for (const [type, schema] of entries) registry.set(type, schema);
}

/** The schema registered for a message type, or undefined when no loaded protocol registered it. */
export function messageSchema(type: unknown): Validator<unknown> | undefined {
  return typeof type === "string" ? registry.get(type) : undefined;
}

/** Every registered message type, in the order of registration. */
export function registeredMessageTypes(): MessageType[] {
  return [...registry.keys()] as MessageType[];
}
