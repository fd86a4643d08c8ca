import { describe, expect, it } from "vitest";
import { type Arrow, buildRoundModel, type RoundModel, RoundStore, type SpanRecord } from "../src/index.js";
import { id, paxosPhase1, paxosPhase2, paxosRead, raftElection, raftRead, raftRound, T0 } from "./fixtures.js";

/** The model of `roundId` after the store took `spans` one export at a time, in this order. */
function modelAfter(spans: readonly SpanRecord[], roundId: string): RoundModel {
  const store = new RoundStore();
  for (const s of spans) store.add([s]);
  const model = store.round(id(roundId));
  expect(model).toBeDefined();
  return model as RoundModel;
}

const arrowsOf = (m: RoundModel, direction: Arrow["direction"]) => m.arrows.filter((a) => a.direction === direction);
const at = (ms: number) => T0 + ms;

function* permutations<T>(items: readonly T[]): Generator<T[]> {
  if (items.length <= 1) {
    yield [...items];
    return;
  }
  for (const [i, item] of items.entries()) {
    for (const rest of permutations([...items.slice(0, i), ...items.slice(i + 1)])) yield [item, ...rest];
  }
}

describe("diagram model: Raft proposal round", () => {
  const model = modelAfter(raftRound(), "a2");

  it("has a lane per member, the leader's first", () => {
    expect(model.laneList.map((l) => [l.id, l.role, l.exported])).toEqual([
      ["c-n1", "leader", true],
      ["c-n3", "follower", true],
      ["c-n2", "follower", true],
    ]);
    expect(model).toMatchObject({
      kind: "proposal",
      protocol: "raft",
      cluster: "c",
      outcome: "applied",
      label: "term 2 index 5",
    });
    expect(model.durationMs).toBeCloseTo(3.6, 3);
  });

  it("draws an AppendEntries arrow to each follower and its acknowledgement back", () => {
    expect(arrowsOf(model, "request").map((a) => [a.from, a.to, a.type, a.entries, a.sentMs, a.receivedMs])).toEqual([
      ["c-n1", "c-n3", "raft.append", 1, at(1.2), at(1.8)],
      ["c-n1", "c-n2", "raft.append", 1, at(1.2), at(2)],
    ]);
    expect(arrowsOf(model, "reply").map((a) => [a.from, a.to, a.type, a.sentMs, a.receivedMs])).toEqual([
      ["c-n3", "c-n1", "raft.append.resp", at(3.6), at(3.8)],
      ["c-n2", "c-n1", "raft.append.resp", at(4), at(4.2)],
    ]);
  });

  it("marks the acknowledgement that completed the quorum: n3's, the first of the one needed beside the leader", () => {
    expect(model.quorumSize).toBe(2);
    expect(model.arrows.filter((a) => a.quorum).map((a) => a.id)).toEqual([`rep:${id("a5")}`]);
    const quorum = model.marks.find((m) => m.kind === "quorum");
    expect(quorum).toMatchObject({ lane: "c-n1", timeMs: at(3.8) });
    expect(quorum?.label).toMatch(/n3/);
  });

  it("marks fsync on each follower, commit and apply on the leader, and the KV reply", () => {
    expect(model.marks.map((m) => [m.kind, m.lane, m.timeMs])).toEqual([
      ["start", "c-n1", at(1)],
      ["fsync", "c-n3", at(3.6)],
      ["quorum", "c-n1", at(3.8)],
      ["commit", "c-n1", at(3.9)],
      ["fsync", "c-n2", at(4)],
      ["apply", "c-n1", at(4.5)],
      ["reply", "c-n1", at(10)],
    ]);
    expect(model.requests).toEqual([{ traceId: expect.any(String), spanId: id("a1"), name: "kv.serve.put", key: "k" }]);
  });

  it("puts the quorum follower's write and reply, commit, apply and the reply on the critical path, not the other follower", () => {
    const critical = [...model.arrows, ...model.marks].filter((e) => e.critical).map((e) => e.id);
    expect(critical).toEqual(
      expect.arrayContaining([`req:${id("a5")}`, `rep:${id("a5")}`, `fsync:${id("a5")}`, `reply:${id("a1")}`]),
    );
    expect(critical).not.toContain(`req:${id("a4")}`);
    expect(critical).not.toContain(`fsync:${id("a4")}`);
    expect(model.marks.filter((m) => m.kind === "commit" || m.kind === "apply").every((m) => m.critical)).toBe(true);
    expect(model.partial).toBe(false);
    expect(model.missing).toEqual([]);
  });

  it("is the same whatever order the spans arrive in (all 120 orders)", () => {
    const spans = raftRound();
    const expected = JSON.stringify(model);
    let orders = 0;
    for (const order of permutations(spans)) {
      expect(JSON.stringify(modelAfter(order, "a2"))).toBe(expected);
      orders++;
    }
    expect(orders).toBe(120);
  });
});

