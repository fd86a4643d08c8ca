import type { Timers } from "@quorate/core";
import { Ticker } from "@quorate/core/internal";
import { describe, expect, it } from "vitest";
import { SharedTimers } from "../src/index.js";

/** Timers driven by hand: `advance` moves the clock and fires due intervals, counting the ones set. */
function manualTimers() {
  let nowMs = 0;
  const intervals = new Map<number, { callback: () => void; periodMs: number; nextMs: number }>();
  let nextHandle = 1;
  const timers: Timers = {
    now: () => nowMs,
    setInterval(callback, periodMs) {
      const handle = nextHandle++;
      intervals.set(handle, { callback, periodMs, nextMs: nowMs + periodMs });
      return handle;
    },
    clearInterval: (handle) => intervals.delete(handle as number),
    setTimeout: () => {
      throw new Error("not used");
    },
    clearTimeout: () => undefined,
  };
  return {
    timers,
    get running() {
      return intervals.size;
    },
    /** Moves the clock by `ms` without firing anything (a paused process), then fires each due interval once. */
    pauseThenWake(ms: number) {
      nowMs += ms;
      for (const interval of [...intervals.values()]) {
        if (interval.nextMs > nowMs) continue;
        interval.nextMs = nowMs + interval.periodMs;
        interval.callback();
      }
    },
  };
}

describe("SharedTimers", () => {
  it("runs the intervals of one period on one underlying timer, and frees it with the last", () => {
    const base = manualTimers();
    const shared = new SharedTimers(base.timers);
    const fired: number[] = [];
    const handles = [0, 1, 2, 3].map((i) => shared.setInterval(() => fired.push(i), 50));
    const other = shared.setInterval(() => fired.push(99), 1000);
    expect(base.running).toBe(2);
    expect(shared.intervalCount).toBe(2);
    base.pauseThenWake(50);
    expect(fired).toEqual([0, 1, 2, 3]);
    for (const handle of handles) shared.clearInterval(handle);
    expect(base.running).toBe(1);
    shared.clearInterval(other);
    expect(base.running).toBe(0);
  });

  it("catches every group's ticker up on the ticks a pause cost, from one wake-up", () => {
    const base = manualTimers();
    const shared = new SharedTimers(base.timers);
    const ticks = [0, 0, 0];
    const tickers = ticks.map((_, i) => new Ticker(shared, 50, 100, () => ticks[i]!++));
    for (const ticker of tickers) ticker.start();
    base.pauseThenWake(50 * 7);
    expect(ticks).toEqual([7, 7, 7]);
    for (const ticker of tickers) ticker.stop();
    expect(base.running).toBe(0);
  });

  it("runs every callback when one throws, then throws that error", () => {
    const base = manualTimers();
    const shared = new SharedTimers(base.timers);
    const fired: string[] = [];
    shared.setInterval(() => {
      fired.push("a");
      throw new Error("group a failed");
    }, 50);
    shared.setInterval(() => fired.push("b"), 50);
    expect(() => base.pauseThenWake(50)).toThrow("group a failed");
    expect(fired).toEqual(["a", "b"]);
  });
});
