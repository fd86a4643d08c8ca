import { describe, expect, it } from "vitest";
import { encodeFrame, FrameReceiver, type Inbound, silentLogger } from "../src/index.js";
import "../../../test/contract/probe-message.js";

describe("FrameReceiver", () => {
  it("skips this member's own frames (a broadcast coming back) before decoding them", () => {
    const receiver = new FrameReceiver({ cluster: "c", group: "g", self: "n1" }, silentLogger, 1024, () => 0);
    const inbox: Inbound[] = [];
    receiver.listen((message) => inbox.push(message));
    receiver.receive(encodeFrame("c", "g", "n1", "test.probe", { seq: 1 }), "n1", undefined);
    // Not even looked at: bytes that would be counted as malformed from anyone else.
    receiver.receive(new Uint8Array([0xc1]), "n1", undefined);
    receiver.receive(encodeFrame("c", "g", "n2", "test.probe", { seq: 2 }), "n2", undefined);
    receiver.receive(new Uint8Array([0xc1]), "n2", undefined);
    expect(inbox.map((m) => [m.sender, m.body])).toEqual([["n2", { seq: 2 }]]);
    expect(receiver.stats.received).toBe(1);
    expect(receiver.stats.dropped.malformed).toBe(1);
  });
});
