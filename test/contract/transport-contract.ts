import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DROP_REASONS,
  type DropReason,
  EntryKind,
  encodeFrame,
  type FrameRoute,
  type Inbound,
  type MessageMap,
  type MessageType,
  messageSchema,
  PROTOCOL_VERSION,
  packValue,
  registeredMessageTypes,
  type Transport,
} from "../../packages/core/src/index.js";
// Registers Paxos's message schemas: every registered type gets a sample body below.
import "../../packages/paxos/src/messages.js";
import { packEntries } from "../../packages/raft/src/internal.js";
import "./probe-message.js";

/**
 * The behaviour every `Transport` must have, whatever carries the frames. Each test gets a
 * fresh group (a new group name), so frames of one test can never reach another.
 */

export interface TransportGroup {
  /** One per member, same order as members. */
  transports: Transport[];
  /** Publishes raw bytes as if sent by `sender`: on its broadcast subject, or its direct subject to `target`. */
  injectRaw(sender: string, bytes: Uint8Array, target?: string): void;
  /** Resolves once every frame sent so far has been delivered. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export interface TransportGroupOptions {
  cluster: string;
  group: string;
  members: string[];
  /**
   * The inbound frame limit every transport of the group must be created with. It is well
   * below NATS's 1 MB max_payload, so an oversized frame can still be carried to the receiver.
   */
  maxFrameBytes: number;
}

/** Small enough that NATS carries an oversized frame; large enough for any normal frame. */
export const CONTRACT_MAX_FRAME_BYTES = 64 * 1024;

/** A valid body of every message type: the round-trip test fails if a new type has none. */
export const SAMPLE_BODIES: { [K in MessageType]: MessageMap[K] } = {
  "raft.vote": { term: 7, lastLogIndex: 41, lastLogTerm: 6, preVote: true, transfer: true },
  "raft.vote.resp": { term: 7, granted: true, preVote: false },
  "raft.append": {
    term: 7,
    prevLogIndex: 40,
    prevLogTerm: 6,
    leaderCommit: 39,
    seq: 12,
    entries: packEntries([
      { term: 7, kind: EntryKind.Command, data: new Uint8Array([0, 1, 2, 250, 255]) },
      { term: 7, kind: EntryKind.Noop, data: new Uint8Array(0) },
      { term: 7, kind: EntryKind.Config, data: new TextEncoder().encode('{"members":["n1","n2","n3"]}') },
    ]),
  },
  "raft.append.resp": {
    term: 7,
    success: false,
    index: 40,
    lastIndex: 38,
    conflictTerm: 5,
    conflictIndex: 30,
    seq: 12,
  },
  "raft.timeout-now": { term: 8 },
  "raft.snapshot": {
    term: 8,
    index: 120,
    lastTerm: 7,
    config: new TextEncoder().encode('["n1","n2","n3"]'),
    offset: 65_536,
    total: 200_000,
    data: new Uint8Array([9, 8, 7, 0, 255]),
  },
  "raft.snapshot.resp": { term: 8, index: 120, next: 131_072 },
  "paxos.p1a": { ballot: [3, "n1-proposer"], fromSlot: 1 },
  "paxos.p1b": {
    ballot: [3, "n1-proposer"],
    truncated: 4,
    accepted: [
      {
        slot: 5,
        ballot: [2, "n2-proposer"],
        value: { kind: 0, data: new Uint8Array([1, 2]), origin: "n1-learner", seq: 9 },
      },
    ],
    more: false,
  },
  "paxos.p2a": {
    ballot: [3, "n1-proposer"],
    proposals: [{ slot: 6, value: { kind: 1, data: new Uint8Array(0), origin: "", seq: 0 } }],
  },
  "paxos.p2b": { ballot: [3, "n1-proposer"], slots: [5, 6], truncated: 4 },
  "paxos.nack": { ballot: [2, "n2-proposer"], promised: [3, "n1-proposer"], truncated: 4 },
  "paxos.heartbeat": { ballot: [3, "n1-proposer"], nextSlot: 7, round: 12 },
  "paxos.alive": { ballot: [3, "n1-proposer"], round: 12, truncated: 4 },
  "paxos.request": { requests: [{ seq: 4294967297, kind: 0, data: new Uint8Array([1]) }] },
  "paxos.read": { reads: [4294967298] },
  "paxos.read.index": { reads: [4294967298], slot: 6 },
  "paxos.fill": { slots: [5] },
  "paxos.repeat": { from: 5, to: 6 },
  "paxos.repeated": { truncated: 4, accepted: [], through: 6 },
  "paxos.learned": { applied: 6, checkpoint: 4 },
  "paxos.snapshot.req": { slot: 4, offset: 0 },
  "paxos.snapshot.chunk": { slot: 4, offset: 0, total: 3, data: new Uint8Array([7, 8, 9]) },
  "test.probe": { seq: 3, data: new Uint8Array([1, 0, 255]) },
};

