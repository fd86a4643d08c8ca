import { ErrorCode, QuorateError } from "@quorate/core";

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * A duration as Go and the NATS CLI write it (`5s`, `250ms`, `1m30s`, `1.5s`) in whole
 * milliseconds; a bare whole number is milliseconds, as the `-ms` flags always took. null when
 * the text is not one.
 */
export function parseDurationMs(text: string): number | null {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(trimmed)) return null;
  let ms = 0;
  for (const [, amount, , unit] of trimmed.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) {
    ms += Number(amount) * (UNIT_MS[unit as string] as number);
  }
  return Number.isSafeInteger(ms) ? ms : null;
}

/** A duration flag above 0, in milliseconds, or `fallback` when absent. */
export function durationMs(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = parseDurationMs(value);
  if (ms === null || ms < 1) {
    throw new QuorateError(
      ErrorCode.Config,
      `--${flag} must be a duration above 0 such as 5s, 250ms or 1m (a bare number is milliseconds; got '${value}')`,
    );
  }
  return ms;
}
