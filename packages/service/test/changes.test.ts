import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, isQuorateError, object, packValue, uint, unpackValue, type Validator } from "@quorate/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ChangeSubscription, publishChanges, type RevisionedChange } from "../src/index.js";

interface CountChange extends RevisionedChange {
  readonly count: number;
}
const countChange: Validator<CountChange> = object({ previous: uint, revision: uint, count: uint });

type Callback = (err: Error | null, msg: { data: Uint8Array }) => void;

/** A NATS connection that delivers each publication to the subscriptions of its subject, at once. */
function loopbackConnection() {
  const subscribers = new Map<string, Set<Callback>>();
  const published: { subject: string; data: unknown }[] = [];
  let closed = false;
  const nc = {
    isClosed: () => closed,
    isDraining: () => false,
    publish(subject: string, data: Uint8Array) {
      published.push({ subject, data: unpackValue(data) });
      for (const callback of subscribers.get(subject) ?? []) callback(null, { data });
    },
    subscribe(subject: string, options: { callback: Callback }) {
      const set = subscribers.get(subject) ?? new Set<Callback>();
      set.add(options.callback);
      subscribers.set(subject, set);
      return { unsubscribe: () => set.delete(options.callback) };
    },
  };
  return {
    nc: nc as unknown as NatsConnection,
    published,
    subscriberCount: (subject: string) => subscribers.get(subject)?.size ?? 0,
    close: () => {
      closed = true;
    },
  };
}

/** A state machine that counts: each change adds one. */
function counter() {
  const listeners = new Set<(change: CountChange) => void>();
  let revision = 0;
  return {
    get revision() {
      return revision;
    },
    onChange(listener: (change: CountChange) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    apply() {
      const change = { previous: revision, revision: revision + 1, count: revision + 1 };
      revision += 1;
      for (const listener of listeners) listener(change);
    },
    listenerCount: () => listeners.size,
  };
}

const SUBJECT = "quorate.unit.counter-watch.b.n1";
const heartbeat = (revision: number): CountChange => ({ previous: revision, revision, count: revision });

afterEach(() => {
  vi.useRealTimers();
});

describe("change feed", () => {
  it("a subscription receives every applied change, in order, on the member's subject", async () => {
    const { nc } = loopbackConnection();
    const source = counter();
    const publisher = publishChanges({ nc, subject: SUBJECT, source, heartbeat, heartbeatMs: 60_000 });
    const subscription = new ChangeSubscription({ nc, subject: SUBJECT, accepts: countChange, maxQueue: 10 });
    source.apply();
    source.apply();
    expect(await subscription.next(1_000)).toEqual({ previous: 0, revision: 1, count: 1 });
    expect(await subscription.next(1_000)).toEqual({ previous: 1, revision: 2, count: 2 });
    expect(await subscription.next(10)).toBe("idle");
    publisher.close();
    subscription.close();
  });

  it("the publisher sends a heartbeat at the source's revision while nothing changes, and stops on close", () => {
    vi.useFakeTimers();
    const { nc, published } = loopbackConnection();
    const source = counter();
    source.apply();
    const publisher = publishChanges({ nc, subject: SUBJECT, source, heartbeat, heartbeatMs: 100 });
    vi.advanceTimersByTime(250);
    expect(published).toEqual([
      { subject: SUBJECT, data: heartbeat(1) },
      { subject: SUBJECT, data: heartbeat(1) },
    ]);
    publisher.close();
    expect(source.listenerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(published).toHaveLength(2);
  });

  it("with an interest limit, changes go out only within interestMs of the last interested(); heartbeats always", () => {
    vi.useFakeTimers();
    const { nc, published } = loopbackConnection();
    const source = counter();
    const publisher = publishChanges({ nc, subject: SUBJECT, source, heartbeat, heartbeatMs: 100, interestMs: 300 });
    // No one interested yet: the change is not published, the heartbeat shows the revision.
    source.apply();
    vi.advanceTimersByTime(100);
    expect(published.map((p) => p.data)).toEqual([heartbeat(1)]);
    publisher.interested();
    source.apply();
    vi.advanceTimersByTime(250);
    source.apply();
    expect(published.map((p) => p.data)).toEqual([
      heartbeat(1),
      { previous: 1, revision: 2, count: 2 },
      heartbeat(2),
      heartbeat(2),
      { previous: 2, revision: 3, count: 3 },
    ]);
    // The interest lapses 300 ms after it was renewed.
    vi.advanceTimersByTime(100);
    source.apply();
    expect(published.at(-1)?.data).toEqual(heartbeat(3));
    publisher.interested();
    source.apply();
    expect(published.at(-1)?.data).toEqual({ previous: 4, revision: 5, count: 5 });
    publisher.close();
  });

  it("publishing on a closed connection is skipped", () => {
    const { nc, published, close } = loopbackConnection();
    const source = counter();
    const publisher = publishChanges({ nc, subject: SUBJECT, source, heartbeat, heartbeatMs: 60_000 });
    close();
    source.apply();
    expect(published).toHaveLength(0);
    publisher.close();
  });

  it("malformed publications are dropped; a full queue is dropped and reported as overflow", async () => {
    const { nc } = loopbackConnection();
    const subscription = new ChangeSubscription({ nc, subject: SUBJECT, accepts: countChange, maxQueue: 2 });
    nc.publish(SUBJECT, packValue({ previous: 0, revision: "one" }));
    nc.publish(SUBJECT, new Uint8Array([0xc1]));
    nc.publish(SUBJECT, packValue(heartbeat(3)));
    expect(await subscription.next(1_000)).toEqual(heartbeat(3));
    for (let revision = 4; revision <= 6; revision++) nc.publish(SUBJECT, packValue(heartbeat(revision)));
    expect(await subscription.next(1_000)).toBe("overflow");
    expect(await subscription.next(10)).toBe("idle");
    subscription.close();
  });

  it("closing a subscription unsubscribes, wakes a waiting consumer with closed, and calls onClose once", async () => {
    const { nc, subscriberCount } = loopbackConnection();
    const onClose = vi.fn();
    const subscription = new ChangeSubscription({ nc, subject: SUBJECT, accepts: countChange, maxQueue: 2, onClose });
    expect(subscriberCount(SUBJECT)).toBe(1);
    const waiting = subscription.next(60_000);
    subscription.close();
    subscription.close();
    expect(await waiting).toBe("closed");
    expect(await subscription.next(60_000)).toBe("closed");
    expect(subscriberCount(SUBJECT)).toBe(0);
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it("rejects a heartbeat interval or queue limit that is not a positive integer", () => {
    const { nc } = loopbackConnection();
    const source = counter();
    const config = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return isQuorateError(err) ? err.code : err;
      }
      return null;
    };
    expect(config(() => publishChanges({ nc, subject: SUBJECT, source, heartbeat, heartbeatMs: 0 }))).toBe(
      ErrorCode.Config,
    );
    expect(
      config(() => publishChanges({ nc, subject: SUBJECT, source, heartbeat, heartbeatMs: 10, interestMs: -1 })),
    ).toBe(ErrorCode.Config);
    expect(config(() => new ChangeSubscription({ nc, subject: SUBJECT, accepts: countChange, maxQueue: 0.5 }))).toBe(
      ErrorCode.Config,
    );
    expect(source.listenerCount()).toBe(0);
  });
});