const MEMBERS = ["n1", "n2", "n3"] as const;
const CLUSTER = "contract";

export function describeTransportContract(
  name: string,
  makeGroup: (options: TransportGroupOptions) => Promise<TransportGroup>,
): void {
  describe(`Transport contract: ${name}`, () => {
    let group: TransportGroup | undefined;
    let groupName = "";
    let inboxes: Inbound[][] = [];
    let counter = 0;

    const transport = (i: number): Transport => {
      const t = group?.transports[i];
      if (t === undefined) throw new Error(`no transport ${i}`);
      return t;
    };
    const inbox = (i: number): Inbound[] => inboxes[i] ?? [];
    const settled = async (): Promise<void> => {
      if (group === undefined) throw new Error("no group");
      await group.settle();
    };

    beforeEach(async () => {
      counter++;
      groupName = `g${counter}_${Math.random().toString(36).slice(2, 8)}`;
      group = await makeGroup({
        cluster: CLUSTER,
        group: groupName,
        members: [...MEMBERS],
        maxFrameBytes: CONTRACT_MAX_FRAME_BYTES,
      });
      expect(group.transports.map((t) => t.self)).toEqual(MEMBERS);
      inboxes = group.transports.map((t) => {
        const received: Inbound[] = [];
        t.listen((message) => received.push(message));
        return received;
      });
    });

    afterEach(async () => {
      await group?.close();
      group = undefined;
    });

    it("delivers a broadcast to every other member exactly once, and not to the sender", async () => {
      transport(0).broadcast("raft.timeout-now", { term: 3 });
      await settled();
      expect(inbox(0)).toEqual([]);
      for (const i of [1, 2]) {
        expect(inbox(i)).toEqual([
          {
            cluster: CLUSTER,
            group: groupName,
            sender: "n1",
            type: "raft.timeout-now",
            body: { term: 3 },
            headers: undefined,
          },
        ]);
      }
    });

    it("delivers a directed message only to its target", async () => {
      transport(0).send("n3", "raft.vote.resp", { term: 2, granted: true, preVote: false });
      await settled();
      expect(inbox(0)).toEqual([]);
      expect(inbox(1)).toEqual([]);
      expect(inbox(2)).toHaveLength(1);
      expect(inbox(2)[0]).toMatchObject({ sender: "n1", type: "raft.vote.resp", body: { term: 2, granted: true } });
    });

    it("preserves each sender's order, across broadcasts and directed messages", async () => {
      const count = 300;
      for (let i = 0; i < count; i++) {
        // n1 alternates broadcast and directed; n3 sends directed only; both interleave.
        if (i % 2 === 0) transport(0).broadcast("raft.timeout-now", { term: i });
        else transport(0).send("n2", "raft.timeout-now", { term: i });
        transport(2).send("n2", "raft.timeout-now", { term: i });
      }
      await settled();
      const termsFrom = (i: number, sender: string) =>
        inbox(i)
          .filter((m) => m.sender === sender)
          .map((m) => (m.body as { term: number }).term);
      const all = Array.from({ length: count }, (_, i) => i);
      expect(termsFrom(1, "n1")).toEqual(all);
      expect(termsFrom(1, "n3")).toEqual(all);
      expect(termsFrom(2, "n1")).toEqual(all.filter((i) => i % 2 === 0));
    });

    it("tells the subject and size of each received frame, and the subject of each send (for telemetry)", async () => {
      const frames: { route: FrameRoute | undefined; bytes: number }[] = [];
      transport(1).listen((_, frame) => {
        if (frame !== undefined) frames.push({ route: frame.route, bytes: frame.bytes });
      });
      transport(0).broadcast("raft.timeout-now", { term: 1 });
      transport(0).send("n2", "raft.timeout-now", { term: 2 });
      await settled();
      const base = `quorate.${CLUSTER}.${groupName}`;
      const broadcast = { subject: `${base}.b.n1`, template: `${base}.b.{sender}` };
      const direct = { subject: `${base}.d.n2.n1`, template: `${base}.d.{target}.{sender}` };
      expect(frames.map((f) => f.route)).toEqual([broadcast, direct]);
      const size = encodeFrame(CLUSTER, groupName, "n1", "raft.timeout-now", { term: 1 }).length;
      expect(frames.map((f) => f.bytes)).toEqual([size, size]);
      expect(transport(0).routeTo?.(null)).toEqual(broadcast);
      expect(transport(0).routeTo?.("n2")).toEqual(direct);
    });

    it("carries headers, and delivers absent headers as undefined", async () => {
      const trace = {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        tracestate: "quorate=1,other=x",
      };
      transport(0).send("n2", "raft.timeout-now", { term: 1 }, trace);
      transport(0).send("n2", "raft.timeout-now", { term: 2 });
      transport(0).broadcast("raft.timeout-now", { term: 3 }, { "x-quorate-hop": "2" });
      await settled();
      expect(inbox(1).map((m) => [m.body, m.headers])).toEqual([
        [{ term: 1 }, trace],
        [{ term: 2 }, undefined],
        [{ term: 3 }, { "x-quorate-hop": "2" }],
      ]);
      expect(inbox(2).map((m) => m.headers)).toEqual([{ "x-quorate-hop": "2" }]);
    });

    it("round-trips a valid body of every message type", async () => {
      const types = registeredMessageTypes().sort();
      expect(Object.keys(SAMPLE_BODIES).sort(), "SAMPLE_BODIES must cover every message type").toEqual(types);
      for (const type of types) {
        expect(messageSchema(type)?.(SAMPLE_BODIES[type]), `sample body of ${type} must be valid`).toBe(true);
        sendSample(transport(0), "n2", type);
      }
      await settled();
      expect(inbox(1).map((m) => m.type)).toEqual(types);
      for (const message of inbox(1)) {
        expect(plain(message.body), message.type).toEqual(plain(SAMPLE_BODIES[message.type]));
        expect(messageSchema(message.type)?.(message.body)).toBe(true);
      }
    });

    const dropCases: { name: string; reason: DropReason; frame: (claimedSender: string) => Uint8Array }[] = [
      { name: "garbage bytes", reason: "malformed", frame: () => new Uint8Array([0xc1, 0x00, 0xff, 0x13, 0x37]) },
      {
        name: "a truncated frame",
        reason: "malformed",
        frame: (s) => {
          const whole = encodeFrame(CLUSTER, groupName, s, "raft.append", SAMPLE_BODIES["raft.append"]);
          return whole.slice(0, whole.length - 7);
        },
      },
      {
        name: "an unknown protocol version",
        reason: "version",
        frame: (s) => packValue([PROTOCOL_VERSION + 1, CLUSTER, groupName, s, "raft.timeout-now", { term: 1 }]),
      },
      {
        name: "an unknown message type",
        reason: "unknown_type",
        frame: (s) => packValue([PROTOCOL_VERSION, CLUSTER, groupName, s, "raft.no-such-type", { term: 1 }]),
      },
      {
        name: "an invalid body",
        reason: "invalid",
        frame: (s) => packValue([PROTOCOL_VERSION, CLUSTER, groupName, s, "raft.vote", { term: -1, preVote: "yes" }]),
      },
      {
        name: "a foreign cluster",
        reason: "foreign",
        frame: (s) => encodeFrame("elsewhere", groupName, s, "raft.timeout-now", { term: 1 }),
      },
      {
        name: "a foreign group",
        reason: "foreign",
        frame: (s) => encodeFrame(CLUSTER, `${groupName}x`, s, "raft.timeout-now", { term: 1 }),
      },
      {
        name: "an oversized frame",
        reason: "too_large",
        frame: (s) =>
          encodeFrame(CLUSTER, groupName, s, "raft.append", {
            ...SAMPLE_BODIES["raft.append"],
            entries: packEntries([
              { term: 7, kind: EntryKind.Command, data: new Uint8Array(CONTRACT_MAX_FRAME_BYTES) },
            ]),
          }),
      },
      {
        name: "an envelope sender other than the subject's",
        reason: "spoofed",
        // Published on n2's subjects, claiming to be n3.
        frame: () => encodeFrame(CLUSTER, groupName, "n3", "raft.timeout-now", { term: 1 }),
      },
    ];

    for (const { name: caseName, reason, frame } of dropCases) {
      it(`drops and counts ${caseName} as '${reason}', while valid traffic keeps flowing`, async () => {
        const bytes = frame("n2");
        transport(1).send("n1", "raft.timeout-now", { term: 100 });
        group?.injectRaw("n2", bytes, "n1");
        group?.injectRaw("n2", bytes);
        transport(1).send("n1", "raft.timeout-now", { term: 101 });
        transport(1).broadcast("raft.timeout-now", { term: 102 });
        await settled();

        // n1 got the frame twice (directed and broadcast), n3 once (broadcast). n2 is the
        // claimed publisher: whether it sees its own subject's broadcast is transport-specific.
        expect(transport(0).stats.dropped).toEqual(dropped({ [reason]: 2 }));
        expect(transport(2).stats.dropped).toEqual(dropped({ [reason]: 1 }));
        expect(inbox(0).map((m) => [m.sender, m.body])).toEqual([
          ["n2", { term: 100 }],
          ["n2", { term: 101 }],
          ["n2", { term: 102 }],
        ]);
        expect(inbox(2).map((m) => [m.sender, m.body])).toEqual([["n2", { term: 102 }]]);
        expect(transport(0).stats.received).toBe(3);
        expect(transport(2).stats.received).toBe(1);
      });
    }

    it("keeps delivering after the handler throws", async () => {
      const seen: number[] = [];
      transport(1).listen((message) => {
        const term = (message.body as { term: number }).term;
        seen.push(term);
        if (term === 1) throw new Error("handler failure injected by the contract test");
      });
      for (const term of [1, 2, 3]) transport(0).send("n2", "raft.timeout-now", { term });
      transport(0).broadcast("raft.timeout-now", { term: 4 });
      await settled();
      expect(seen).toEqual([1, 2, 3, 4]);
      expect(transport(1).stats.handlerErrors).toBe(1);
      expect(transport(1).stats.received).toBe(4);
      expect(inbox(2).map((m) => m.body)).toEqual([{ term: 4 }]);
    });

    it("counts sent and received frames", async () => {
      for (let i = 0; i < 3; i++) transport(0).broadcast("raft.timeout-now", { term: i });
      transport(0).send("n2", "raft.timeout-now", { term: 10 });
      transport(0).send("n2", "raft.timeout-now", { term: 11 });
      transport(0).send("n3", "raft.timeout-now", { term: 12 });
      transport(2).send("n1", "raft.timeout-now", { term: 13 });
      await settled();
      expect([0, 1, 2].map((i) => transport(i).stats.sent)).toEqual([6, 0, 1]);
      expect([0, 1, 2].map((i) => transport(i).stats.received)).toEqual([1, 5, 4]);
      for (const i of [0, 1, 2]) {
        expect(transport(i).stats.dropped).toEqual(dropped({}));
        expect(transport(i).stats.handlerErrors).toBe(0);
      }
    });

    it("delivers nothing to or from a member after its close()", async () => {
      transport(0).send("n2", "raft.timeout-now", { term: 1 });
      await settled();
      await transport(1).close();
      await transport(1).close(); // idempotent

      transport(0).broadcast("raft.timeout-now", { term: 2 });
      transport(0).send("n2", "raft.timeout-now", { term: 3 });
      transport(2).send("n2", "raft.timeout-now", { term: 4 });
      transport(1).broadcast("raft.timeout-now", { term: 5 });
      transport(1).send("n3", "raft.timeout-now", { term: 6 });
      await settled();

      expect(inbox(1).map((m) => m.body)).toEqual([{ term: 1 }]);
      expect(transport(1).stats.received).toBe(1);
      expect(inbox(2).map((m) => [m.sender, m.body])).toEqual([["n1", { term: 2 }]]);
      expect(inbox(0)).toEqual([]);
    });
  });
}

function sendSample<T extends MessageType>(from: Transport, to: string, type: T): void {
  from.send(to, type, SAMPLE_BODIES[type]);
}

function dropped(counts: Partial<Record<DropReason, number>>): Record<DropReason, number> {
  const all = {} as Record<DropReason, number>;
  for (const reason of DROP_REASONS) all[reason] = counts[reason] ?? 0;
  return all;
}

/** Decoded bytes may be Buffers; compare contents, not classes. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}
