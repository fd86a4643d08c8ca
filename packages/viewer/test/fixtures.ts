import type { AttributeValue, SpanEvent, SpanRecord } from "../src/index.js";

/**
 * Span families as members export them, in the shapes RaftTelemetry and the Paxos role
 * telemetry record (docs/telemetry.md); times in milliseconds from T0.
 */

export const T0 = 1_800_000_000_000;
const TRACE = "0af7651916cd43dd8448eb211c80319c";

const KIND = { internal: 1, server: 2, producer: 4, consumer: 5 } as const;

interface SpanInput {
  id: string;
  parent?: string;
  name: string;
  kind: keyof typeof KIND;
  instance: string;
  member: string;
  start: number;
  end: number;
  attributes?: Record<string, AttributeValue>;
  events?: [name: string, at: number, attributes?: Record<string, AttributeValue>][];
  status?: number;
  statusMessage?: string;
  trace?: string;
}

export function span(s: SpanInput): SpanRecord {
  const events: SpanEvent[] = (s.events ?? []).map(([name, at, attributes]) => ({
    name,
    timeMs: T0 + at,
    attributes: attributes ?? {},
  }));
  return {
    traceId: s.trace ?? TRACE,
    spanId: s.id.padStart(16, "0"),
    ...(s.parent === undefined ? {} : { parentSpanId: s.parent.padStart(16, "0") }),
    name: s.name,
    kind: KIND[s.kind],
    startMs: T0 + s.start,
    endMs: T0 + s.end,
    attributes: { "quorate.cluster": "c", "quorate.member": s.member, ...s.attributes },
    events,
    links: [],
    status: s.status ?? 0,
    ...(s.statusMessage === undefined ? {} : { statusMessage: s.statusMessage }),
    instance: s.instance,
    namespace: "c",
  };
}

export const id = (s: string) => s.padStart(16, "0");

/**
 * A put on leader n1 of three: one AppendEntries broadcast; n3 acknowledges first, which
 * completes the quorum of 2 (the leader counts); commit, apply, then the KV reply.
 */
export function raftRound(): SpanRecord[] {
  const append = { "quorate.raft.term": 2, "quorate.raft.first_index": 5, "quorate.raft.last_index": 5 };
  return [
    span({
      id: "a1",
      name: "kv.serve.put",
      kind: "server",
      instance: "c-n1",
      member: "n1",
      start: 0,
      end: 10,
      attributes: { "quorate.kv.key": "k" },
    }),
    span({
      id: "a2",
      parent: "a1",
      name: "raft.round",
      kind: "internal",
      instance: "c-n1",
      member: "n1",
      start: 1,
      end: 4.6,
      attributes: { ...append, "quorate.raft.batch_size": 1, "quorate.raft.quorum_size": 2 },
      events: [
        ["ack", 3.8, { "quorate.peer": "n3", "quorate.raft.index": 5 }],
        ["commit", 3.9, { "quorate.raft.index": 5 }],
        ["ack", 4.2, { "quorate.peer": "n2", "quorate.raft.index": 5 }],
        ["apply", 4.5, { "quorate.raft.index": 5 }],
      ],
    }),
    span({
      id: "a3",
      parent: "a2",
      name: "publish raft.append",
      kind: "producer",
      instance: "c-n1",
      member: "n1",
      start: 1.2,
      end: 1.3,
      attributes: {
        ...append,
        "quorate.peer": "*",
        "quorate.message.type": "raft.append",
        "messaging.destination.name": "quorate.c.default.b.n1",
      },
    }),
    span({
      id: "a4",
      parent: "a3",
      name: "process raft.append",
      kind: "consumer",
      instance: "c-n2",
      member: "n2",
      start: 2,
      end: 4,
      attributes: {
        "quorate.peer": "n1",
        "quorate.raft.term": 2,
        "quorate.raft.success": true,
        "quorate.raft.index": 5,
      },
    }),
    span({
      id: "a5",
      parent: "a3",
      name: "process raft.append",
      kind: "consumer",
      instance: "c-n3",
      member: "n3",
      start: 1.8,
      end: 3.6,
      attributes: {
        "quorate.peer": "n1",
        "quorate.raft.term": 2,
        "quorate.raft.success": true,
        "quorate.raft.index": 5,
      },
    }),
  ];
}

