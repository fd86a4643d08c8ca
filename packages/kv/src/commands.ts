import { ErrorCode, literal, nullable, object, packValue, unpackValue, type Validator } from "@quorate/core";

/** A stored value. Strings and bytes are kept apart: a get returns the type that was put. */
export type KvValue = string | Uint8Array;

export const MAX_KEY_LENGTH = 1024;

/** A key: a non-empty string of at most MAX_KEY_LENGTH UTF-16 code units. */
export const kvKey: Validator<string> = (v): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_KEY_LENGTH;

export const kvValue: Validator<KvValue> = (v): v is KvValue => typeof v === "string" || v instanceof Uint8Array;

/** A command of the replicated key-value state machine. */
export type KvCommand =
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "put"; readonly key: string; readonly value: KvValue }
  | { readonly op: "delete"; readonly key: string }
  /** Sets `value` if the key holds `expected` (same type and content), or is absent when `expected` is null. */
  | { readonly op: "cas"; readonly key: string; readonly expected: KvValue | null; readonly value: KvValue };

export const kvCommand: Validator<KvCommand> = (v): v is KvCommand =>
  object({ op: literal("get", "delete"), key: kvKey })(v) ||
  object({ op: literal("put"), key: kvKey, value: kvValue })(v) ||
  object({ op: literal("cas"), key: kvKey, expected: nullable(kvValue), value: kvValue })(v);

/** Encodes only the fields of the command's op, so stray fields never reach the log. */
export function encodeKvCommand(command: KvCommand): Uint8Array {
  switch (command.op) {
    case "get":
    case "delete":
      return packValue({ op: command.op, key: command.key });
    case "put":
      return packValue({ op: command.op, key: command.key, value: command.value });
    case "cas":
      return packValue({ op: command.op, key: command.key, expected: command.expected, value: command.value });
  }
}

/** What a KV command returns when it succeeds; see KvResult. */
export type KvResultValue = KvValue | boolean | null;

export const kvResultValue: Validator<KvResultValue> = (v): v is KvResultValue =>
  v === null || typeof v === "boolean" || kvValue(v);

/**
 * The result of a KV command. `value` by op: get → the stored value or null; put → null;
 * delete → whether the key existed; cas → whether the value was swapped in.
 * A command that fails validation is Rejected: it changed nothing.
 */
export type KvResult =
  | { readonly ok: true; readonly value: KvResultValue }
  | { readonly ok: false; readonly code: typeof ErrorCode.Rejected; readonly message: string };

const kvResult = (v: unknown): v is KvResult =>
  object({
    ok: (x: unknown): x is true => x === true,
    value: kvResultValue,
  })(v) ||
  object({
    ok: (x: unknown): x is false => x === false,
    code: literal(ErrorCode.Rejected),
    message: (x: unknown): x is string => typeof x === "string",
  })(v);

/** Decodes a result of KvStateMachine.apply; null when the bytes are not one. */
export function decodeKvResult(data: Uint8Array): KvResult | null {
  try {
    const raw = unpackValue(data);
    return kvResult(raw) ? raw : null;
  } catch {
    return null;
  }
}