describe("diagram model: partial exports", () => {
  it("without the leader's round span, the sends name the round: kind, lanes and arrows, outcome unknown", () => {
    const model = modelAfter(
      raftRound().filter((s) => s.name !== "raft.round"),
      "a2",
    );
    expect(model).toMatchObject({ kind: "proposal", protocol: "raft", outcome: "unknown", partial: true, lanes: 3 });
    expect(arrowsOf(model, "request")).toHaveLength(2);
    // No acks seen: no quorum to mark, and the replies have no arrival.
    expect(model.arrows.some((a) => a.quorum)).toBe(false);
    expect(arrowsOf(model, "reply").every((a) => a.receivedMs === undefined)).toBe(true);
    expect(model.missing[0]).toMatch(/proposal span itself/);
  });

  it("a follower that exported nothing gets an inferred lane and its ack arrow from the leader's events", () => {
    const model = modelAfter(
      raftRound().filter((s) => s.instance !== "c-n3"),
      "a2",
    );
    expect(model.laneList.map((l) => [l.id, l.exported])).toEqual([
      ["c-n1", true],
      ["c-n2", true],
      ["peer:n3", false],
    ]);
    const inferred = arrowsOf(model, "reply").find((a) => a.from === "peer:n3");
    expect(inferred).toMatchObject({ to: "c-n1", receivedMs: at(3.8), quorum: true });
    expect(model.partial).toBe(true);
  });

  it("a follower's spans that arrived before the leader's are attached once the send arrives", () => {
    const store = new RoundStore();
    const [server, round, send, ...receipts] = raftRound();
    store.add(receipts);
    expect(store.query().total).toBe(0);
    store.add([send as SpanRecord]);
    expect(store.query().rounds[0]).toMatchObject({ id: id("a2"), outcome: "unknown", lanes: 3 });
    store.add([round as SpanRecord, server as SpanRecord]);
    expect(store.query().rounds[0]).toMatchObject({ outcome: "applied", partial: false });
    expect(store.round(id("a2"))?.marks.some((m) => m.kind === "reply")).toBe(true);
  });

  it("a batch of several callers links to each: the round shows their requests, named once they arrive", () => {
    const [server, round, ...rest] = raftRound();
    const other = { ...(server as SpanRecord), spanId: id("a9"), traceId: "1".repeat(32) };
    const batch: SpanRecord = {
      ...(round as SpanRecord),
      parentSpanId: undefined,
      links: [
        { traceId: (server as SpanRecord).traceId, spanId: id("a1") },
        { traceId: other.traceId, spanId: id("a9") },
      ],
    };
    const store = new RoundStore();
    store.add([batch, ...rest, server as SpanRecord]);
    expect(store.round(id("a2"))?.requests).toEqual([
      { traceId: (server as SpanRecord).traceId, spanId: id("a1"), name: "kv.serve.put", key: "k" },
      { traceId: other.traceId, spanId: id("a9") },
    ]);
    store.add([other]);
    expect(store.round(id("a2"))?.requests.map((r) => r.name)).toEqual(["kv.serve.put", "kv.serve.put"]);
  });

  it("a span that names no round builds no model", () => {
    const [server] = raftRound();
    expect(
      buildRoundModel({ id: id("a1"), round: undefined, ancestors: [], linked: [], producers: [], consumers: [] }),
    ).toBeUndefined();
    const store = new RoundStore();
    store.add([server as SpanRecord]);
    expect(store.query().total).toBe(0);
  });
});

