import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type {
  Msg,
  MsgCallback,
  MsgHdrs,
  NatsConnection,
  PublishOptions,
  SubscriptionOptions,
} from "@nats-io/transport-node";
import { headers as createMsgHdrs } from "@nats-io/transport-node";
import { ErrorCode, encodeFrame, type Inbound, isQuorateError, type Logger } from "@quorate/core";
import { TIMELINE_CHANNEL, type TimelineMark } from "@quorate/core/internal";
import { describe, expect, it } from "vitest";
import "../../../test/contract/probe-message.js";
import { ColocatedTransports, createNatsTransport, type NatsTransport } from "../src/index.js";

/** Records publishes and lets a test push messages into subscription callbacks synchronously. */
class FakeConnection {
  readonly published: { subject: string; data: Uint8Array; options: PublishOptions | undefined }[] = [];
  readonly subscriptions = new Map<string, { callback: MsgCallback<Msg>; unsubscribed: boolean }>();
  closed = false;
  draining = false;
  flushes = 0;
  publishError: Error | undefined;
  flushNever = false;

  publish(subject: string, data: Uint8Array, options?: PublishOptions): void {
    if (this.publishError) throw this.publishError;
    this.published.push({ subject, data, options });
  }
  subscribe(subject: string, opts: SubscriptionOptions) {
    if (this.closed) throw new Error("closed");
    const entry = { callback: opts.callback as MsgCallback<Msg>, unsubscribed: false };
    this.subscriptions.set(subject, entry);
    return {
      unsubscribe: () => {
        entry.unsubscribed = true;
      },
    };
  }
  flush(): Promise<void> {
    this.flushes++;
    return this.flushNever ? new Promise(() => {}) : Promise.resolve();
  }
  async drain(): Promise<void> {
    this.draining = true;
    await this.flush();
    this.closed = true;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  isClosed(): boolean {
    return this.closed;
  }
  getServer(): string {
    return "nats-0.nats:4222";
  }

  /** Delivers as the client would: on the wildcard subscription matching `subject`. */
  deliver(subject: string, data: Uint8Array, hdrs?: MsgHdrs): void {
    const kind = subject.split(".")[3];
    const wildcard =
      kind === "b" ? subject.replace(/[^.]+$/, "*") : subject.split(".").slice(0, 5).join(".").concat(".*");
    const sub = this.subscriptions.get(wildcard);
    if (sub === undefined || sub.unsubscribed) return;
    sub.callback(null, { subject, data, headers: hdrs } as Msg);
  }

  /** Hands every published frame to `other`, as a server would. */
  forwardTo(other: FakeConnection): void {
    for (const p of this.published.splice(0)) other.deliver(p.subject, p.data, p.options?.headers);
  }
}

function records(): { logger: Logger; lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at =
    (level: string) =>
    (message: string): void => {
      lines.push({ level, message });
    };
  return { logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }, lines };
}

function pair(options: { ownsConnection?: boolean; maxFrameBytes?: number; closeTimeoutMs?: number } = {}) {
  const ncA = new FakeConnection();
  const ncB = new FakeConnection();
  const log = records();
  const make = (nc: FakeConnection, self: string): NatsTransport =>
    createNatsTransport({
      nc: nc as unknown as NatsConnection,
      cluster: "c1",
      group: "g1",
      self,
      logger: log.logger,
      ...options,
    });
  const a = make(ncA, "a");
  const b = make(ncB, "b");
  const inbox: Inbound[] = [];
  b.listen((m) => inbox.push(m));
  return { ncA, ncB, a, b, inbox, log };
}

