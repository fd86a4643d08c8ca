import {
  type DropReason,
  EntryKind,
  encodeFrame,
  type MessageMap,
  type NodeId,
  type PaxosBallot,
  type PaxosValue,
  PROTOCOL_VERSION,
  packValue,
} from "@quorate/core";
import type { Prng } from "@quorate/core/internal";
import { encodeKvCommand } from "@quorate/kv";
import { paxosMessageSchemas } from "@quorate/paxos/internal";
import { packEntries, raftMessageSchemas } from "@quorate/raft/internal";

/**
 * A seeded generator of hostile frames. Every frame is a pure function of the Prng state, so a
 * failing frame replays from its seed and index.
 */

/** What the generator meant a frame to be. */
export type FrameClass =
  /** Bytes drawn at random, or random msgpack values: almost never an envelope. */
  | "random"
  /** A valid frame of a real message type, then damaged. */
  | "mutated"
  /**
   * A well-formed, schema-valid frame with hostile content (a non-member sender, stale terms,
   * absurd indexes, the other protocol's types): legal input that the codec must not drop.
   */
  | "hostile";

/** The routing scope the frames are aimed at, and who they come from. */
export interface FuzzTarget {
  readonly cluster: string;
  readonly group: string;
  /** The fuzzer's own id, a non-member: the subject it publishes on names it. */
  readonly fuzzer: NodeId;
  /** Members' ids, for spoofed envelopes and replayed stale messages. */
  readonly members: readonly NodeId[];
  /** Types the target speaks; frames of the other protocol are the "foreign protocol" case. */
  readonly types: readonly FuzzedType[];
  readonly maxFrameBytes: number;
}

export interface FuzzFrame {
  readonly class: FrameClass;
  /** How it was made, e.g. "bit-flip" or "stale-from-member": a failure report names it. */
  readonly how: string;
  readonly data: Uint8Array;
  /** Who the frame is published as (the subject's sender): the fuzzer, or for stale replays a member. */
  readonly subject: NodeId;
  /**
   * What the codec must do with it: "decode" (it must decode), a drop reason (it must be dropped
   * for that reason) or null (no prediction, as for random bytes and bit flips).
   */
  readonly expect: "decode" | DropReason | null;
}

/** The message types of the protocols the fuzzer knows: the codec may have others registered. */
export type FuzzedType = keyof typeof raftMessageSchemas | keyof typeof paxosMessageSchemas;

export const RAFT_TYPES: readonly FuzzedType[] = Object.keys(raftMessageSchemas) as (keyof typeof raftMessageSchemas)[];
export const PAXOS_TYPES: readonly FuzzedType[] = Object.keys(
  paxosMessageSchemas,
) as (keyof typeof paxosMessageSchemas)[];
export const ALL_TYPES: readonly FuzzedType[] = [...RAFT_TYPES, ...PAXOS_TYPES];

/** Numbers at the edge of what a uint field may hold, for "absurd index" frames. */
const ABSURD = [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 2 ** 32, 2 ** 32 - 1, 2 ** 31, 2 ** 48];
/** Numbers a uint field must refuse. */
const BAD_NUMBERS = [
  -1,
  -(2 ** 31),
  0.5,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  2 ** 53,
  2 ** 64,
];

function randomBytes(prng: Prng, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = prng.int(0, 255);
  return out;
}

/** A uint field's value: small mostly (the region where protocol state lives), absurd when asked. */
function uintValue(prng: Prng, absurd: boolean): number {
  if (absurd && prng.chance(0.3)) return prng.pick(ABSURD);
  return prng.chance(0.8) ? prng.int(0, 8) : prng.int(0, 1000);
}

/** A ballot a proposer can run a round at: round 1 or more, a named proposer (never [0, ""]). */
function ballot(prng: Prng, target: FuzzTarget, absurd: boolean): PaxosBallot {
  return [Math.max(1, uintValue(prng, absurd)), prng.pick([target.fuzzer, ...target.members])];
}

function paxosValue(prng: Prng, target: FuzzTarget, absurd: boolean): PaxosValue {
  const kind = prng.int(0, 2) as 0 | 1 | 2;
  const data = kind === 0 ? command(prng) : new Uint8Array(0);
  return {
    kind,
    data,
    origin: kind === 0 ? prng.pick([target.fuzzer, ...target.members]) : "",
    seq: uintValue(prng, absurd),
  };
}

