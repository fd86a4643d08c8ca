/** A key's value as clients see it: a string, or null when the key is absent. */
export type Value = string | null;

/** Input of a compare-and-set: `[expected, new]`; expected null means "the key is absent". */
export type CasInput = readonly [expected: Value, replacement: string];

/**
 * `ok`: the operation completed and took effect (for a cas: it succeeded).
 * `unknown`: it may or may not have taken effect, at any time after its call (`:info` or no completion).
 */
export type OperationStatus = "ok" | "unknown";

/** What an operation asks for: its kind and the `:value` of its invocation. */
export type OperationRequest =
  | { readonly f: "get"; readonly input: null }
  | { readonly f: "put"; readonly input: string }
  | { readonly f: "append"; readonly input: string }
  | { readonly f: "cas"; readonly input: CasInput }
  | { readonly f: "delete"; readonly input: null };

export type OperationKind = OperationRequest["f"];

export type OperationInput = OperationRequest["input"];

interface OperationFields {
  /** Position of the invocation among all invocations of the history, starting at 0. */
  readonly id: number;
  readonly process: number;
  readonly key: string;
  /** Position of the invocation event in the history, starting at 0. */
  readonly call: number;
  /** Position of the completion event, or Infinity when the outcome is unknown. */
  readonly return: number;
  readonly status: OperationStatus;
  /** The value a get read; null for other kinds and for gets whose outcome is unknown. */
  readonly output: Value;
}

/**
 * One operation of a history, invocation and completion paired. Operations that failed (`:fail`)
 * definitely did not happen and are not represented.
 */
export type Operation = OperationFields & OperationRequest;