describe("NatsTransport", () => {
  it("subscribes to its broadcast and direct wildcards, with callbacks", () => {
    const { ncA } = pair();
    expect([...ncA.subscriptions.keys()]).toEqual(["quorate.c1.g1.b.*", "quorate.c1.g1.d.a.*"]);
  });

  it("publishes on the sender's subjects and builds headers only when given", () => {
    const { ncA, a } = pair();
    a.broadcast("test.probe", { seq: 1 });
    a.send("b", "test.probe", { seq: 2 }, { traceparent: "t" });
    a.send("b", "test.probe", { seq: 3 }, {});
    expect(ncA.published.map((p) => p.subject)).toEqual([
      "quorate.c1.g1.b.a",
      "quorate.c1.g1.d.b.a",
      "quorate.c1.g1.d.b.a",
    ]);
    expect(ncA.published[0]?.options).toBeUndefined();
    expect(ncA.published[1]?.options?.headers?.get("traceparent")).toBe("t");
    expect(ncA.published[2]?.options).toBeUndefined();
    expect(a.stats.sent).toBe(3);
  });

  it("marks each frame it publishes and each it delivers on the timeline channel", () => {
    const { ncA, ncB, a } = pair();
    const marks: string[] = [];
    const listener = (mark: unknown) => marks.push(`${(mark as TimelineMark).member} ${(mark as TimelineMark).what}`);
    subscribe(TIMELINE_CHANNEL, listener);
    try {
      a.send("b", "test.probe", { seq: 1 });
      ncA.forwardTo(ncB);
    } finally {
      unsubscribe(TIMELINE_CHANNEL, listener);
    }
    expect(marks).toEqual(["a send test.probe", "b receive test.probe"]);
  });

  it("tells telemetry the server it is connected to, and nothing once the connection is closed", async () => {
    const { ncA, a } = pair();
    expect(a.serverAddress()).toBe("nats-0.nats:4222");
    await ncA.close();
    expect(a.serverAddress()).toBeUndefined();
  });

  it("hands an inbound frame to the listener synchronously, inside the client's callback", () => {
    const { ncA, ncB, a, inbox } = pair();
    a.send("b", "test.probe", { seq: 5 }, { traceparent: "t" });
    ncA.forwardTo(ncB);
    // No await between the callback and this line.
    expect(inbox).toEqual([
      {
        cluster: "c1",
        group: "g1",
        sender: "a",
        type: "test.probe",
        body: { seq: 5 },
        headers: { traceparent: "t" },
      },
    ]);
  });

  it("treats a header block without keys as no headers", () => {
    const { ncB, inbox } = pair();
    const frame = encodeFrame("c1", "g1", "a", "test.probe", { seq: 1 });
    ncB.deliver("quorate.c1.g1.d.b.a", frame, createMsgHdrs());
    expect(inbox[0]?.headers).toBeUndefined();
  });

  it("never throws out of the callback: bad frames, handler failures and subscription errors", () => {
    const { ncB, b, inbox, log } = pair();
    expect(() => ncB.deliver("quorate.c1.g1.b.a", new Uint8Array([0xc1]))).not.toThrow();
    expect(b.stats.dropped.malformed).toBe(1);

    b.listen(() => {
      throw new Error("handler bug");
    });
    const frame = encodeFrame("c1", "g1", "a", "test.probe", { seq: 1 });
    expect(() => ncB.deliver("quorate.c1.g1.b.a", frame)).not.toThrow();
    expect(b.stats.handlerErrors).toBe(1);

    const sub = ncB.subscriptions.get("quorate.c1.g1.b.*");
    expect(() => sub?.callback(new Error("permissions violation"), {} as Msg)).not.toThrow();
    expect(log.lines.some((l) => l.level === "error" && l.message === "NATS subscription ended")).toBe(true);
    expect(inbox).toEqual([]);
  });

  it("counts, logs and skips a send the client refuses, without throwing", () => {
    const { ncA, a, log } = pair({ maxFrameBytes: 256 });
    a.send("b", "test.probe", { seq: 1, data: new Uint8Array(300) });
    ncA.publishError = new Error("connection closed");
    a.broadcast("test.probe", { seq: 1 });
    expect(ncA.published).toEqual([]);
    expect(a.stats.sendErrors).toBe(2);
    expect(a.stats.sent).toBe(0);
    expect(log.lines.filter((l) => l.message === "send failed")).toHaveLength(2);
  });

  it("rejects invalid names with Config errors", () => {
    const nc = new FakeConnection() as unknown as NatsConnection;
    const bad = [
      { cluster: "c.1", group: "g", self: "a" },
      { cluster: "c", group: "g*", self: "a" },
      { cluster: "c", group: "g", self: "" },
      { cluster: "c", group: "g", self: "a", prefix: "q.>" },
      { cluster: "c", group: "g", self: "a", maxFrameBytes: 0 },
    ];
    for (const options of bad) {
      expect(() => createNatsTransport({ nc, ...options }), JSON.stringify(options)).toThrow(
        expect.objectContaining({ code: ErrorCode.Config }),
      );
    }
    const t = createNatsTransport({ nc, cluster: "c", group: "g", self: "a", prefix: "acme.quorate" });
    expect(() => t.send("x.y", "test.probe", { seq: 1 })).toThrow(expect.objectContaining({ code: ErrorCode.Config }));
  });

  it("fails with Closed when the connection is closed", () => {
    const nc = new FakeConnection();
    nc.closed = true;
    let error: unknown;
    try {
      createNatsTransport({ nc: nc as unknown as NatsConnection, cluster: "c", group: "g", self: "a" });
    } catch (err) {
      error = err;
    }
    expect(isQuorateError(error, ErrorCode.Closed)).toBe(true);
  });

  it("close() unsubscribes, flushes a shared connection, and stops delivery and sends", async () => {
    const { ncB, b, inbox } = pair();
    await b.close();
    await b.close();
    expect([...ncB.subscriptions.values()].every((s) => s.unsubscribed)).toBe(true);
    expect(ncB.flushes).toBe(1);
    expect(ncB.closed).toBe(false);
    b.broadcast("test.probe", { seq: 1 });
    expect(ncB.published).toEqual([]);
    expect(b.stats.sendErrors).toBe(0);
    // A frame already inside the client when close() was called.
    const frame = encodeFrame("c1", "g1", "a", "test.probe", { seq: 1 });
    for (const sub of ncB.subscriptions.values())
      sub.callback(null, { subject: "quorate.c1.g1.b.a", data: frame } as Msg);
    expect(inbox).toEqual([]);
  });

  it("close() drains an owned connection", async () => {
    const { ncB, b } = pair({ ownsConnection: true });
    await b.close();
    expect(ncB.draining).toBe(true);
    expect(ncB.closed).toBe(true);
  });

  it("close() is bounded when the server does not answer", async () => {
    const { ncB, b, log } = pair({ ownsConnection: true, closeTimeoutMs: 50 });
    ncB.flushNever = true;
    const started = Date.now();
    await b.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(ncB.closed).toBe(true);
    expect(log.lines.some((l) => l.message === "NATS flush on close did not complete")).toBe(true);
  });
});

