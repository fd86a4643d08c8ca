import { ErrorCode, packValue, SessionErrorCode, type StateMachine, unpackValue } from "@quorate/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeOpenedClient,
  decodeSessionResult,
  encodeOpenSession,
  encodeSessionCommand,
  type SessionLimits,
  type SessionResult,
  SessionStateMachine,
} from "../src/index.js";

const text = (s: string) => new TextEncoder().encode(s);

/** Appends every payload to a list; each result is the list length, so a second application shows. */
class RecordingMachine implements StateMachine {
  applied: string[] = [];
  apply(command: Uint8Array): Uint8Array {
    this.applied.push(new TextDecoder().decode(command));
    return packValue(this.applied.length);
  }
  snapshot(): Uint8Array {
    return packValue(this.applied);
  }
  restore(snapshot: Uint8Array): void {
    this.applied = unpackValue(snapshot) as string[];
  }
}

class Replica {
  readonly inner = new RecordingMachine();
  readonly machine: SessionStateMachine;
  #index = 0;
  constructor(limits: Partial<SessionLimits> = {}) {
    this.machine = new SessionStateMachine(this.inner, limits);
  }
  applyRaw(command: Uint8Array): SessionResult {
    return decodeSessionResult(this.machine.apply(command, ++this.#index));
  }
  open(name = "c"): string {
    const result = this.applyRaw(encodeOpenSession(name));
    if (!result.ok) throw new Error(`open failed: ${result.message}`);
    return decodeOpenedClient(result.result);
  }
  run(client: string, seq: number, payload: string, firstUnacked = 1): SessionResult {
    return this.applyRaw(encodeSessionCommand({ client, seq, firstUnacked }, text(payload)));
  }
}

/** The inner result of an ok session result: how many commands the inner machine had applied. */
function count(result: SessionResult): number {
  if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.message}`);
  return unpackValue(result.result) as number;
}

function code(result: SessionResult): string {
  return result.ok ? "ok" : result.code;
}

describe("SessionStateMachine", () => {
  it("opens sessions under unique client ids, even for the same name", () => {
    const r = new Replica();
    const a = r.open("app");
    const b = r.open("app");
    expect(a).toMatch(/^app\./);
    expect(b).not.toBe(a);
    expect(r.machine.sessionCount).toBe(2);
  });

  it("applies a duplicate seq once and returns the same result", () => {
    const r = new Replica();
    const c = r.open();
    const first = r.run(c, 1, "x");
    const retry = r.run(c, 1, "x");
    // Compared before decoding the inner results: msgpackr caches a DataView on what it decodes.
    expect(retry).toEqual(first);
    expect(count(first)).toBe(1);
    expect(r.inner.applied).toEqual(["x"]);
  });

  it("keeps concurrent outstanding seqs deduplicated, whatever order they commit in", () => {
    const r = new Replica();
    const c = r.open();
    const three = count(r.run(c, 3, "c"));
    const one = count(r.run(c, 1, "a"));
    const two = count(r.run(c, 2, "b"));
    expect([three, one, two]).toEqual([1, 2, 3]);
    expect(count(r.run(c, 1, "a"))).toBe(2);
    expect(count(r.run(c, 3, "c"))).toBe(1);
    expect(count(r.run(c, 2, "b"))).toBe(3);
    expect(r.inner.applied).toEqual(["c", "a", "b"]);
  });

  it("discards results below firstUnacked and never applies those seqs again", () => {
    const r = new Replica();
    const c = r.open();
    r.run(c, 1, "a");
    r.run(c, 2, "b");
    expect(count(r.run(c, 3, "c", 2))).toBe(3);
    const stale = r.run(c, 1, "a", 1);
    expect(code(stale)).toBe(SessionErrorCode.ResultDiscarded);
    // seq 2 is still unacknowledged, so its result is kept.
    expect(count(r.run(c, 2, "b", 2))).toBe(2);
    // A lower firstUnacked later on does not bring results back.
    expect(code(r.run(c, 1, "a", 1))).toBe(SessionErrorCode.ResultDiscarded);
    expect(r.inner.applied).toEqual(["a", "b", "c"]);
  });

  it("answers SessionExpired for a session that was never opened, without applying", () => {
    const r = new Replica();
    expect(code(r.run("ghost.1", 1, "x"))).toBe(SessionErrorCode.SessionExpired);
    expect(r.inner.applied).toEqual([]);
  });

  it("applies null-session commands every time", () => {
    const r = new Replica();
    const cmd = encodeSessionCommand(null, text("n"));
    expect(count(r.applyRaw(cmd))).toBe(1);
    expect(count(r.applyRaw(cmd))).toBe(2);
  });

  it("expires a session idle for more than maxIdleCommands applied commands", () => {
    const r = new Replica({ maxIdleCommands: 3 });
    const idle = r.open("idle");
    const busy = r.open("busy");
    r.run(idle, 1, "i1");
    for (let seq = 1; seq <= 3; seq++) r.run(busy, seq, `b${seq}`);
    // Three commands since idle's last: still open.
    expect(count(r.run(idle, 1, "i1"))).toBe(1);
    for (let seq = 4; seq <= 7; seq++) r.run(busy, seq, `b${seq}`);
    // Four: expired, and the retry is refused rather than applied again.
    expect(code(r.run(idle, 1, "i1"))).toBe(SessionErrorCode.SessionExpired);
    expect(r.inner.applied.filter((p) => p === "i1")).toHaveLength(1);
    expect(r.machine.sessionCount).toBe(1);
  });

  it("keeps at most maxSessions sessions, evicting the least recently used", () => {
    const r = new Replica({ maxSessions: 2 });
    const a = r.open("a");
    const b = r.open("b");
    r.run(a, 1, "a1"); // a is now more recent than b
    const c = r.open("c");
    expect(r.machine.sessionCount).toBe(2);
    expect(code(r.run(b, 1, "b1"))).toBe(SessionErrorCode.SessionExpired);
    expect(count(r.run(a, 1, "a1"))).toBe(1);
    expect(code(r.run(c, 1, "c1"))).toBe("ok");
  });

  it("bounds the results kept per session, discarding the lowest seq first", () => {
    const r = new Replica({ maxResultsPerSession: 2 });
    const c = r.open();
    r.run(c, 1, "a");
    r.run(c, 2, "b");
    r.run(c, 3, "c");
    expect(code(r.run(c, 1, "a"))).toBe(SessionErrorCode.ResultDiscarded);
    expect(count(r.run(c, 2, "b"))).toBe(2);
    expect(count(r.run(c, 3, "c"))).toBe(3);
    expect(r.inner.applied).toEqual(["a", "b", "c"]);
  });

  it("expires deterministically: replicas fed the same commands have identical snapshots", () => {
    const feed = (r: Replica) => {
      const ids = ["a", "b", "c", "d"].map((name) => r.open(name));
      ids.forEach((id, i) => {
        for (let seq = 1; seq <= i + 2; seq++) r.run(id, seq, `${id}:${seq}`, Math.max(1, seq - 1));
      });
      return ids.map((id) => code(r.run(id, 1, "retry")));
    };
    const one = new Replica({ maxIdleCommands: 6, maxSessions: 3 });
    const two = new Replica({ maxIdleCommands: 6, maxSessions: 3 });
    expect(feed(one)).toEqual(feed(two));
    expect(Buffer.from(one.machine.snapshot()).equals(Buffer.from(two.machine.snapshot()))).toBe(true);
  });

  it("snapshots and restores the session table with the inner state", () => {
    const r = new Replica({ maxIdleCommands: 10 });
    const c = r.open();
    r.run(c, 2, "b");
    r.run(c, 1, "a");
    const copy = new Replica({ maxIdleCommands: 10 });
    copy.machine.restore(r.machine.snapshot());
    expect(Buffer.from(copy.machine.snapshot()).equals(Buffer.from(r.machine.snapshot()))).toBe(true);
    // The restored replica still deduplicates, and expires at the same command as the original.
    for (const replica of [r, copy]) {
      expect(count(replica.run(c, 1, "a"))).toBe(2);
      expect(count(replica.run(c, 3, "c"))).toBe(3);
    }
    expect(copy.inner.applied).toEqual(r.inner.applied);
    expect(Buffer.from(copy.machine.snapshot()).equals(Buffer.from(r.machine.snapshot()))).toBe(true);
  });

  it("refuses a malformed snapshot and keeps its state", () => {
    const r = new Replica();
    const c = r.open();
    r.run(c, 1, "a");
    const before = r.machine.snapshot();
    expect(() => r.machine.restore(text("garbage"))).toThrow(expect.objectContaining({ code: ErrorCode.Storage }));
    expect(() => r.machine.restore(packValue({ version: 99 }))).toThrow(
      expect.objectContaining({ code: ErrorCode.Storage }),
    );
    expect(Buffer.from(r.machine.snapshot()).equals(Buffer.from(before))).toBe(true);
  });

  it("returns MalformedCommand for bad commands instead of throwing, and applies nothing", () => {
    const r = new Replica();
    const c = r.open();
    const bad: Uint8Array[] = [
      new Uint8Array([0xc1]), // never-used msgpack byte
      new Uint8Array(0),
      packValue("string"),
      packValue({ session: null }),
      packValue({ session: null, payload: "not bytes" }),
      packValue({ session: { client: c, seq: 0, firstUnacked: 0 }, payload: text("x") }),
      packValue({ session: { client: c, seq: 2, firstUnacked: 3 }, payload: text("x") }),
      packValue({ session: { client: "", seq: 1, firstUnacked: 1 }, payload: text("x") }),
      packValue({ session: { client: c, seq: 1.5, firstUnacked: 1 }, payload: text("x") }),
      packValue({ open: "" }),
      packValue({ open: "x".repeat(1000) }),
      packValue([1, 2, 3]),
    ];
    for (const command of bad) {
      expect(code(r.applyRaw(command))).toBe(SessionErrorCode.MalformedCommand);
    }
    expect(r.inner.applied).toEqual([]);
  });

  it("rejects limits that are not positive integers", () => {
    expect(() => new SessionStateMachine(new RecordingMachine(), { maxSessions: 0 })).toThrow(
      expect.objectContaining({ code: ErrorCode.Config }),
    );
    expect(() => new SessionStateMachine(new RecordingMachine(), { maxIdleCommands: 1.5 })).toThrow(
      expect.objectContaining({ code: ErrorCode.Config }),
    );
  });
});

describe("SessionStateMachine property", () => {
  /** A new command of one client, or a retry of the n-th command sent so far. */
  const step = fc.oneof(
    fc.record({ kind: fc.constant("new" as const), client: fc.nat(2), ack: fc.nat(3) }),
    fc.record({ kind: fc.constant("retry" as const), pick: fc.nat() }),
  );

  it("replicas agree with each other and apply every (client, seq) at most once", () => {
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 80 }),
        fc.record({ maxIdleCommands: fc.integer({ min: 1, max: 30 }), maxSessions: fc.integer({ min: 1, max: 3 }) }),
        (steps, limits) => {
          const replicas = [new Replica(limits), new Replica(limits)];
          const ids = replicas.map((r) => ["a", "b", "c"].map((name) => r.open(name)));
          expect(ids[0]).toEqual(ids[1]);
          const clients = ids[0] ?? [];
          const sent: { client: string; seq: number; firstUnacked: number; payload: string }[] = [];
          const nextSeq = clients.map(() => 1);
          for (const s of steps) {
            let command: (typeof sent)[number] | undefined;
            if (s.kind === "new") {
              const seq = nextSeq[s.client] ?? 1;
              nextSeq[s.client] = seq + 1;
              const client = clients[s.client] ?? "";
              command = { client, seq, firstUnacked: Math.max(1, seq - s.ack), payload: `${client}#${seq}` };
              sent.push(command);
            } else {
              command = sent.length === 0 ? undefined : sent[s.pick % sent.length];
            }
            if (command === undefined) continue;
            const [one, two] = replicas.map((r) =>
              r.run(command.client, command.seq, command.payload, command.firstUnacked),
            );
            expect(one).toEqual(two);
          }
          const [one, two] = replicas as [Replica, Replica];
          expect(Buffer.from(one.machine.snapshot()).equals(Buffer.from(two.machine.snapshot()))).toBe(true);
          // Payloads name their (client, seq): none may have reached the inner machine twice.
          expect(new Set(one.inner.applied).size).toBe(one.inner.applied.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