/** A state-machine command: a real KV put mostly, arbitrary bytes sometimes. */
function command(prng: Prng): Uint8Array {
  if (prng.chance(0.2)) return randomBytes(prng, prng.int(0, 32));
  return encodeKvCommand({ op: "put", key: `fuzz${prng.int(0, 9)}`, value: `v${prng.int(0, 999)}` });
}

function list<T>(prng: Prng, max: number, item: () => T): T[] {
  return Array.from({ length: prng.int(0, max) }, item);
}

/** A schema-valid body of `type`; `absurd` lets uint fields take huge values. */
export function validBody<T extends FuzzedType>(
  prng: Prng,
  target: FuzzTarget,
  type: T,
  absurd = false,
): MessageMap[T] {
  const u = () => uintValue(prng, absurd);
  const b = () => prng.chance(0.5);
  const bytes = (max: number) => randomBytes(prng, prng.int(0, max));
  const bodies: { [K in FuzzedType]: () => MessageMap[K] } = {
    "raft.vote": () => ({ term: u(), lastLogIndex: u(), lastLogTerm: u(), preVote: b(), transfer: b() }),
    "raft.vote.resp": () => ({ term: u(), granted: b(), preVote: b() }),
    "raft.append": () => ({
      term: u(),
      prevLogIndex: u(),
      prevLogTerm: u(),
      leaderCommit: u(),
      // Config entries with arbitrary payloads: the host must refuse them without stopping.
      entries: packEntries(
        list(prng, 4, () => {
          const kind = prng.pick([EntryKind.Command, EntryKind.Command, EntryKind.Noop, EntryKind.Config]);
          return { term: u(), kind, data: kind === EntryKind.Noop ? new Uint8Array(0) : command(prng) };
        }),
      ),
      seq: u(),
    }),
    "raft.append.resp": () => ({
      term: u(),
      success: b(),
      index: u(),
      lastIndex: u(),
      conflictTerm: u(),
      conflictIndex: u(),
      seq: u(),
    }),
    "raft.timeout-now": () => ({ term: u() }),
    "raft.snapshot": () => {
      const total = prng.int(0, 64);
      return {
        term: u(),
        index: u(),
        lastTerm: u(),
        config: bytes(16),
        offset: prng.int(0, total),
        total,
        data: bytes(32),
      };
    },
    "raft.snapshot.resp": () => ({ term: u(), index: u(), next: u() }),
    "paxos.p1a": () => ({ ballot: ballot(prng, target, absurd), fromSlot: u() }),
    "paxos.p1b": () => ({
      ballot: ballot(prng, target, absurd),
      truncated: u(),
      accepted: list(prng, 3, () => ({
        slot: u(),
        ballot: ballot(prng, target, absurd),
        value: paxosValue(prng, target, absurd),
      })),
      more: b(),
    }),
    "paxos.p2a": () => ({
      ballot: ballot(prng, target, absurd),
      proposals: list(prng, 3, () => ({ slot: u(), value: paxosValue(prng, target, absurd) })),
    }),
    "paxos.p2b": () => ({ ballot: ballot(prng, target, absurd), slots: list(prng, 4, u), truncated: u() }),
    "paxos.nack": () => ({
      ballot: ballot(prng, target, absurd),
      promised: ballot(prng, target, absurd),
      truncated: u(),
    }),
    "paxos.heartbeat": () => ({ ballot: ballot(prng, target, absurd), nextSlot: u(), round: u() }),
    "paxos.alive": () => ({ ballot: ballot(prng, target, absurd), round: u(), truncated: u() }),
    "paxos.read": () => ({ reads: list(prng, 4, u) }),
    "paxos.read.index": () => ({ reads: list(prng, 4, u), slot: u() }),
    "paxos.request": () => ({
      requests: list(prng, 3, () => ({ seq: u(), kind: prng.int(0, 2) as 0 | 1 | 2, data: command(prng) })),
    }),
    "paxos.fill": () => ({ slots: list(prng, 4, u) }),
    "paxos.repeat": () => ({ from: u(), to: u() }),
    "paxos.repeated": () => ({
      truncated: u(),
      accepted: list(prng, 3, () => ({
        slot: u(),
        ballot: ballot(prng, target, absurd),
        value: paxosValue(prng, target, absurd),
      })),
      through: u(),
    }),
    "paxos.learned": () => ({ applied: u(), checkpoint: u() }),
    "paxos.snapshot.req": () => ({ slot: u(), offset: u() }),
    "paxos.snapshot.chunk": () => {
      const total = prng.int(0, 64);
      return { slot: u(), offset: prng.int(0, total), total, data: bytes(32) };
    },
  };
  return (bodies[type] as () => MessageMap[T])();
}