describe("NatsTransport: colocated transports", () => {
  function colocated(options: { maxFrameBytes?: number } = {}) {
    const nc = new FakeConnection();
    const log = records();
    const registry = new ColocatedTransports();
    const make = (self: string, group = "g1"): NatsTransport =>
      createNatsTransport({
        nc: nc as unknown as NatsConnection,
        cluster: "c1",
        group,
        self,
        logger: log.logger,
        colocated: registry,
        ...options,
      });
    const learner = make("n1-learner");
    const proposer = make("n1-proposer");
    const inbox: Inbound[] = [];
    proposer.listen((m) => inbox.push(m));
    return { nc, log, make, learner, proposer, inbox };
  }

  it("hands a directed frame to a colocated transport without the server, in a later microtask, validated", async () => {
    const { nc, learner, proposer, inbox } = colocated();
    learner.send("n1-proposer", "test.probe", { seq: 1 }, { traceparent: "t" });
    learner.send("n1-proposer", "test.probe", { seq: 2 });
    // Not inside the sender's call: the sender's host finishes its step first.
    expect(inbox).toHaveLength(0);
    await Promise.resolve();
    expect(nc.published).toHaveLength(0);
    expect(inbox.map((m) => [m.sender, m.type, m.body, m.headers])).toEqual([
      ["n1-learner", "test.probe", { seq: 1 }, { traceparent: "t" }],
      ["n1-learner", "test.probe", { seq: 2 }, undefined],
    ]);
    expect([learner.stats.sent, proposer.stats.received]).toEqual([2, 2]);
    // An invalid body is dropped by the receiver's validation, as from the wire.
    learner.send("n1-proposer", "test.probe", { seq: -1 } as never);
    await Promise.resolve();
    expect(inbox).toHaveLength(2);
    expect(proposer.stats.dropped.invalid).toBe(1);
  });

  it("broadcasts and frames to members elsewhere still go through the server", () => {
    const { nc, learner } = colocated();
    learner.broadcast("test.probe", { seq: 1 });
    learner.send("n2-proposer", "test.probe", { seq: 2 });
    expect(nc.published.map((p) => p.subject)).toEqual([
      "quorate.c1.g1.b.n1-learner",
      "quorate.c1.g1.d.n2-proposer.n1-learner",
    ]);
  });

  it("only the same cluster and group are colocated; a closed transport is not, and its id can register again", async () => {
    const { nc, make, learner, proposer, inbox } = colocated();
    const other = make("n1-proposer", "g2");
    other.send("n1-learner", "test.probe", { seq: 1 });
    expect(nc.published.map((p) => p.subject)).toEqual(["quorate.c1.g2.d.n1-learner.n1-proposer"]);
    expect(() => make("n1-proposer")).toThrow(/already colocated/);
    learner.send("n1-proposer", "test.probe", { seq: 2 });
    await proposer.close();
    await Promise.resolve();
    // Handed over before the close, received after it: dropped, as a closed subscription drops.
    expect(inbox).toHaveLength(0);
    learner.send("n1-proposer", "test.probe", { seq: 3 });
    expect(nc.published.at(-1)?.subject).toBe("quorate.c1.g1.d.n1-proposer.n1-learner");
    const restarted = make("n1-proposer");
    const received: Inbound[] = [];
    restarted.listen((m) => received.push(m));
    learner.send("n1-proposer", "test.probe", { seq: 4 });
    await Promise.resolve();
    expect(received.map((m) => m.body)).toEqual([{ seq: 4 }]);
  });

  it("refuses a frame over maxFrameBytes to a colocated transport as to the server", async () => {
    const { learner, inbox } = colocated({ maxFrameBytes: 64 });
    learner.send("n1-proposer", "test.probe", { seq: 1, data: new Uint8Array(100) });
    await Promise.resolve();
    expect(inbox).toHaveLength(0);
    expect(learner.stats.sendErrors).toBe(1);
  });
});