describe("diagram model: Raft election", () => {
  const model = modelAfter(raftElection(), "b1");

  it("shows the pre-vote and vote phases, each vote granted or denied, and the outcome", () => {
    expect(model).toMatchObject({ kind: "election", outcome: "won", label: "term 4", lanes: 3 });
    expect(model.laneList.map((l) => [l.id, l.role])).toEqual([
      ["c-n2", "candidate"],
      ["c-n1", "voter"],
      ["c-n3", "voter"],
    ]);
    expect(model.phases).toEqual([
      { name: "pre-vote", startMs: at(0), endMs: at(2.2) },
      { name: "vote", startMs: at(2.2), endMs: at(5.1) },
    ]);
    expect(arrowsOf(model, "request").map((a) => [a.to, a.phase])).toEqual([
      ["c-n1", "pre-vote"],
      ["c-n3", "pre-vote"],
      ["c-n1", "vote"],
      ["c-n3", "vote"],
    ]);
    expect(arrowsOf(model, "reply").map((a) => [a.from, a.phase, a.granted, a.receivedMs])).toEqual([
      ["c-n1", "pre-vote", true, at(2)],
      ["c-n3", "pre-vote", false, at(2.6)],
      ["c-n3", "vote", false, at(4)],
      ["c-n1", "vote", true, at(5)],
    ]);
    const votes = model.marks.filter((m) => m.kind === "vote-granted" || m.kind === "vote-denied");
    expect(votes.map((m) => [m.kind, m.lane])).toEqual([
      ["vote-granted", "c-n1"],
      ["vote-denied", "c-n3"],
      ["vote-denied", "c-n3"],
      ["vote-granted", "c-n1"],
    ]);
    expect(model.marks.filter((m) => m.kind === "outcome").map((m) => m.label)).toEqual(["pre-vote won", "won"]);
  });

  it("marks the grant that completed each phase's quorum", () => {
    expect(model.arrows.filter((a) => a.quorum).map((a) => [a.from, a.phase])).toEqual([
      ["c-n1", "pre-vote"],
      ["c-n1", "vote"],
    ]);
  });
});

describe("diagram model: Paxos phases", () => {
  it("phase 1: promises to the proposer, the second completes q1, adopted", () => {
    const model = modelAfter(paxosPhase1(), "c1");
    expect(model).toMatchObject({
      kind: "phase1",
      protocol: "paxos",
      outcome: "adopted",
      label: "ballot 3.p1",
      lanes: 3,
    });
    expect(arrowsOf(model, "reply").map((a) => [a.from, a.type, a.granted])).toEqual([
      ["c-a1", "paxos.p1b", true],
      ["c-a2", "paxos.p1b", true],
    ]);
    expect(model.arrows.filter((a) => a.quorum).map((a) => a.from)).toEqual(["c-a2"]);
    expect(model.marks.find((m) => m.kind === "outcome")?.label).toBe("adopted");
  });

  it("phase 2: the learner's request, accepts from a quorum, a rejection, chosen, and the learner applying and replying", () => {
    const model = modelAfter(paxosPhase2(), "d3");
    expect(model).toMatchObject({ kind: "phase2", outcome: "chosen", label: "ballot 3.p1 slots 10..11", lanes: 5 });
    expect(model.laneList.map((l) => [l.id, l.role])).toEqual([
      ["c-p1", "proposer"],
      ["c-l1", "learner"],
      ["c-a2", "acceptor"],
      ["c-a1", "acceptor"],
      ["c-a3", "acceptor"],
    ]);
    const requests = arrowsOf(model, "request");
    expect(requests[requests.length - 1]).toMatchObject({
      from: "c-l1",
      to: "c-p1",
      type: "paxos.request",
      critical: true,
    });
    expect(requests.filter((a) => a.type === "paxos.p2a").map((a) => [a.to, a.entries])).toEqual([
      ["c-a2", 2],
      ["c-l1", 2],
      ["c-a1", 2],
      ["c-a3", 2],
    ]);
    expect(arrowsOf(model, "reply").map((a) => [a.from, a.granted, a.receivedMs])).toEqual([
      ["c-a2", true, at(4)],
      ["c-a1", true, at(4.5)],
      ["c-a3", false, undefined],
    ]);
    expect(model.arrows.filter((a) => a.quorum).map((a) => a.from)).toEqual(["c-a1"]);
    expect(model.marks.filter((m) => m.lane === "c-l1").map((m) => [m.kind, m.timeMs])).toEqual([
      ["chosen", at(7)],
      ["apply", at(8)],
      ["reply", at(12)],
    ]);
    expect(model.marks.find((m) => m.kind === "chosen" && m.lane === "c-p1")?.critical).toBe(true);
  });
});

