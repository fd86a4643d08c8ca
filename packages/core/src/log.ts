/** A minimal structured logger; hosts plug in their own. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** One JSON line per record on stderr, so stdout stays free for command output. */
export function createLogger(
  level: LogLevel = "info",
  bindings: Record<string, unknown> = {},
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  const min = ORDER[level];
  const emit = (lvl: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, message, ...bindings, ...fields }));
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

export const silentLogger: Logger = createLogger("silent");

/**
 * Lets at most `burst` events through per `intervalMs`, and reports how many were suppressed,
 * so a flood of garbage frames cannot flood the log.
 */
export class RateLimiter {
  #windowStart = Number.NEGATIVE_INFINITY;
  #count = 0;
  #suppressed = 0;
  constructor(
    private readonly burst: number,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /** Returns null when the event must be suppressed, else how many were suppressed before it. */
  take(): number | null {
    const t = this.now();
    if (t - this.#windowStart >= this.intervalMs) {
      this.#windowStart = t;
      this.#count = 0;
    }
    if (this.#count >= this.burst) {
      this.#suppressed++;
      return null;
    }
    this.#count++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }
}
