import { describe, expect, it } from "vitest";
import { LearnerLog } from "../src/internal.js";
import { b, command } from "./helpers.js";

describe("learner log", () => {
  it("a learner's value for a (slot, ballot) never changes, and a slot is chosen once", () => {
    const log = new LearnerLog({ applied: 0, checkpoint: null, firstSeq: 1 });
    log.record(1, b(1, "p1"), null, command("1"));
    log.record(1, b(2, "p2"), null, command("2"));
    expect(() => log.record(1, b(1, "p1"), "a1", command("2"))).toThrow(
      /invariant violated: learner saw two values for slot 1 at ballot \[1,p1\]/,
    );
    log.choose(1, command("1"));
    expect(() => log.choose(1, command("1"))).toThrow(/invariant violated: learner chose slot 1 again/);
  });

  it("counts each acceptor's vote once per (slot, ballot), and knows the value once the p2a arrived", () => {
    const log = new LearnerLog({ applied: 0, checkpoint: null, firstSeq: 1 });
    expect(log.record(1, b(1, "p1"), "a1", null)).toEqual({ value: null, voters: 1 });
    expect(log.record(1, b(1, "p1"), "a1", null)).toEqual({ value: null, voters: 1 });
    expect(log.record(1, b(2, "p2"), "a2", null)).toEqual({ value: null, voters: 1 });
    expect(log.record(1, b(1, "p1"), null, command("x"))).toEqual({ value: command("x"), voters: 1 });
    expect(log.record(1, b(1, "p1"), "a2", null)).toEqual({ value: command("x"), voters: 2 });
  });
});
