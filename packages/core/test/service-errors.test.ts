import { describe, expect, it } from "vitest";
import {
  ErrorCode,
  SERVICE_ERROR_CODE_HEADER,
  SERVICE_ERROR_HEADER,
  SERVICE_ERROR_STATUS,
  SessionErrorCode,
  serviceErrorHeaders,
} from "../src/index.js";

describe("NATS micro service error headers", () => {
  it("give every code a numeric status of the HTTP-like classes NATS micro clients parse", () => {
    for (const code of [...Object.values(ErrorCode), ...Object.values(SessionErrorCode)]) {
      expect([400, 409, 410, 500, 503, 504], code).toContain(SERVICE_ERROR_STATUS[code]);
    }
    expect(SERVICE_ERROR_STATUS[ErrorCode.NotLeader]).toBe(503);
    expect(SERVICE_ERROR_STATUS[ErrorCode.Rejected]).toBe(400);
    expect(SERVICE_ERROR_STATUS[ErrorCode.Indeterminate]).toBe(504);
  });

  it("lead the description with the stable code, on one line", () => {
    expect(serviceErrorHeaders(ErrorCode.NoQuorum, "no quorum\nfor 2 s")).toEqual({
      [SERVICE_ERROR_HEADER]: "QUORATE_NO_QUORUM: no quorum for 2 s",
      [SERVICE_ERROR_CODE_HEADER]: "503",
    });
    expect(SERVICE_ERROR_HEADER).toBe("Nats-Service-Error");
    expect(SERVICE_ERROR_CODE_HEADER).toBe("Nats-Service-Error-Code");
  });
});
