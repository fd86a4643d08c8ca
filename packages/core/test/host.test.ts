import { describe, expect, it } from "vitest";
import { ErrorCode, isQuorateError, ManualTimers, type Rejectable, TakenRequests, Ticker } from "../src/internal.js";

/** A Ticker on hand-moved timers that counts the ticks it delivers. */
function ticking(periodMs: number, maxCatchUpTicks: number) {
  const timers = new ManualTimers();
  let ticks = 0;
  const ticker = new Ticker(timers, periodMs, maxCatchUpTicks, () => ticks++);
  ticker.start();
  return { timers, ticker, ticks: () => ticks };
}

describe("Ticker: ticks follow the monotonic clock, not the timer callbacks", () => {
  it("delivers one tick per period while callbacks come on time", () => {
    const { timers, ticks } = ticking(10, 100);
    timers.advance(95);
    expect(ticks()).toBe(9);
  });

  it("after a pause, the one overdue callback delivers every period that elapsed", () => {
    const { timers, ticks } = ticking(10, 100);
    timers.advance(10);
    timers.pause(400);
    expect(ticks()).toBe(1);
    timers.advance(0);
    expect(ticks()).toBe(41);
  });

  it("catchUp() delivers the elapsed ticks before the overdue callback runs, and that callback then adds none", () => {
    const { timers, ticker, ticks } = ticking(10, 100);
    timers.pause(250);
    expect(ticker.catchUp()).toBe(25);
    expect(ticks()).toBe(25);
    timers.advance(0);
    expect(ticks()).toBe(25);
  });

  it("keeps the fraction of a period left over for the next tick", () => {
    const { timers, ticker, ticks } = ticking(10, 100);
    timers.pause(15);
    expect(ticker.catchUp()).toBe(1);
    timers.pause(4);
    expect(ticker.catchUp()).toBe(0);
    timers.pause(1);
    expect(ticker.catchUp()).toBe(1);
    expect(ticks()).toBe(2);
  });

  it("delivers at most maxCatchUpTicks after a long pause, then ticks on from the present", () => {
    const { timers, ticker, ticks } = ticking(10, 40);
    timers.pause(1_000_000);
    expect(ticker.catchUp()).toBe(40);
    timers.advance(10);
    expect(ticks()).toBe(41);
  });

  it("delivers nothing once stopped, even if a tick stops it midway through a catch-up", () => {
    const timers = new ManualTimers();
    let ticks = 0;
    const ticker = new Ticker(timers, 10, 100, () => {
      if (++ticks === 3) ticker.stop();
    });
    ticker.start();
    timers.pause(100);
    expect(ticker.catchUp()).toBe(3);
    timers.advance(100);
    expect(ticks).toBe(3);
  });

  it("a tick handler that catches up again finds nothing more due", () => {
    const timers = new ManualTimers();
    let ticks = 0;
    const ticker = new Ticker(timers, 10, 100, () => {
      ticks++;
      ticker.catchUp();
    });
    ticker.start();
    timers.pause(50);
    expect(ticker.catchUp()).toBe(5);
    expect(ticks).toBe(5);
  });

  it("refuses a period or a catch-up limit that could not tick", () => {
    const timers = new ManualTimers();
    expect(() => new Ticker(timers, 0, 10, () => {})).toThrow(/period/);
    expect(() => new Ticker(timers, 10, 0, () => {})).toThrow(/catch-up limit/);
  });
});

describe("ManualTimers", () => {
  it("fires timers in time order; an overdue interval fires once on resume and keeps its period from then", () => {
    const timers = new ManualTimers();
    const fired: string[] = [];
    timers.setInterval(() => fired.push(`i@${timers.now()}`), 10);
    timers.setTimeout(() => fired.push(`t@${timers.now()}`), 15);
    const cleared = timers.setTimeout(() => fired.push("cleared"), 5);
    timers.clearTimeout(cleared);
    timers.advance(20);
    timers.pause(35);
    timers.advance(10);
    expect(fired).toEqual(["i@10", "t@15", "i@20", "i@55", "i@65"]);
  });
});

interface Waiter extends Rejectable {
  readonly name: string;
}

describe("TakenRequests: every waiter settles", () => {
  it("refuses a key another waiter holds, instead of dropping that waiter unsettled", () => {
    const requests = new TakenRequests<number, Waiter>(new ManualTimers(), 1_000, 10);
    const failures: string[] = [];
    requests.add(7, { name: "first", reject: () => failures.push("first") }, "timed out");
    expect(() => requests.add(7, { name: "second", reject: () => failures.push("second") }, "timed out")).toThrow(
      /already waits for 7/,
    );
    expect(requests.take(7)?.name).toBe("first");
    expect(failures).toEqual([]);
  });

  it("refuses a waiter beyond its limit: the host admits no more than that", () => {
    const requests = new TakenRequests<number, Waiter>(new ManualTimers(), 1_000, 2);
    requests.add(1, { name: "one", reject: () => {} }, "timed out");
    requests.add(2, { name: "two", reject: () => {} }, "timed out");
    expect(() => requests.add(3, { name: "three", reject: () => {} }, "timed out")).toThrow(/more than 2 requests/);
    requests.take(1);
    requests.add(3, { name: "three", reject: () => {} }, "timed out");
    expect(requests.size).toBe(2);
  });

  it("fails a waiter as Indeterminate once its timeout passes, and hands back nothing after", () => {
    const timers = new ManualTimers();
    const requests = new TakenRequests<number, Waiter>(timers, 100, 10);
    const errors: Error[] = [];
    requests.add(1, { name: "w", reject: (err) => errors.push(err) }, "not applied in time");
    timers.advance(100);
    expect(errors).toHaveLength(1);
    expect(isQuorateError(errors[0], ErrorCode.Indeterminate)).toBe(true);
    expect(requests.take(1)).toBeUndefined();
    expect(requests.size).toBe(0);
  });
});
