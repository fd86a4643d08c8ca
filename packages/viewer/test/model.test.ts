import { describe, expect, it } from "vitest";
import { type Arrow, buildRoundModel, type RoundModel, RoundStore, type SpanRecord } from "../src/index.js";
import { id, paxosPhase1, paxosPhase2, raftElection, raftRound, T0 } from "./fixtures.js";

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