/** Values of every msgpack shape, for random structures and field type swaps. */
function randomValue(prng: Prng, depth = 0): unknown {
  switch (prng.int(0, depth > 2 ? 5 : 7)) {
    case 0:
      return prng.pick([null, true, false]);
    case 1:
      return prng.pick([...BAD_NUMBERS, ...ABSURD, 0, 1, -0]);
    case 2:
      return prng.int(0, 300);
    case 3:
      return prng.pick(["", "raft.append", "paxos.p2a", "x".repeat(prng.int(1, 80)), "a.b", "*", ">", "__proto__"]);
    case 4:
      return randomBytes(prng, prng.int(0, 16));
    case 5:
      return prng.pick(["constructor", "toString", "hasOwnProperty"]);
    case 6:
      return list(prng, 4, () => randomValue(prng, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = prng.int(0, 4); i > 0; i--) {
        // An own "__proto__" key (assignment would set the prototype): decoders must not let it pollute.
        const key = prng.pick(["term", "ballot", "entries", "slot", "__proto__", "constructor", "x"]);
        Object.defineProperty(out, key, {
          value: randomValue(prng, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
  }
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (v instanceof Uint8Array) return "bytes";
  return typeof v;
}

/** Paths to every number inside a body (all are uint or enum fields), and to every top-level field. */
function numberPaths(
  value: unknown,
  path: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  if (typeof value === "number") out.push(path);
  else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) numberPaths(value[i], [...path, i], out);
  } else if (typeof value === "object" && value !== null && !(value instanceof Uint8Array)) {
    for (const [k, v] of Object.entries(value)) numberPaths(v, [...path, k], out);
  }
  return out;
}

function setPath(root: unknown, path: readonly (string | number)[], value: unknown): void {
  let node = root as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++) node = node[path[i] as string | number] as Record<string | number, unknown>;
  node[path[path.length - 1] as string | number] = value;
}

type Envelope = [version: unknown, cluster: unknown, group: unknown, sender: unknown, type: unknown, body: unknown];

/** msgpack headers that claim far more data than follows. */
const HUGE_HEADERS = [
  [0xdd, 0xff, 0xff, 0xff, 0xff], // array32
  [0xdf, 0xff, 0xff, 0xff, 0xff], // map32
  [0xc6, 0xff, 0xff, 0xff, 0xff], // bin32
  [0xdb, 0xff, 0xff, 0xff, 0xff], // str32
  [0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01], // ext32
  [0xdc, 0xff, 0xff], // array16
  [0xc5, 0xff, 0xff], // bin16
];

interface Mutation {
  readonly how: string;
  readonly weight: number;
  /** Returns the frame and what the codec must do with it. */
  readonly make: (prng: Prng, target: FuzzTarget, type: FuzzedType) => Pick<FuzzFrame, "data" | "expect">;
}

function validEnvelope(prng: Prng, target: FuzzTarget, type: FuzzedType): Envelope {
  return [PROTOCOL_VERSION, target.cluster, target.group, target.fuzzer, type, validBody(prng, target, type)];
}

function validFrame(prng: Prng, target: FuzzTarget, type: FuzzedType): Uint8Array {
  const [, cluster, group, sender, , body] = validEnvelope(prng, target, type);
  return encodeFrame(cluster as string, group as string, sender as string, type, body as MessageMap[FuzzedType]);
}

const MUTATIONS: readonly Mutation[] = [
  {
    how: "bit-flip",
    weight: 6,
    make: (prng, target, type) => {
      const data = validFrame(prng, target, type);
      for (let n = prng.int(1, 8); n > 0; n--) {
        const i = prng.int(0, data.length - 1);
        data[i] = (data[i] as number) ^ (1 << prng.int(0, 7));
      }
      return { data, expect: null };
    },
  },
  {
    how: "byte-overwrite",
    weight: 3,
    make: (prng, target, type) => {
      const data = validFrame(prng, target, type);
      for (let n = prng.int(1, 4); n > 0; n--)
        data[prng.int(0, data.length - 1)] = prng.pick([0x00, 0xc1, 0xff, 0x7f, 0x80, 0xdd, 0xc6, prng.int(0, 255)]);
      return { data, expect: null };
    },
  },
  {
    how: "truncation",
    weight: 4,
    make: (prng, target, type) => {
      const data = validFrame(prng, target, type);
      return { data: data.subarray(0, prng.int(0, data.length - 1)), expect: "malformed" };
    },
  },
  {
    how: "extension",
    weight: 3,
    make: (prng, target, type) => {
      const data = validFrame(prng, target, type);
      const tail = randomBytes(prng, prng.int(1, 16));
      const out = new Uint8Array(data.length + tail.length);
      out.set(data);
      out.set(tail, data.length);
      return { data: out, expect: "malformed" };
    },
  },
  {
    how: "field-type-swap",
    weight: 6,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      const body = envelope[5] as Record<string, unknown>;
      const key = prng.pick(Object.keys(body).filter((k) => k !== "transfer"));
      const original = body[key];
      let replacement = randomValue(prng);
      while (kindOf(replacement) === kindOf(original) && kindOf(original) !== "number") replacement = randomValue(prng);
      // A number replaced by a valid uint is not a type swap: force a value a uint field refuses.
      if (typeof replacement === "number" && Number.isSafeInteger(replacement) && replacement >= 0)
        replacement = prng.pick(BAD_NUMBERS);
      body[key] = replacement;
      return { data: packValue(envelope), expect: "invalid" };
    },
  },
  {
    // [0, ""] is the ballot below all, which no proposer owns: a vote or a value at it is refused.
    how: "null-ballot",
    weight: 1,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      const body = envelope[5] as Record<string, unknown>;
      if (!("ballot" in body)) return { data: packValue(envelope), expect: "decode" };
      body.ballot = [0, ""];
      return { data: packValue(envelope), expect: "invalid" };
    },
  },
  {
    how: "bad-number",
    weight: 6,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      const paths = numberPaths(envelope[5]);
      if (paths.length === 0) return { data: packValue(envelope), expect: "decode" };
      setPath(envelope[5], prng.pick(paths), prng.pick(BAD_NUMBERS));
      return { data: packValue(envelope), expect: "invalid" };
    },
  },
  {
    how: "missing-field",
    weight: 2,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      const body = envelope[5] as Record<string, unknown>;
      delete body[prng.pick(Object.keys(body).filter((k) => k !== "transfer"))];
      return { data: packValue(envelope), expect: "invalid" };
    },
  },
  {
    how: "entry-columns",
    weight: 4,
    make: (prng, target) => {
      const envelope = validEnvelope(prng, target, "raft.append");
      const body = envelope[5] as {
        entries: { terms: unknown[]; kinds: unknown[]; sizes: number[]; data: Uint8Array };
      };
      const e = body.entries;
      switch (prng.int(0, 4)) {
        case 0:
          e.terms = [...e.terms, 1];
          break;
        case 1:
          e.kinds = [...e.kinds, 0];
          break;
        case 2:
          e.sizes = [...e.sizes, 0, 1];
          e.terms = [...e.terms, 1, 1];
          e.kinds = [...e.kinds, 0, 0];
          break;
        case 3:
          e.terms = [...e.terms, 1];
          e.kinds = [...e.kinds, prng.pick([3, -1, 255, 0.5])];
          e.sizes = [...e.sizes, 0];
          break;
        default:
          e.data = new Uint8Array(e.data.length + prng.int(1, 8));
      }
      return { data: packValue(envelope), expect: "invalid" };
    },
  },
  {
    // More entries than one message may carry; rare, as each such frame is 200 KB of columns.
    how: "too-many-entries",
    weight: 0.01,
    make: (prng, target) => {
      const envelope = validEnvelope(prng, target, "raft.append");
      const n = 65537;
      (envelope[5] as Record<string, unknown>).entries = {
        terms: new Array(n).fill(prng.int(0, 3)),
        kinds: new Array(n).fill(EntryKind.Noop),
        sizes: new Array(n).fill(0),
        data: new Uint8Array(0),
      };
      return { data: packValue(envelope), expect: "invalid" };
    },
  },
  {
    how: "wrong-version",
    weight: 2,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      envelope[0] = prng.pick([0, 2, PROTOCOL_VERSION + 1, -1, "1", null, 1.5, Number.NaN]);
      return { data: packValue(envelope), expect: "version" };
    },
  },
  {
    how: "wrong-cluster-or-group",
    weight: 2,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      envelope[prng.chance(0.5) ? 1 : 2] = `other${prng.int(0, 9)}`;
      return { data: packValue(envelope), expect: "foreign" };
    },
  },
  {
    how: "bad-token",
    weight: 2,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      envelope[prng.int(1, 3)] = prng.pick(["", "a.b", "a b", "*", ">", "x".repeat(65), 7, null, new Uint8Array(2)]);
      return { data: packValue(envelope), expect: "malformed" };
    },
  },
  {
    how: "unknown-type",
    weight: 2,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      envelope[4] = prng.pick([
        "raft.nope",
        "",
        "RAFT.APPEND",
        "constructor",
        "__proto__",
        "toString",
        3,
        null,
        ["raft.vote"],
      ]);
      return { data: packValue(envelope), expect: "unknown_type" };
    },
  },
  {
    how: "body-of-other-type",
    weight: 2,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      envelope[5] = validBody(prng, target, prng.pick(ALL_TYPES));
      return { data: packValue(envelope), expect: null };
    },
  },
  {
    how: "body-not-object",
    weight: 1,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      envelope[5] = prng.pick([null, 1, "body", [1, 2], new Uint8Array(3), true]);
      return { data: packValue(envelope), expect: "invalid" };
    },
  },
  {
    how: "envelope-shape",
    weight: 2,
    make: (prng, target, type) => {
      const envelope: unknown[] = validEnvelope(prng, target, type);
      if (prng.chance(0.5)) envelope.splice(prng.int(0, 5), 1);
      else envelope.push(randomValue(prng));
      return { data: packValue(prng.chance(0.1) ? { ...envelope } : envelope), expect: "malformed" };
    },
  },
  {
    how: "huge-length",
    weight: 3,
    make: (prng, target, type) => {
      const head = packValue([PROTOCOL_VERSION, target.cluster, target.group, target.fuzzer, type]);
      // Turn the 5-element fixarray header into a 6-element one, then claim a huge body.
      head[0] = 0x96;
      const huge = prng.pick(HUGE_HEADERS);
      const tail = randomBytes(prng, prng.int(0, 24));
      const out = new Uint8Array(head.length + huge.length + tail.length);
      out.set(head);
      out.set(huge, head.length);
      out.set(tail, head.length + huge.length);
      return { data: out, expect: "malformed" };
    },
  },
  {
    // Decodes, but the subject names the fuzzer: the transport, not the codec, drops it as spoofed.
    how: "spoofed-sender",
    weight: 2,
    make: (prng, target, type) => {
      const envelope = validEnvelope(prng, target, type);
      envelope[3] = prng.pick(target.members);
      return { data: packValue(envelope), expect: "decode" };
    },
  },
  {
    how: "too-large",
    weight: 0.02,
    make: (prng, target) => ({ data: new Uint8Array(target.maxFrameBytes + prng.int(1, 1024)), expect: "too_large" }),
  },
];

