import { describe, expect, it } from "vitest";
import {
  DurablePipeline,
  type DurableWrite,
  ErrorCode,
  emptyStats,
  HostLifecycle,
  isQuorateError,
  type Logger,
  type MessageMap,
  type MessageType,
  type NodeId,
  type OutboundMessage,
  PendingLimit,
  RequestBatches,
  requireBelow,
  requirePositiveIntegers,
  type Transport,
} from "../src/internal.js";
import "../../../test/contract/probe-message.js";

/** A transport that records the type of each message sent, in order. */
function recordingTransport(): Transport & { sent: string[] } {
  const sent: string[] = [];
  return {
    self: "n1",
    cluster: "test",
    group: "g",
    stats: emptyStats(),
    sent,
    broadcast<T extends MessageType>(type: T, _body: MessageMap[T]) {
      sent.push(`*:${type}`);
    },
    send<T extends MessageType>(to: NodeId, type: T, _body: MessageMap[T]) {
      sent.push(`${to}:${type}`);
    },
    listen() {},
    async close() {},
  } as Transport & { sent: string[] };
}

function message(to: NodeId | null, afterPersist: boolean): OutboundMessage {
  return { to, type: "test.probe", body: { seq: 1 }, afterPersist };
}

/** A pipeline whose writes the test makes durable (or fails) by hand. */
function handPipeline() {
  const transport = recordingTransport();
  const writes: { resolve: () => void; reject: (err: Error) => void; changes: number }[] = [];
  const durable: number[] = [];
  const failures: Error[] = [];
  let changes = 0;
  const pipeline = new DurablePipeline({
    transport,
    startWrite: (): DurableWrite | null => {
      if (changes === 0) return null;
      const write = { changes, resolve: () => {}, reject: (_: Error) => {} };
      changes = 0;
      const done = new Promise<void>((resolve, reject) => Object.assign(write, { resolve, reject }));
      writes.push(write);
      return { done, durable: () => durable.push(write.changes) };
    },
    writeFailed: (err) => failures.push(err),
    sending: () => undefined,
  });
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { transport, pipeline, writes, durable, failures, settle, change: () => changes++ };
}

describe("DurablePipeline: durable before visible, one write in flight", () => {
  it("sends a message that needs no durability at once, and holds one that does until its write is durable", async () => {
    const { transport, pipeline, writes, settle, change } = handPipeline();
    change();
    pipeline.push([message("a", true), message("b", false)]);
    pipeline.flush();
    expect(transport.sent).toEqual(["b:test.probe"]);
    expect(pipeline.idle).toBe(false);
    writes[0]?.resolve();
    await settle();
    expect(transport.sent).toEqual(["b:test.probe", "a:test.probe"]);
    expect(pipeline.idle).toBe(true);
  });

  it("starts no second write while one is in flight: changes made meanwhile go out together in the next, in order", async () => {
    const { pipeline, writes, durable, settle, change } = handPipeline();
    change();
    pipeline.flush();
    change();
    pipeline.flush();
    change();
    pipeline.flush();
    expect(writes).toHaveLength(1);
    writes[0]?.resolve();
    await settle();
    expect(writes).toHaveLength(2);
    expect(writes[1]?.changes).toBe(2);
    writes[1]?.resolve();
    await settle();
    expect(durable).toEqual([1, 2]);
  });

  it("a message held for a later write waits for that write, not the one already in flight", async () => {
    const { transport, pipeline, writes, settle, change } = handPipeline();
    change();
    pipeline.flush();
    change();
    pipeline.push([message("late", true)]);
    pipeline.flush();
    writes[0]?.resolve();
    await settle();
    expect(transport.sent).toEqual([]);
    writes[1]?.resolve();
    await settle();
    expect(transport.sent).toEqual(["late:test.probe"]);
  });

  it("with nothing to write, releases held messages at once", () => {
    const { transport, pipeline } = handPipeline();
    pipeline.push([message(null, true)]);
    pipeline.flush();
    expect(transport.sent).toEqual(["*:test.probe"]);
  });

  it("a failed write closes the pipeline and reports once: its held messages never leave", async () => {
    const { transport, pipeline, writes, failures, settle, change } = handPipeline();
    change();
    pipeline.push([message("a", true)]);
    pipeline.flush();
    writes[0]?.reject(new Error("disk gone"));
    await settle();
    expect(failures.map((e) => e.message)).toEqual(["disk gone"]);
    change();
    pipeline.push([message("b", false)]);
    pipeline.flush();
    expect(writes).toHaveLength(1);
    expect(transport.sent).toEqual([]);
    await pipeline.writeSettled();
  });

  it("once closed, a write that completes releases nothing and runs no durable hook", async () => {
    const { transport, pipeline, writes, durable, settle, change } = handPipeline();
    change();
    pipeline.push([message("a", true)]);
    pipeline.flush();
    pipeline.close();
    writes[0]?.resolve();
    await pipeline.writeSettled();
    await settle();
    expect(transport.sent).toEqual([]);
    expect(durable).toEqual([]);
  });
});

