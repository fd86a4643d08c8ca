import { invariant } from "./errors.js";
import type { Timers } from "./host.js";

interface ManualTimer {
  readonly id: number;
  /** Clock time of the next firing. */
  at: number;
  /** Null for a timeout. */
  readonly periodMs: number | null;
  readonly callback: () => void;
}

/**
 * Timers on a clock moved by hand, for tests of hosts: `advance` runs what falls due in time
 * order, as an event loop would; `pause` moves the clock while the process runs nothing (GC,
 * SIGSTOP), after which each overdue interval fires once and then keeps its period from that
 * moment, as Node's do.
 */
export class ManualTimers implements Timers {
  #nowMs = 0;
  #nextId = 1;
  readonly #timers = new Map<number, ManualTimer>();

  now(): number {
    return this.#nowMs;
  }

  setInterval(callback: () => void, ms: number): unknown {
    invariant(ms > 0, `an interval needs a positive period (got ${ms} ms)`);
    return this.#add(callback, ms, ms);
  }

  clearInterval(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  setTimeout(callback: () => void, ms: number): unknown {
    return this.#add(callback, ms, null);
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Moves the clock `ms` forward, firing every timer that falls due on the way, in time order. */
  advance(ms: number): void {
    const until = this.#nowMs + ms;
    for (let next = this.#due(until); next !== undefined; next = this.#due(until)) {
      this.#nowMs = Math.max(this.#nowMs, next.at);
      if (next.periodMs === null) this.#timers.delete(next.id);
      else next.at = this.#nowMs + next.periodMs;
      next.callback();
    }
    this.#nowMs = until;
  }

  /** Moves the clock `ms` forward and fires nothing: the process is paused; `advance` then fires what is overdue. */
  pause(ms: number): void {
    this.#nowMs += ms;
  }

  #add(callback: () => void, ms: number, periodMs: number | null): number {
    const id = this.#nextId++;
    this.#timers.set(id, { id, at: this.#nowMs + ms, periodMs, callback });
    return id;
  }

  /** The earliest timer due by `until`; the one set first among equals. */
  #due(until: number): ManualTimer | undefined {
    let first: ManualTimer | undefined;
    for (const timer of this.#timers.values()) {
      if (timer.at <= until && (first === undefined || timer.at < first.at)) first = timer;
    }
    return first;
  }
}