/** n2's candidacy: a pre-vote n1 grants and n3 denies, then a vote n3 denies and n1 grants: won. */
export function raftElection(): SpanRecord[] {
  const consumer = (
    id: string,
    parent: string,
    instance: string,
    member: string,
    start: number,
    end: number,
    granted: boolean,
  ) =>
    span({
      id,
      parent,
      name: "process raft.vote",
      kind: "consumer",
      instance,
      member,
      start,
      end,
      attributes: { "quorate.peer": "n2", "quorate.raft.term": 4, granted },
    });
  return [
    span({
      id: "b1",
      name: "raft.election",
      kind: "internal",
      instance: "c-n2",
      member: "n2",
      start: 0,
      end: 5.1,
      attributes: { "quorate.raft.term": 4, "quorate.raft.outcome": "won", "quorate.raft.pre_vote": false },
      events: [
        ["pre-vote.start", 0, { "quorate.raft.term": 4 }],
        ["pre-vote", 2, { "quorate.peer": "n1", "quorate.raft.granted": true, "quorate.raft.term": 4 }],
        ["pre-vote.won", 2.1],
        ["vote.start", 2.2, { "quorate.raft.term": 4 }],
        ["pre-vote", 2.6, { "quorate.peer": "n3", "quorate.raft.granted": false, "quorate.raft.term": 4 }],
        ["vote", 4, { "quorate.peer": "n3", "quorate.raft.granted": false, "quorate.raft.term": 4 }],
        ["vote", 5, { "quorate.peer": "n1", "quorate.raft.granted": true, "quorate.raft.term": 4 }],
      ],
    }),
    span({
      id: "b2",
      parent: "b1",
      name: "publish raft.vote",
      kind: "producer",
      instance: "c-n2",
      member: "n2",
      start: 0.1,
      end: 0.2,
      attributes: { "quorate.peer": "*", "quorate.raft.pre_vote": true },
    }),
    span({
      id: "b3",
      parent: "b1",
      name: "publish raft.vote",
      kind: "producer",
      instance: "c-n2",
      member: "n2",
      start: 2.3,
      end: 2.4,
      attributes: { "quorate.peer": "*", "quorate.raft.pre_vote": false },
    }),
    consumer("b4", "b2", "c-n1", "n1", 1, 1.9, true),
    consumer("b5", "b2", "c-n3", "n3", 1.2, 2.5, false),
    consumer("b6", "b3", "c-n1", "n1", 3, 4.8, true),
    consumer("b7", "b3", "c-n3", "n3", 3.1, 3.9, false),
  ];
}

const ballot = { "quorate.paxos.round": 3, "quorate.paxos.proposer": "p1" };

/** Proposer p1 adopts ballot 3.p1 with promises from a1 and a2 (q1 = 2). */
export function paxosPhase1(): SpanRecord[] {
  const acceptor = (id: string, instance: string, member: string, start: number, end: number) =>
    span({
      id,
      parent: "c2",
      name: "process paxos.p1a",
      kind: "consumer",
      instance,
      member,
      start,
      end,
      attributes: { ...ballot, "quorate.peer": "p1", "quorate.paxos.outcome": "promised" },
    });
  return [
    span({
      id: "c1",
      name: "paxos.phase1",
      kind: "internal",
      instance: "c-p1",
      member: "p1",
      start: 0,
      end: 3.6,
      attributes: { ...ballot, "quorate.paxos.quorum_size": 2, "quorate.paxos.outcome": "adopted" },
      events: [
        ["promise", 3, { "quorate.peer": "a1", "quorate.paxos.votes": 0 }],
        ["promise", 3.5, { "quorate.peer": "a2", "quorate.paxos.votes": 1 }],
      ],
    }),
    span({
      id: "c2",
      parent: "c1",
      name: "publish paxos.p1a",
      kind: "producer",
      instance: "c-p1",
      member: "p1",
      start: 0.1,
      end: 0.2,
      attributes: { ...ballot, "quorate.peer": "*" },
    }),
    acceptor("c3", "c-a1", "a1", 1, 2.9),
    acceptor("c4", "c-a2", "a2", 1.1, 3.4),
  ];
}