describe("PendingLimit: a bound on the requests a host holds", () => {
  it("refuses one more than the limit at once with Busy, naming the option, and frees a place as a request settles", async () => {
    const limit = new PendingLimit("raft node n1", "proposals", "maxPendingProposals", 2);
    const resolvers: ((v: number) => void)[] = [];
    const first = limit.admit<number>(null, (resolve) => resolvers.push(resolve));
    limit.admit<number>(null, (resolve) => resolvers.push(resolve));
    const err = await limit.admit<number>(null, () => {}).catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.Busy)).toBe(true);
    expect((err as Error).message).toContain("maxPendingProposals");
    expect(limit.pending).toBe(2);
    resolvers[0]?.(7);
    expect(await first).toBe(7);
    expect(limit.pending).toBe(1);
    limit.admit<number>(null, (_resolve, reject) => reject(new Error("no"))).catch(() => undefined);
    expect(limit.pending).toBe(1);
  });

  it("refuses with the host's closed error before counting anything", async () => {
    const limit = new PendingLimit("learner l1", "reads", "maxPendingReads", 1);
    const closed = new Error("closed");
    await expect(limit.admit(closed, () => {})).rejects.toBe(closed);
    expect(limit.pending).toBe(0);
  });
});

describe("RequestBatches: every request queued or handed to the machine settles", () => {
  it("hands queued requests over as one batch, returns them once answered, and fails all that remain", () => {
    const failed: string[] = [];
    const waiter = (name: string) => ({ name, reject: () => failed.push(name) });
    const batches = new RequestBatches<ReturnType<typeof waiter>>("proposals", 3);
    batches.push(waiter("a"));
    batches.push(waiter("b"));
    expect(batches.take(1).map((w) => w.name)).toEqual(["a", "b"]);
    batches.push(waiter("c"));
    expect(batches.size).toBe(3);
    expect(() => batches.push(waiter("d"))).toThrow(/more than 3 proposals/);
    expect(batches.answered(1).map((w) => w.name)).toEqual(["a", "b"]);
    expect(batches.answered(1)).toEqual([]);
    batches.take(2);
    batches.push(waiter("e"));
    batches.failAll(new Error("stopped"));
    expect(failed).toEqual(["c", "e"]);
    expect(batches.size).toBe(0);
  });
});

describe("HostLifecycle: start, stop, fail", () => {
  function lifecycle() {
    const halts: string[] = [];
    const logged: string[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn() {},
      error: (message) => logged.push(message),
    };
    const life = new HostLifecycle("learner", "l1", logger, (reason) => halts.push(reason.message));
    return { life, halts, logged };
  }

  it("halts once on stop, and refuses requests afterwards as Closed", () => {
    const { life, halts } = lifecycle();
    expect(life.closedError()).toBeNull();
    expect(life.stop("stopped")).toBe(true);
    expect(life.stop("was killed")).toBe(false);
    expect(halts).toEqual(["learner l1 stopped"]);
    expect(isQuorateError(life.closedError(), ErrorCode.Closed)).toBe(true);
  });

  it("a failure is logged, halts with the cause, and only the first one counts", () => {
    const { life, halts, logged } = lifecycle();
    life.fail(new Error("disk gone"), "learner storage");
    life.fail(new Error("second"));
    expect(logged).toEqual(["learner storage failed; stopping"]);
    expect(halts).toEqual(["learner l1 failed: disk gone"]);
    expect(life.failure?.message).toBe("disk gone");
    expect(life.closedError()?.cause).toBe(life.failure);
  });

  it("step drains after the machine's step, but not after a step that failed the host, nor once stopped", () => {
    const { life } = lifecycle();
    const ran: string[] = [];
    life.step(
      () => ran.push("send 1"),
      () => ran.push("drain 1"),
    );
    life.step(
      () => life.fail(new Error("a rule threw")),
      () => ran.push("drain 2"),
    );
    life.step(
      () => ran.push("send 3"),
      () => ran.push("drain 3"),
    );
    expect(ran).toEqual(["send 1", "drain 1"]);
  });

  it("a failure after a stop is recorded but halts nothing again", () => {
    const { life, halts } = lifecycle();
    life.stop("was killed");
    life.fail(new Error("late write failed"));
    expect(halts).toEqual(["learner l1 was killed"]);
    expect(life.failure?.message).toBe("late write failed");
  });
});

describe("option checks", () => {
  it("requirePositiveIntegers accepts flags and positive integers, and names the option it refuses", () => {
    expect(() => requirePositiveIntegers("raft option", { a: 1, flag: true })).not.toThrow();
    for (const bad of [0, -1, 1.5, Number.NaN, "3"]) {
      const err = (() => {
        try {
          requirePositiveIntegers("raft option", { a: 1, ticks: bad });
        } catch (e) {
          return e;
        }
      })();
      expect(isQuorateError(err, ErrorCode.Config)).toBe(true);
      expect((err as Error).message).toContain("raft option ticks");
    }
  });

  it("requireBelow refuses a value at or above its bound", () => {
    expect(() => requireBelow("heartbeatTicks", 1, "electionTicks", 10)).not.toThrow();
    expect(() => requireBelow("heartbeatTicks", 10, "electionTicks", 10)).toThrow(
      "heartbeatTicks (10) must be below electionTicks (10)",
    );
  });
});
