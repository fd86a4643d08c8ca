import { type NatsConnection, TimeoutError } from "@nats-io/transport-node";
import { ErrorCode, isQuorateError, packValue, rpcSubject, SessionErrorCode, unpackValue } from "@quorate/core";
import { describe, expect, it } from "vitest";
import {
  msgpackStateMachine,
  type ReplicatedRequest,
  replicatedReply,
  ServiceCaller,
  type ServiceReply,
} from "../src/index.js";

const CLUSTER = "unit";
const SUBJECT = rpcSubject({ cluster: CLUSTER }, "counters");

type Answer = ServiceReply<string | Uint8Array> | "timeout";

/** A NATS connection whose replies come from a script: one answer per request, in order. */
function scriptedConnection(answers: Answer[]) {
  const sent: { subject: string; request: ReplicatedRequest }[] = [];
  const nc = {
    info: { max_payload: 1024 * 1024 },
    isClosed: () => false,
    getServer: () => "127.0.0.1:4222",
    async request(subject: string, data: Uint8Array) {
      sent.push({ subject, request: unpackValue(data) as ReplicatedRequest });
      const answer = answers.shift();
      if (answer === undefined) throw new Error("the script ran out of answers");
      if (answer === "timeout") throw new TimeoutError();
      return { data: packValue(answer) };
    },
  };
  return { nc: nc as unknown as NatsConnection, sent };
}

function caller(nc: NatsConnection, timeoutMs = 2_000) {
  return new ServiceCaller<ReplicatedRequest, ServiceReply<string | Uint8Array>>({
    nc,
    cluster: CLUSTER,
    service: "counters",
    name: "unit-client",
    timeoutMs,
    requestTimeoutMs: 100,
    reply: replicatedReply,
  });
}

const bytesValue = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const command = (session: { client: string; seq: number; firstUnacked: number }): ReplicatedRequest => ({
  op: "command",
  command: packValue({ add: "hits", by: 1 }),
  session,
});
const opened: Answer = { ok: true, value: "unit-client.0", servedBy: "n1" };
const failed = (code: ErrorCode | SessionErrorCode, leader: string | null = null): Answer => ({
  ok: false,
  code,
  message: code,
  leader,
});

async function failure(promise: Promise<unknown>) {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (err: unknown) => {
      if (!isQuorateError(err)) throw err;
      return err;
    },
  );
}

describe("ServiceCaller", () => {
  it("retries a write with the same session tag and returns the first success", async () => {
    const { nc, sent } = scriptedConnection([
      opened,
      "timeout",
      failed(ErrorCode.NotLeader, "n2"),
      { ok: true, value: packValue(1), servedBy: "n2" },
    ]);
    const result = await caller(nc).write("command", command, bytesValue);
    expect(unpackValue(result)).toBe(1);
    const tags = sent.filter((s) => s.request.op === "command").map((s) => (s.request as { session: unknown }).session);
    expect(tags).toEqual([
      { client: "unit-client.0", seq: 1, firstUnacked: 1 },
      { client: "unit-client.0", seq: 1, firstUnacked: 1 },
      { client: "unit-client.0", seq: 1, firstUnacked: 1 },
    ]);
    // After NotLeader with a hint, the next attempt goes to that member's own subject.
    expect(sent.at(-1)?.subject).toBe(`${SUBJECT}.n2`);
  });

  it("fails a write Indeterminate once any attempt may have applied, even if the last failure was definite", async () => {
    const { nc } = scriptedConnection([opened, "timeout", failed(ErrorCode.Rejected)]);
    expect((await failure(caller(nc).write("command", command, bytesValue))).code).toBe(ErrorCode.Indeterminate);
  });

  it("fails a write with the definite error when no attempt may have applied", async () => {
    const { nc } = scriptedConnection([opened, failed(ErrorCode.NoQuorum), failed(ErrorCode.Rejected)]);
    expect((await failure(caller(nc).write("command", command, bytesValue))).code).toBe(ErrorCode.Rejected);
  });

  it("moves a write whose session expired to a new session as a new command", async () => {
    const { nc, sent } = scriptedConnection([
      opened,
      failed(SessionErrorCode.SessionExpired),
      { ok: true, value: "unit-client.7", servedBy: "n1" },
      { ok: true, value: packValue(2), servedBy: "n1" },
    ]);
    await caller(nc).write("command", command, bytesValue);
    expect(sent.map((s) => s.request.op)).toEqual(["open", "command", "open", "command"]);
    expect(sent[3]?.request).toMatchObject({ session: { client: "unit-client.7", seq: 1 } });
  });

  it("fails a read Unreachable, never Indeterminate, when its attempts got no answer", async () => {
    const { nc } = scriptedConnection(Array.from({ length: 50 }, (): Answer => "timeout"));
    const c = caller(nc, 250);
    const error = await failure(c.idempotent({ op: "query", query: packValue("q") }, c.deadline(), bytesValue));
    expect(error.code).toBe(ErrorCode.Unreachable);
  });

  it("opens one session for concurrent writes", async () => {
    const { nc, sent } = scriptedConnection([
      opened,
      { ok: true, value: packValue(1), servedBy: "n1" },
      { ok: true, value: packValue(2), servedBy: "n1" },
    ]);
    const c = caller(nc);
    await Promise.all([c.write("command", command, bytesValue), c.write("command", command, bytesValue)]);
    expect(sent.filter((s) => s.request.op === "open")).toHaveLength(1);
  });

  it("refuses calls once closed", async () => {
    const { nc } = scriptedConnection([]);
    const c = caller(nc);
    c.close();
    expect(() => c.deadline()).toThrow(expect.objectContaining({ code: ErrorCode.Closed }));
  });
});

describe("msgpackStateMachine", () => {
  type Add = { add: number };
  const counter = () => {
    let total = 0;
    return msgpackStateMachine({
      isCommand: (v): v is Add => typeof v === "object" && v !== null && typeof (v as Add).add === "number",
      isQuery: (v): v is "total" => v === "total",
      apply: (c: Add) => {
        total += c.add;
        return total;
      },
      query: () => total,
      snapshot: () => total,
      restore: (state) => {
        total = state as number;
      },
    });
  };

  it("applies typed commands, answers typed queries and snapshots the state", () => {
    const machine = counter();
    expect(unpackValue(machine.apply(packValue({ add: 2 }), 1))).toBe(2);
    expect(unpackValue(machine.apply(packValue({ add: 3 }), 2))).toBe(5);
    expect(unpackValue(machine.query(packValue("total")))).toBe(5);
    const copy = counter();
    copy.restore(machine.snapshot());
    expect(unpackValue(copy.query(packValue("total")))).toBe(5);
  });

  it("refuses malformed commands before the log, and applies one that got there as a no-op", () => {
    const machine = counter();
    expect(machine.accepts?.(packValue({ add: 1 }))).toBe(true);
    expect(machine.accepts?.(packValue({ remove: 1 }))).toBe(false);
    expect(machine.accepts?.(new Uint8Array([0xc1]))).toBe(false);
    expect(unpackValue(machine.apply(packValue({ remove: 1 }), 1))).toBeNull();
    expect(unpackValue(machine.query(packValue("total")))).toBe(0);
    expect(() => machine.query(packValue("everything"))).toThrow(expect.objectContaining({ code: ErrorCode.Rejected }));
  });
});
