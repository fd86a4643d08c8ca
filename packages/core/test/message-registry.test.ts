import { describe, expect, it } from "vitest";
import { probeMessageSchemas } from "../../../test/contract/probe-message.js";
import {
  bytes,
  decodeFrame,
  ErrorCode,
  encodeFrame,
  isQuorateError,
  messageSchema,
  object,
  optional,
  PROTOCOL_VERSION,
  packValue,
  registeredMessageTypes,
  registerMessages,
  uint,
} from "../src/index.js";

const scope = { cluster: "c", group: "g" };

describe("message registry", () => {
  it("the codec decodes a registered type and validates its body with the registered schema", () => {
    expect(registeredMessageTypes()).toContain("test.probe");
    expect(messageSchema("test.probe")).toBe(probeMessageSchemas["test.probe"]);
    const decoded = decodeFrame(encodeFrame("c", "g", "n1", "test.probe", { seq: 4 }), scope);
    expect(decoded).toMatchObject({ ok: true, envelope: { type: "test.probe", body: { seq: 4 } } });
    const invalid = packValue([PROTOCOL_VERSION, "c", "g", "n1", "test.probe", { seq: -1 }]);
    expect(decodeFrame(invalid, scope)).toMatchObject({ ok: false, reason: "invalid" });
  });

  it("the codec drops a type no loaded protocol registered as unknown_type", () => {
    expect(messageSchema(7)).toBeUndefined();
    expect(messageSchema("test.unregistered")).toBeUndefined();
    const frame = packValue([PROTOCOL_VERSION, "c", "g", "n1", "test.unregistered", { seq: 1 }]);
    expect(decodeFrame(frame, scope)).toMatchObject({ ok: false, reason: "unknown_type" });
  });

  it("registering a type again with its own schema is harmless, with another schema throws", () => {
    expect(() => registerMessages(probeMessageSchemas)).not.toThrow();
    const other = { "test.probe": object({ seq: uint, data: optional(bytes) }) };
    try {
      registerMessages(other);
      expect.unreachable("a second schema for test.probe must be refused");
    } catch (err) {
      expect(isQuorateError(err, ErrorCode.Invariant)).toBe(true);
      expect((err as Error).message).toContain("test.probe is registered twice");
    }
    expect(messageSchema("test.probe")).toBe(probeMessageSchemas["test.probe"]);
  });
});