describe("diagram model: read round", () => {
  const model = modelAfter(raftRead(), "d2");

  it("a Raft read is a read round: the leader's lane first, then the followers", () => {
    expect(model).toMatchObject({
      kind: "read",
      protocol: "raft",
      outcome: "served",
      label: "term 2 read index 7",
      lanes: 3,
      quorumSize: 2,
      partial: false,
      missing: [],
    });
    expect(model.laneList.map((l) => [l.id, l.role])).toEqual([
      ["c-n1", "leader"],
      ["c-n3", "follower"],
      ["c-n2", "follower"],
    ]);
    expect(model.requests).toEqual([{ traceId: expect.any(String), spanId: id("d1"), name: "kv.serve.get", key: "k" }]);
  });

  it("draws the heartbeat to each follower and each acknowledgement back, with type and size", () => {
    expect(arrowsOf(model, "request").map((a) => [a.to, a.type, a.bytes, a.entries])).toEqual([
      ["c-n3", "raft.append", 74, undefined],
      ["c-n2", "raft.append", 74, undefined],
    ]);
    expect(arrowsOf(model, "reply").map((a) => [a.from, a.type, a.bytes, a.receivedMs])).toEqual([
      ["c-n3", "raft.append.resp", 61, at(3)],
      ["c-n2", "raft.append.resp", 61, at(3.5)],
    ]);
  });

  it("marks the ack that completed the quorum (the last before `confirmed`), then confirmed, served and the reply", () => {
    expect(model.arrows.filter((a) => a.quorum).map((a) => a.from)).toEqual(["c-n3"]);
    const marks = model.marks.map((m) => [m.kind, m.lane, m.timeMs]);
    expect(marks).toContainEqual(["quorum", "c-n1", at(3)]);
    expect(marks).toContainEqual(["confirmed", "c-n1", at(3.1)]);
    expect(marks).toContainEqual(["served", "c-n1", at(5.4)]);
    expect(marks).toContainEqual(["reply", "c-n1", at(6)]);
    expect(model.marks.filter((m) => m.kind === "ack").map((m) => m.lane)).toEqual(["c-n3", "c-n2"]);
  });

  it("is the same whatever order the spans arrive in (all 120 orders)", () => {
    const expected = JSON.stringify(model);
    let orders = 0;
    for (const order of permutations(raftRead())) {
      expect(JSON.stringify(modelAfter(order, "d2"))).toBe(expected);
      orders++;
    }
    expect(orders).toBe(120);
  });

  it("without the read span, its heartbeat (an AppendEntries with no entries) names it a read round", () => {
    const partial = modelAfter(
      raftRead().filter((s) => s.name !== "raft.read"),
      "d2",
    );
    expect(partial).toMatchObject({ kind: "read", protocol: "raft", outcome: "unknown", partial: true, lanes: 3 });
    expect(arrowsOf(partial, "request")).toHaveLength(2);
    expect(partial.arrows.some((a) => a.quorum)).toBe(false);
    expect(partial.missing[0]).toMatch(/read span itself/);
  });

  it("a follower that exported nothing: an inferred lane, and its ack from the leader's event still completes the quorum", () => {
    const partial = modelAfter(
      raftRead().filter((s) => s.instance !== "c-n3"),
      "d2",
    );
    expect(partial.laneList.map((l) => [l.id, l.exported])).toEqual([
      ["c-n1", true],
      ["c-n2", true],
      ["peer:n3", false],
    ]);
    expect(arrowsOf(partial, "reply").find((a) => a.quorum)).toMatchObject({
      from: "peer:n3",
      type: "raft.append.resp",
      bytes: 61,
      receivedMs: at(3),
    });
    expect(partial.partial).toBe(true);
  });

  it("a read served without a round of messages (a lease, one voter) is whole, with no quorum to mark", () => {
    const lease = raftRead()
      .filter((s) => s.name === "raft.read")
      .map((s) => ({ ...s, events: s.events.filter((e) => e.name !== "ack") }));
    const whole = modelAfter(lease, "d2");
    expect(whole).toMatchObject({ kind: "read", outcome: "served", partial: false, lanes: 1, arrows: [] });
  });

  it("a refused read (leadership lost) is refused", () => {
    const refused = raftRead().map((s) =>
      s.name === "raft.read"
        ? { ...s, status: 2, statusMessage: "not the leader", events: s.events.filter((e) => e.name === "ack") }
        : s,
    );
    expect(modelAfter(refused, "d2")).toMatchObject({ outcome: "refused" });
  });

  it("a Paxos read named like Raft's is a read round too, whatever message types it sends", () => {
    const paxos = modelAfter(paxosRead(), "e1");
    expect(paxos).toMatchObject({
      kind: "read",
      protocol: "paxos",
      outcome: "served",
      label: "ballot 3.p1 read index 9",
      lanes: 4,
    });
    expect(paxos.laneList.map((l) => l.role)).toEqual(["proposer", "acceptor", "acceptor", "acceptor"]);
    expect(arrowsOf(paxos, "request").map((a) => [a.type, a.bytes])).toEqual([
      ["paxos.confirm", 40],
      ["paxos.confirm", 40],
      ["paxos.confirm", 40],
    ]);
    expect(arrowsOf(paxos, "reply").map((a) => [a.from, a.type, a.receivedMs])).toEqual([
      ["c-a2", "paxos.confirm.ack", at(2)],
      ["c-a1", "paxos.confirm.ack", at(2.5)],
      ["c-a3", "paxos.confirm.resp", undefined],
    ]);
    // q = 2 acceptors: a1's, the second, completed it, just before `confirmed`.
    expect(paxos.arrows.filter((a) => a.quorum).map((a) => a.from)).toEqual(["c-a1"]);
    // The acceptors' spans may come first: the round takes them once its own span is there.
    for (const order of [paxosRead().reverse(), [...paxosRead().slice(2), ...paxosRead().slice(0, 2)]])
      expect(JSON.stringify(modelAfter(order, "e1"))).toBe(JSON.stringify(paxos));
  });

  it("read rounds are counted and filtered as their own kind", () => {
    const store = new RoundStore();
    store.add([...raftRound(), ...raftRead(), ...paxosRead()]);
    expect(
      store
        .query({ kind: "read" })
        .rounds.map((r) => r.protocol)
        .sort(),
    ).toEqual(["paxos", "raft"]);
    expect(store.query().facets.kinds).toEqual(["proposal", "read"]);
    expect(store.query().stats.find((s) => s.kind === "read")?.count).toBe(2);
  });
});

