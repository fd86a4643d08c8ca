import { SessionErrorCode } from "@quorate/core";
import {
  decodeKvResult,
  encodeKvCommand,
  type KvCommand,
  type KvResultValue,
  type KvRevisionCommand,
  KvStateMachine,
  type KvValue,
} from "@quorate/kv";
import {
  decodeOpenedClient,
  decodeSessionResult,
  encodeOpenSession,
  encodeSessionCommand,
  SessionStateMachine,
} from "@quorate/service";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/** A comparable form of an outcome: bytes as arrays, so Buffers and Uint8Arrays compare equal. */
type Outcome = { ok: true; value: unknown } | { ok: false; code: string };

const comparable = (v: KvResultValue) => (v instanceof Uint8Array ? [...v] : v);

/** What the model keeps per key: its value and revisions. */
interface ModelEntry {
  value: KvValue;
  revision: number;
  createRevision: number;
  version: number;
}

function sameValue(a: KvValue, b: KvValue): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The commands the property generates: every one but transactions. */
type AnyCommand = KvCommand | Exclude<KvRevisionCommand, { op: "txn" }>;

/** The obvious KV map with revisions, and no sessions: a write at log index `index` has revision `index`. */
function applyToModel(map: Map<string, ModelEntry>, c: AnyCommand, index: number): KvResultValue {
  const current = map.get(c.key);
  const write = (value: KvValue) =>
    map.set(c.key, {
      value,
      revision: index,
      createRevision: current?.createRevision ?? index,
      version: (current?.version ?? 0) + 1,
    });
  switch (c.op) {
    case "get":
      return current?.value ?? null;
    case "put":
      write(c.value);
      return index;
    case "delete":
      if (current === undefined || (c.revision !== undefined && c.revision !== current.revision)) return false;
      return map.delete(c.key);
    case "cas": {
      const swap =
        c.expected === null ? current === undefined : current !== undefined && sameValue(current.value, c.expected);
      if (swap) write(c.value);
      return swap;
    }
    case "create":
      if (current !== undefined) return null;
      write(c.value);
      return index;
    case "update":
      if (current?.revision !== c.revision) return null;
      write(c.value);
      return index;
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
  /** The log index the next command applies at. */
  get nextIndex(): number {
    return this.#index + 1;
  }
  run(client: string, seq: number, firstUnacked: number, command: AnyCommand): Outcome {
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
/**
 * A command as generated: a revision-conditioned one names its revision when it is sent, from
 * the model: the key's current revision (`stale: false`) or one that is not (`stale: true`).
 */
type Generated = AnyCommand | { op: "update" | "compare-delete"; key: string; value: KvValue; stale: boolean };
const command: fc.Arbitrary<Generated> = fc.oneof(
  fc.record({ op: fc.constant("get" as const), key }),
  fc.record({ op: fc.constant("put" as const), key, value: kvValueArb }),
  fc.record({ op: fc.constant("delete" as const), key }),
  fc.record({ op: fc.constant("cas" as const), key, expected: fc.option(kvValueArb), value: kvValueArb }),
  fc.record({ op: fc.constant("create" as const), key, value: kvValueArb }),
  fc.record({ op: fc.constant("update" as const), key, value: kvValueArb, stale: fc.boolean() }),
  fc.record({ op: fc.constant("compare-delete" as const), key, value: kvValueArb, stale: fc.boolean() }),
);

function resolve(g: Generated, model: Map<string, ModelEntry>): AnyCommand {
  if (!("stale" in g)) return g;
  const current = model.get(g.key)?.revision ?? 0;
  const revision = g.stale ? current + 1 : current;
  return g.op === "update"
    ? { op: "update", key: g.key, value: g.value, revision }
    : { op: "delete", key: g.key, revision };
}
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

        const model = new Map<string, ModelEntry>();
        const floors = clients.map(() => 1);
        const results = clients.map(() => new Map<number, Outcome>());
        const nextSeq = clients.map(() => 1);
        const sent: { client: number; seq: number; firstUnacked: number; command: AnyCommand }[] = [];

        for (const s of steps) {
          if (s.kind === "reload") {
            two.reload();
            continue;
          }
          let c: (typeof sent)[number] | undefined;
          if (s.kind === "new") {
            const seq = nextSeq[s.client] ?? 1;
            nextSeq[s.client] = seq + 1;
            const resolved = resolve(s.command, model);
            c = { client: s.client, seq, firstUnacked: Math.max(1, seq - s.ack), command: resolved };
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
            expected = memory.get(c.seq) ?? {
              ok: true,
              value: comparable(applyToModel(model, c.command, one.nextIndex)),
            };
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