/**
 * A put through learner l1: its request reaches proposer p1, whose phase 2 for slots 10..11
 * gets accepts from a2 then a1 (q2 = 2) while a3 rejects; l1 learns, applies, replies.
 */
export function paxosPhase2(): SpanRecord[] {
  const acceptor = (id: string, instance: string, member: string, start: number, end: number, outcome: string) =>
    span({
      id,
      parent: "d4",
      name: "process paxos.p2a",
      kind: "consumer",
      instance,
      member,
      start,
      end,
      attributes: { ...ballot, "quorate.peer": "p1", "quorate.paxos.outcome": outcome, "quorate.paxos.slots": 2 },
    });
  const slots = { "quorate.paxos.first_slot": 10, "quorate.paxos.last_slot": 11 };
  return [
    span({ id: "d1", name: "kv.serve.put", kind: "server", instance: "c-l1", member: "l1", start: 0, end: 12 }),
    span({
      id: "d2",
      parent: "d1",
      name: "publish paxos.request",
      kind: "producer",
      instance: "c-l1",
      member: "l1",
      start: 0.5,
      end: 0.6,
    }),
    span({
      id: "d3",
      parent: "d2",
      name: "paxos.phase2",
      kind: "internal",
      instance: "c-p1",
      member: "p1",
      start: 1,
      end: 4.6,
      attributes: { ...ballot, ...slots, "quorate.paxos.batch_size": 2, "quorate.paxos.quorum_size": 2 },
      events: [
        ["accept", 4, { "quorate.peer": "a2", "quorate.paxos.slots": 2 }],
        ["accept", 4.5, { "quorate.peer": "a1", "quorate.paxos.slots": 2 }],
        ["chosen", 4.6, { "quorate.paxos.slots": 2 }],
      ],
    }),
    span({
      id: "d4",
      parent: "d3",
      name: "publish paxos.p2a",
      kind: "producer",
      instance: "c-p1",
      member: "p1",
      start: 1.1,
      end: 1.2,
      attributes: { ...ballot, ...slots, "quorate.peer": "*" },
    }),
    acceptor("d5", "c-a1", "a1", 2, 4.4, "accepted"),
    acceptor("d6", "c-a2", "a2", 1.5, 3.9, "accepted"),
    acceptor("d7", "c-a3", "a3", 2.5, 5, "rejected"),
    span({
      id: "d8",
      parent: "d4",
      name: "process paxos.p2a",
      kind: "consumer",
      instance: "c-l1",
      member: "l1",
      start: 1.6,
      end: 9,
      attributes: { ...ballot, "quorate.peer": "p1" },
      events: [
        ["chosen", 7, { "quorate.paxos.slot": 10 }],
        ["apply", 8, { "quorate.paxos.slot": 10 }],
      ],
    }),
  ];
}

/**
 * A linearizable get on leader n1 of three (ReadIndex): its heartbeat (an AppendEntries with no
 * entries, seq 12) reaches n3 and n2; n3's acknowledgement completes the quorum of 2, the
 * read is confirmed at index 7, n2's ack comes after, and the read is served once index 7 is
 * applied, then the KV reply.
 */
