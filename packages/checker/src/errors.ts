/**
 * Codes are part of the public API: callers branch on them, so they never change meaning.
 * This package does not depend on @quorate/core, hence its own error class.
 */
export const CheckerErrorCode = {
  /** A line of the history is not in the supported EDN subset. */
  Parse: "CHECKER_PARSE",
  /** The history is well-formed EDN but not a valid history (bad field, completion without invocation, ...). */
  History: "CHECKER_HISTORY",
  /** An invalid argument was passed to the API (bad option, unknown recorder handle, ill-formed operation). */
  Argument: "CHECKER_ARGUMENT",
} as const;

export type CheckerErrorCode = (typeof CheckerErrorCode)[keyof typeof CheckerErrorCode];

export class CheckerError extends Error {
  readonly code: CheckerErrorCode;
  /** 1-based line of the history text the error is about, when it comes from parsing text. */
  readonly line: number | null;
  constructor(code: CheckerErrorCode, message: string, options?: { line?: number | null; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CheckerError";
    this.code = code;
    this.line = options?.line ?? null;
  }
}

export function isCheckerError(err: unknown, code?: CheckerErrorCode): err is CheckerError {
  return err instanceof CheckerError && (code === undefined || err.code === code);
}