/**
 * A Raft frame from a sender outside the membership, with its terms set to 0: below every
 * elected term, as a delayed frame would be. Raft trusts a member that claims the current term
 * (it cannot tell it from a leader), and a member can only be impersonated with NATS rights the
 * deployment gives no one (deploy/nats-server.conf); the codec refuses terms beyond MAX_RAFT_TERM.
 */
function staleRaftTerms(type: FuzzedType, body: unknown): unknown {
  if (!type.startsWith("raft.") || typeof body !== "object" || body === null) return body;
  const stale: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  for (const field of ["term", "lastLogTerm", "prevLogTerm", "conflictTerm", "lastTerm"]) {
    if (field in stale) stale[field] = 0;
  }
  return stale;
}

interface Hostile {
  readonly how: string;
  readonly weight: number;
  readonly make: (prng: Prng, target: FuzzTarget) => { type: FuzzedType; sender: NodeId; body: unknown };
}

const HOSTILE: readonly Hostile[] = [
  {
    // A member's stale message replayed late (legal input: networks delay and duplicate): Raft
    // messages of term 0, below every elected term, and Paxos prepares at the lowest ballot a
    // proposer runs. (A phase-2 message invented at an old ballot would not be a replay: it could
    // carry a second value at one ballot, which no correct proposer sends.)
    how: "stale-from-member",
    weight: 2,
    make: (prng, target) => {
      const raft = target.types.filter((t) => t.startsWith("raft."));
      const type = raft.length > 0 ? prng.pick(raft) : "paxos.p1a";
      const body = staleRaftTerms(type, validBody(prng, target, type, true)) as Record<string, unknown>;
      if (raft.length === 0) body.ballot = [1, prng.pick(target.members.filter((m) => m.includes("proposer")))];
      const senders = raft.length > 0 ? target.members : target.members.filter((m) => m.includes("proposer"));
      return { type, sender: prng.pick(senders.length > 0 ? senders : target.members), body };
    },
  },
  {
    // Small ballots, stale Raft terms; from a sender outside the membership.
    how: "non-member",
    weight: 4,
    make: (prng, target) => {
      const type = prng.pick(target.types);
      return { type, sender: target.fuzzer, body: staleRaftTerms(type, validBody(prng, target, type)) };
    },
  },
  {
    how: "absurd-numbers",
    weight: 2,
    make: (prng, target) => {
      const type = prng.pick(target.types);
      return { type, sender: target.fuzzer, body: staleRaftTerms(type, validBody(prng, target, type, true)) };
    },
  },
  {
    how: "foreign-protocol",
    weight: 1,
    make: (prng, target) => {
      const foreign = ALL_TYPES.filter((t) => !target.types.includes(t));
      const type = prng.pick(foreign.length > 0 ? foreign : ALL_TYPES);
      return {
        type,
        sender: target.fuzzer,
        body: staleRaftTerms(type, validBody(prng, target, type, prng.chance(0.5))),
      };
    },
  },
];