describe("the round window", () => {
  /** A one-span round of `kind` starting at `start` ms that took `duration` ms. */
  const rounds = (n: number) =>
    raftRound()
      .slice(1, 2)
      .flatMap((template) =>
        Array.from({ length: n }, (_, i) => ({
          ...template,
          spanId: (0x1000 + i).toString(16).padStart(16, "0"),
          parentSpanId: undefined,
          startMs: T0 + i,
          endMs: T0 + i + (i + 1),
        })),
      );

  it("keeps the newest rounds up to its bound, with their spans", () => {
    const store = new RoundStore({ maxRounds: 3 });
    store.add(rounds(5));
    expect(store.roundCount).toBe(3);
    expect(store.spanCount).toBe(3);
    expect(store.query().rounds.map((r) => r.startMs)).toEqual([at(4), at(3), at(2)]);
  });

  it("keeps at most its bound of spans: the oldest leave first, and a round without its request loses the reply mark", () => {
    const store = new RoundStore({ maxSpans: 4 });
    store.add(raftRound());
    expect(store.spanCount).toBe(4);
    const model = store.round(id("a2"));
    expect(model?.requests).toEqual([]);
    expect(model?.marks.some((m) => m.kind === "reply")).toBe(false);
    expect(model?.lanes).toBe(3);
  });

  it("pages newest first, filters, and reports counts and p50/p99 per kind", () => {
    const store = new RoundStore();
    store.add([...rounds(100), ...raftElection(), ...paxosPhase2()]);
    const page = store.query({ kind: "proposal", offset: 10, limit: 5 });
    expect(page.total).toBe(100);
    expect(page.rounds.map((r) => r.startMs)).toEqual([at(89), at(88), at(87), at(86), at(85)]);
    expect(page.stats).toEqual([
      { kind: "election", count: 1, p50Ms: expect.closeTo(5.1, 3), p99Ms: expect.closeTo(5.1, 3) },
      { kind: "phase2", count: 1, p50Ms: expect.closeTo(3.6, 3), p99Ms: expect.closeTo(3.6, 3) },
      { kind: "proposal", count: 100, p50Ms: 50, p99Ms: 99 },
    ]);
    expect(page.facets.kinds).toEqual(["election", "phase2", "proposal"]);
    expect(store.query({ protocol: "paxos" }).total).toBe(1);
    expect(store.query({ outcome: "won" }).rounds.map((r) => r.kind)).toEqual(["election"]);
    expect(store.query({ kind: "proposal", minDurationMs: 95 }).total).toBe(6);
    expect(store.query({ cluster: "other" }).total).toBe(0);
  });
});
