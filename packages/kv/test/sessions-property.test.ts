import {
  decodeOpenedClient,
  decodeSessionResult,
  encodeOpenSession,
  encodeSessionCommand,
  SessionErrorCode,
  SessionStateMachine,
} from "@quorate/core";
import { decodeKvResult, encodeKvCommand, type KvCommand, KvStateMachine, type KvValue } from "@quorate/kv";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/** A comparable form of an outcome: bytes as arrays, so Buffers and Uint8Arrays compare equal. */
type Outcome = { ok: true; value: string | number[] | boolean | null } | { ok: false; code: string };

const comparable = (v: KvValue | boolean | null) => (v instanceof Uint8Array ? [...v] : v);

function sameValue(a: KvValue, b: KvValue): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The obvious KV map, with no sessions. */
function applyToModel(map: Map<string, KvValue>, c: KvCommand): KvValue | boolean | null {
  switch (c.op) {
    case "get":
      return map.get(c.key) ?? null;
    case "put":
      map.set(c.key, c.value);
      return null;
    case "delete":
      return map.delete(c.key);
    case "cas": {
      const current = map.get(c.key);
      const swap =
        c.expected === null ? current === undefined : current !== undefined && sameValue(current, c.expected);
      if (swap) map.set(c.key, c.value);
      return swap;
    }
  }
}

class Replica {
  machine: SessionStateMachine;
  #index = 0;
  constructor() {
    this.machine = new SessionStateMachine(new KvStateMachine());
  }
  open(name: string): string {
    const result = decodeSessionResult(this.machine.apply(encodeOpenSession(name), ++this.#index));
    if (!result.ok) throw new Error(result.message);
    return decodeOpenedClient(result.result);
  }
  run(client: string, seq: number, firstUnacked: number, command: KvCommand): Outcome {
    const data = encodeSessionCommand({ client, seq, firstUnacked }, encodeKvCommand(command));
    const result = decodeSessionResult(this.machine.apply(data, ++this.#index));
    if (!result.ok) return { ok: false, code: result.code };
    const kv = decodeKvResult(result.result);
    if (kv === null) throw new Error("undecodable KV result");
    return kv.ok ? { ok: true, value: comparable(kv.value) } : { ok: false, code: kv.code };
  }
  /** Replaces the state machine by one restored from a snapshot, as a lagging follower would. */
  reload(): void {
    const fresh = new SessionStateMachine(new KvStateMachine());
    fresh.restore(this.machine.snapshot());
    this.machine = fresh;
  }
}

const key = fc.constantFrom("a", "b", "c");
const kvValueArb = fc.oneof(fc.string({ maxLength: 3 }), fc.uint8Array({ maxLength: 3 }));
const command: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ op: fc.constant("get" as const), key }),
  fc.record({ op: fc.constant("put" as const), key, value: kvValueArb }),
  fc.record({ op: fc.constant("delete" as const), key }),
  fc.record({ op: fc.constant("cas" as const), key, expected: fc.option(kvValueArb), value: kvValueArb }),
);
/** A new command from one of three clients, or a retry of any command sent before. */
const step = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("new" as const), client: fc.nat(2), ack: fc.nat(3), command }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("retry" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reload" as const) }) },
);

describe("SessionStateMachine(KvStateMachine) property", () => {
  it("replicas agree byte for byte and match a model that applies each (client, seq) once", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
        const one = new Replica();
        const two = new Replica();
        const clients = ["a", "b", "c"].map((name) => one.open(name));
        expect(["a", "b", "c"].map((name) => two.open(name))).toEqual(clients);

        const model = new Map<string, KvValue>();
        const floors = clients.map(() => 1);
        const results = clients.map(() => new Map<number, Outcome>());
        const nextSeq = clients.map(() => 1);
        const sent: { client: number; seq: number; firstUnacked: number; command: KvCommand }[] = [];

        for (const s of steps) {
          if (s.kind === "reload") {
            two.reload();
            continue;
          }
          let c: (typeof sent)[number] | undefined;
          if (s.kind === "new") {
            const seq = nextSeq[s.client] ?? 1;
            nextSeq[s.client] = seq + 1;
            c = { client: s.client, seq, firstUnacked: Math.max(1, seq - s.ack), command: s.command };
            sent.push(c);
          } else {
            c = sent.length === 0 ? undefined : sent[s.pick % sent.length];
          }
          if (c === undefined) continue;

          // The model: a seq below the highest firstUnacked is never applied again; any other
          // seq is applied the first time and answered from memory afterwards.
          floors[c.client] = Math.max(floors[c.client] ?? 1, c.firstUnacked);
          const memory = results[c.client] as Map<number, Outcome>;
          let expected: Outcome;
          if (c.seq < (floors[c.client] ?? 1)) {
            expected = { ok: false, code: SessionErrorCode.ResultDiscarded };
          } else {
            expected = memory.get(c.seq) ?? { ok: true, value: comparable(applyToModel(model, c.command)) };
            memory.set(c.seq, expected);
          }

          const client = clients[c.client] ?? "";
          const got = [one, two].map((r) => r.run(client, c.seq, c.firstUnacked, c.command));
          expect(got[0]).toEqual(expected);
          expect(got[1]).toEqual(expected);
        }
        expect(Buffer.from(one.machine.snapshot()).equals(Buffer.from(two.machine.snapshot()))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
