import { realTimers, type Timers } from "@quorate/core";

/** One registered interval callback: the handle setInterval returns. */
interface Registration {
  readonly periodMs: number;
  readonly callback: () => void;
}

interface SharedInterval {
  readonly handle: unknown;
  readonly registrations: Set<Registration>;
}

/**
 * Timers on which every interval of the same period shares one timer of the underlying ones:
 * the tickers of many consensus groups wake the process once per tick, not once per group.
 * Each ticker still counts its ticks on the monotonic clock (`now()`), so one late wake-up
 * catches up every group's missed ticks. Timeouts pass straight through.
 */
export class SharedTimers implements Timers {
  readonly #base: Timers;
  readonly #intervals = new Map<number, SharedInterval>();

  constructor(base: Timers = realTimers) {
    this.#base = base;
  }

  /** Underlying interval timers running now: one per distinct period in use. */
  get intervalCount(): number {
    return this.#intervals.size;
  }

  now(): number {
    return this.#base.now();
  }

  setInterval(callback: () => void, ms: number): unknown {
    let shared = this.#intervals.get(ms);
    if (shared === undefined) {
      const registrations = new Set<Registration>();
      const handle = this.#base.setInterval(() => runAll(registrations), ms);
      shared = { handle, registrations };
      this.#intervals.set(ms, shared);
    }
    const registration: Registration = { periodMs: ms, callback };
    shared.registrations.add(registration);
    return registration;
  }

  clearInterval(handle: unknown): void {
    const registration = handle as Registration;
    const shared = this.#intervals.get(registration.periodMs);
    if (shared === undefined || !shared.registrations.delete(registration)) return;
    if (shared.registrations.size > 0) return;
    this.#base.clearInterval(shared.handle);
    this.#intervals.delete(registration.periodMs);
  }

  setTimeout(callback: () => void, ms: number): unknown {
    return this.#base.setTimeout(callback, ms);
  }

  clearTimeout(handle: unknown): void {
    this.#base.clearTimeout(handle);
  }
}

/**
 * Runs every callback, even when one throws, so that one group's failure does not stop the
 * others' clocks; then rethrows the first error, as its own timer would have.
 */
function runAll(registrations: ReadonlySet<Registration>): void {
  let failure: { error: unknown } | null = null;
  // A copy: a callback may clear its own or another's interval.
  for (const registration of [...registrations]) {
    if (!registrations.has(registration)) continue;
    try {
      registration.callback();
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure !== null) throw failure.error;
}
