import type { Transport } from "@quorate/core";
import { describe, expect, it } from "vitest";
import { encodeConfig } from "../src/config.js";
import type { InstallSnapshot } from "../src/messages.js";
import { SNAPSHOT_CHUNK_BYTES, SnapshotReceiver, SnapshotSender } from "../src/snapshots.js";

/** A leader's sender and a follower's receiver wired back to back; the test decides what arrives. */
function transfer(bytes: number) {
  const wire: InstallSnapshot[] = [];
  const transport = { send: (_to: string, _type: string, body: InstallSnapshot) => wire.push(body) };
  const sender = new SnapshotSender(transport as unknown as Transport);
  let receiver = new SnapshotReceiver();
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4093) data[i] = i % 251;
  const snapshot = { index: 42, term: 3, config: encodeConfig({ voters: ["a", "b"], learners: [] }), data };
  let sent = 0;
  let complete: Uint8Array | null = null;
  /** Delivers the chunks on the wire in order, except those `lose` picks, until none are left. */
  const deliver = (lose: (chunk: InstallSnapshot) => boolean = () => false) => {
    while (wire.length > 0) {
      const chunk = wire.shift() as InstallSnapshot;
      // A resend storm never drains the wire: fail instead of spinning.
      if (++sent > 10_000) throw new Error(`more than 10,000 chunks sent for ${bytes} bytes`);
      if (lose(chunk)) continue;
      const { response, complete: whole } = receiver.onChunk("leader", chunk);
      if (whole !== null) complete = whole.data;
      sender.onResponse("follower", response);
    }
  };
  return {
    sender,
    start: () => sender.start("follower", snapshot, 3),
    deliver,
    restartFollower: () => {
      receiver = new SnapshotReceiver();
    },
    sent: () => sent,
    /** Whether the follower assembled exactly the leader's snapshot. */
    received: () => complete !== null && Buffer.compare(complete, data) === 0,
  };
}

describe("InstallSnapshot in chunks (§7)", () => {
  it("moves a snapshot in exactly one send per chunk when nothing is lost", () => {
    const t = transfer(5 * 1024 * 1024);
    t.start();
    t.deliver();
    expect(t.received()).toBe(true);
    expect(t.sent()).toBe((5 * 1024 * 1024) / SNAPSHOT_CHUNK_BYTES);
    expect(t.sender.active).toBe(0);
  });

  it("a lost chunk is sent again after the idle ticks, and only the window from there", () => {
    const t = transfer(10 * SNAPSHOT_CHUNK_BYTES);
    t.start();
    let lost = false;
    t.deliver((chunk) => {
      if (lost || chunk.offset !== 2 * SNAPSHOT_CHUNK_BYTES) return false;
      lost = true;
      return true;
    });
    expect(t.received()).toBe(false);
    for (let i = 0; i < 10; i++) t.sender.tick();
    t.deliver();
    expect(t.received()).toBe(true);
    // 10 chunks, one lost, then at most a window (4) of them again.
    expect(t.sent()).toBeLessThanOrEqual(10 + 4);
  });

  it("a follower that restarted mid-transfer is sent the snapshot from the start", () => {
    const t = transfer(8 * SNAPSHOT_CHUNK_BYTES);
    t.start();
    let delivered = 0;
    t.deliver(() => ++delivered > 3);
    t.restartFollower();
    for (let i = 0; i < 10; i++) t.sender.tick();
    t.deliver();
    for (let i = 0; i < 10; i++) t.sender.tick();
    t.deliver();
    expect(t.received()).toBe(true);
  });

  it("an empty snapshot is one empty chunk", () => {
    const t = transfer(0);
    t.start();
    t.deliver();
    expect(t.received()).toBe(true);
    expect(t.sent()).toBe(1);
  });
});
