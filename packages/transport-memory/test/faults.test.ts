import { encodeFrame, type Inbound } from "@quorate/core";
import { describe, expect, it } from "vitest";
import "../../../test/contract/probe-message.js";
import { MemoryNetwork } from "../src/index.js";

const probe = { seq: 1 };

function cluster(seed: number) {
  let now = 0;
  const network = new MemoryNetwork({ seed, delivery: "manual", now: () => now });
  const scope = { cluster: "c", group: "g" };
  const received: Record<string, Inbound[]> = { a: [], b: [], c: [] };
  const transports = Object.fromEntries(
    ["a", "b", "c"].map((self) => {
      const t = network.connect({ ...scope, self });
      t.listen((m) => received[self]?.push(m));
      return [self, t];
    }),
  );
  const advance = (ms: number): void => {
    now += ms;
  };
  return { network, transports, received, advance };
}

describe("MemoryNetwork faults", () => {
  it("holds frames until their delivery time in manual mode", () => {
    const { network, transports, received, advance } = cluster(1);
    network.setFaults({ minDelayMs: 10, maxDelayMs: 10 });
    transports.a?.broadcast("test.probe", probe);
    expect(network.deliverDue()).toBe(0);
    advance(10);
    expect(network.deliverDue()).toBe(2);
    expect(received.b).toHaveLength(1);
    expect(received.c).toHaveLength(1);
  });

  it("a symmetric partition cuts both directions until healed", () => {
    const { network, transports, received } = cluster(1);
    network.partition(["a"], ["b", "c"]);
    transports.a?.send("b", "test.probe", probe);
    transports.b?.send("a", "test.probe", probe);
    network.deliverDue();
    expect(received.a).toHaveLength(0);
    expect(received.b).toHaveLength(0);
    network.heal();
    transports.a?.send("b", "test.probe", probe);
    network.deliverDue();
    expect(received.b).toHaveLength(1);
  });

  it("an asymmetric block cuts one direction only", () => {
    const { network, transports, received } = cluster(1);
    network.block("a", "b");
    transports.a?.send("b", "test.probe", probe);
    transports.b?.send("a", "test.probe", probe);
    network.deliverDue();
    expect(received.b).toHaveLength(0);
    expect(received.a).toHaveLength(1);
  });

  it("drops and duplicates according to the configured probabilities, deterministically per seed", () => {
    const run = (seed: number) => {
      const { network, transports, received } = cluster(seed);
      network.setFaults({ drop: 0.3, duplicate: 0.3 });
      for (let i = 0; i < 200; i++) transports.a?.send("b", "test.probe", { seq: i });
      network.deliverDue();
      return { got: received.b?.map((m) => (m.body as { seq: number }).seq), counters: { ...network.counters } };
    };
    const first = run(42);
    expect(first.counters.dropped).toBeGreaterThan(20);
    expect(first.counters.duplicated).toBeGreaterThan(20);
    expect(run(42)).toEqual(first);
    expect(run(43)).not.toEqual(first);
  });

  it("a delay spread reorders frames", () => {
    const { network, transports, received, advance } = cluster(7);
    network.setFaults({ minDelayMs: 0, maxDelayMs: 50 });
    for (let i = 0; i < 50; i++) transports.a?.send("b", "test.probe", { seq: i });
    advance(50);
    network.deliverDue();
    const seqs = received.b?.map((m) => (m.body as { seq: number }).seq) ?? [];
    expect(seqs).toHaveLength(50);
    expect(seqs).not.toEqual([...seqs].sort((x, y) => x - y));
  });

  it("frames in flight on a link cut after sending are lost", () => {
    const { network, transports, received, advance } = cluster(1);
    network.setFaults({ minDelayMs: 5, maxDelayMs: 5 });
    transports.a?.send("b", "test.probe", probe);
    network.block("a", "b");
    advance(5);
    network.deliverDue();
    expect(received.b).toHaveLength(0);
  });

  it("frames in flight to a member that restarts reach its new connection, duplicates too", () => {
    // The simulator relies on it: a restarted member gets the old messages still in flight to it.
    const { network, transports, received, advance } = cluster(1);
    network.setFaults({ minDelayMs: 50, maxDelayMs: 50, duplicate: 1 });
    transports.a?.send("b", "test.probe", probe);
    void transports.b?.close();
    const restarted: Inbound[] = [];
    network.connect({ cluster: "c", group: "g", self: "b" }).listen((m) => restarted.push(m));
    advance(50);
    expect(network.deliverDue()).toBe(2);
    expect(received.b).toHaveLength(0);
    expect(restarted.map((m) => m.sender)).toEqual(["a", "a"]);
  });

  it("garbage and spoofed frames are dropped and counted like on NATS", () => {
    const { network, transports, received } = cluster(1);
    network.injectRaw("c", "g", "a", new Uint8Array([0xc1, 0xff]), "b");
    network.injectRaw("c", "g", "a", encodeFrame("c", "g", "c", "test.probe", probe), "b");
    network.deliverDue();
    expect(received.b).toHaveLength(0);
    expect(transports.b?.stats.dropped.malformed).toBe(1);
    expect(transports.b?.stats.dropped.spoofed).toBe(1);
  });
});
