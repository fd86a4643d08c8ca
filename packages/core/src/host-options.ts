import { ErrorCode, QuorateError } from "./errors.js";

/**
 * Fails with Config unless every option in `options` that is not a flag is a positive safe
 * integer (ticks, counts, bytes, milliseconds). `what` names them in the error: "raft option".
 */
export function requirePositiveIntegers(what: string, options: object): void {
  for (const [key, value] of Object.entries(options)) {
    if (typeof value === "boolean") continue;
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new QuorateError(ErrorCode.Config, `${what} ${key} must be a positive integer (got ${value})`);
    }
  }
}

/** Fails with Config unless option `lowName` is below option `highName`. */
export function requireBelow(lowName: string, low: number, highName: string, high: number): void {
  if (low >= high) {
    throw new QuorateError(ErrorCode.Config, `${lowName} (${low}) must be below ${highName} (${high})`);
  }
}