/** Frames of one class mix: `random` and `mutated` must be dropped when malformed; `hostile` must decode. */
export const CLASS_WEIGHTS: Readonly<Record<FrameClass, number>> = { random: 2, mutated: 6, hostile: 2 };

function weighted<T extends { weight: number }>(prng: Prng, items: readonly T[]): T {
  let total = 0;
  for (const item of items) total += item.weight;
  let r = prng.float() * total;
  for (const item of items) {
    r -= item.weight;
    if (r < 0) return item;
  }
  return items[items.length - 1] as T;
}

const CLASSES = (Object.entries(CLASS_WEIGHTS) as [FrameClass, number][]).map(([name, weight]) => ({ name, weight }));

/** The next frame for `target`. */
export function nextFrame(prng: Prng, target: FuzzTarget): FuzzFrame {
  const frameClass = weighted(prng, CLASSES).name;
  if (frameClass === "random") {
    if (prng.chance(0.5))
      return {
        class: "random",
        how: "random-bytes",
        data: randomBytes(prng, prng.int(0, 256)),
        subject: target.fuzzer,
        expect: null,
      };
    return {
      class: "random",
      how: "random-msgpack",
      data: packValue(randomValue(prng)),
      subject: target.fuzzer,
      expect: null,
    };
  }
  if (frameClass === "mutated") {
    const mutation = weighted(prng, MUTATIONS);
    // Mutations start from frames of every type, not only the target's: a wrong-protocol frame is mutated too.
    const type = prng.chance(0.8) ? prng.pick(target.types) : prng.pick(ALL_TYPES);
    return { class: "mutated", how: mutation.how, subject: target.fuzzer, ...mutation.make(prng, target, type) };
  }
  const hostile = weighted(prng, HOSTILE);
  const { type, sender, body } = hostile.make(prng, target);
  return {
    class: "hostile",
    how: hostile.how,
    data: encodeFrame(target.cluster, target.group, sender, type, body as MessageMap[FuzzedType]),
    subject: sender,
    expect: "decode",
  };
}