export function raftRead(): SpanRecord[] {
  const resp = (peer: string) => ({
    "quorate.peer": peer,
    "quorate.raft.seq": 12,
    "quorate.message.type": "raft.append.resp",
    "messaging.message.body.size": 61,
  });
  const follower = (spanId: string, instance: string, member: string, start: number, end: number) =>
    span({
      id: spanId,
      parent: "d3",
      name: "process raft.append",
      kind: "consumer",
      instance,
      member,
      start,
      end,
      attributes: {
        "quorate.peer": "n1",
        "quorate.raft.term": 2,
        "quorate.raft.success": true,
        "quorate.raft.index": 7,
        "messaging.message.body.size": 74,
      },
    });
  return [
    span({
      id: "d1",
      name: "kv.serve.get",
      kind: "server",
      instance: "c-n1",
      member: "n1",
      start: 0,
      end: 6,
      attributes: { "quorate.kv.key": "k" },
    }),
    span({
      id: "d2",
      parent: "d1",
      name: "raft.read",
      kind: "internal",
      instance: "c-n1",
      member: "n1",
      start: 0.5,
      end: 5.5,
      attributes: {
        "quorate.raft.term": 2,
        "quorate.raft.batch_size": 1,
        "quorate.raft.quorum_size": 2,
        "quorate.raft.read_index": 7,
      },
      events: [
        ["ack", 3, resp("n3")],
        ["confirmed", 3.1, { "quorate.raft.read_index": 7 }],
        ["ack", 3.5, resp("n2")],
        ["served", 5.4, { "quorate.raft.read_index": 7 }],
      ],
    }),
    span({
      id: "d3",
      parent: "d2",
      name: "publish raft.append",
      kind: "producer",
      instance: "c-n1",
      member: "n1",
      start: 0.7,
      end: 0.8,
      attributes: {
        "quorate.peer": "*",
        "quorate.raft.term": 2,
        "quorate.raft.seq": 12,
        "quorate.message.type": "raft.append",
        "messaging.message.body.size": 74,
      },
    }),
    follower("d4", "c-n2", "n2", 1.5, 3.3),
    follower("d5", "c-n3", "n3", 1.2, 2.8),
  ];
}

/**
 * A Paxos read named like Raft's (`paxos.read`), whatever its messages are: proposer p1 asks
 * the acceptors to confirm its ballot with a message type the viewer does not know; a1 and a2
 * answer (q = 2 acceptors), confirmed, served.
 */
export function paxosRead(): SpanRecord[] {
  const ack = (peer: string) => ({ "quorate.peer": peer, "quorate.message.type": "paxos.confirm.ack" });
  const acceptor = (spanId: string, instance: string, member: string, start: number, end: number) =>
    span({
      id: spanId,
      parent: "e2",
      name: "process paxos.confirm",
      kind: "consumer",
      instance,
      member,
      start,
      end,
      attributes: { ...ballot, "quorate.peer": "p1", "messaging.message.body.size": 40 },
    });
  return [
    span({
      id: "e1",
      name: "paxos.read",
      kind: "internal",
      instance: "c-p1",
      member: "p1",
      start: 0,
      end: 4,
      attributes: { ...ballot, "quorate.paxos.quorum_size": 2, "quorate.paxos.read_index": 9 },
      events: [
        ["ack", 2, ack("a2")],
        ["ack", 2.5, ack("a1")],
        ["confirmed", 2.6],
        ["served", 3.9],
      ],
    }),
    span({
      id: "e2",
      parent: "e1",
      name: "publish paxos.confirm",
      kind: "producer",
      instance: "c-p1",
      member: "p1",
      start: 0.2,
      end: 0.3,
      attributes: { ...ballot, "quorate.peer": "*", "quorate.message.type": "paxos.confirm" },
    }),
    acceptor("e3", "c-a1", "a1", 1, 2.2),
    acceptor("e4", "c-a2", "a2", 0.9, 1.8),
    acceptor("e5", "c-a3", "a3", 1.1, 3.5),
  ];
}
