import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { afterEach, describe, expect, it } from "vitest";
import {
  DurablePipeline,
  encodeFrame,
  FrameReceiver,
  markTimeline,
  silentLogger,
  TIMELINE_CHANNEL,
  type TimelineMark,
  type Transport,
  timelineActive,
} from "../src/internal.js";
import "../../../test/contract/probe-message.js";

const listeners: ((mark: unknown) => void)[] = [];
afterEach(() => {
  for (const listener of listeners.splice(0)) unsubscribe(TIMELINE_CHANNEL, listener);
});

/** Subscribes for the rest of the test; what arrives goes to `into` (with `log`, in one order with other events). */
function record(into: string[] = [], marks: TimelineMark[] = []) {
  const listener = (mark: unknown) => {
    marks.push(mark as TimelineMark);
    into.push(`mark ${(mark as TimelineMark).what}`);
  };
  listeners.push(listener);
  subscribe(TIMELINE_CHANNEL, listener);
  return { log: into, marks };
}

describe("timeline channel", () => {
  it("is inactive with no subscriber, and a mark then builds nothing and throws nothing", () => {
    expect(timelineActive()).toBe(false);
    expect(() => markTimeline("n1", "commit", 3)).not.toThrow();
  });

  it("publishes each mark with its member, step, detail and a sub-millisecond Unix time, in order", () => {
    const { marks } = record();
    expect(timelineActive()).toBe(true);
    const before = performance.timeOrigin + performance.now();
    markTimeline("n1", "commit", 3);
    markTimeline("n2", "apply");
    const after = performance.timeOrigin + performance.now();
    expect(marks.map((m) => [m.member, m.what, m.detail])).toEqual([
      ["n1", "commit", 3],
      ["n2", "apply", undefined],
    ]);
    expect(marks[0]?.atMs).toBeGreaterThanOrEqual(before);
    expect(marks[1]?.atMs).toBeGreaterThanOrEqual(marks[0]?.atMs as number);
    expect(marks[1]?.atMs).toBeLessThanOrEqual(after);
  });

  it("a durable write is marked when it starts and when it is durable, before the messages held for it leave", async () => {
    const { log } = record();
    let done: () => void = () => {};
    const transport = {
      self: "n1",
      send: (to: string, type: string) => log.push(`send ${to} ${type}`),
      broadcast: () => {},
    } as unknown as Transport;
    let changed = true;
    const pipeline = new DurablePipeline({
      transport,
      startWrite: () => {
        if (!changed) return null;
        changed = false;
        return { done: new Promise<void>((resolve) => (done = resolve)) };
      },
      writeFailed: () => {},
      sending: () => undefined,
    });
    pipeline.push([{ to: "n2", type: "test.probe", body: { seq: 1 }, afterPersist: true }]);
    pipeline.flush();
    expect(log).toEqual(["mark write.start"]);
    done();
    await new Promise((r) => setTimeout(r, 0));
    expect(log).toEqual(["mark write.start", "mark write.durable", "send n2 test.probe"]);
  });

  it("a received frame is marked with its type once accepted, and a dropped one is not", () => {
    const { marks } = record();
    const receiver = new FrameReceiver({ cluster: "c", group: "g", self: "n1" }, silentLogger, 1024, () => 0);
    receiver.listen(() => {});
    receiver.receive(encodeFrame("c", "g", "n2", "test.probe", { seq: 1 }), "n2", undefined);
    receiver.receive(encodeFrame("c", "g", "n3", "test.probe", { seq: 1 }), "n2", undefined);
    receiver.receive(new Uint8Array([1, 2, 3]), "n2", undefined);
    expect(marks.map((m) => [m.member, m.what])).toEqual([["n1", "receive test.probe"]]);
    expect(receiver.stats.received).toBe(1);
  });
});
