import type { Attributes, BatchObservableResult, Counter, Histogram } from "@opentelemetry/api";
import { Attr, meter } from "./conventions.js";

/** Metric instruments shared by the consensus hosts. Created once per process. */
export interface ConsensusMetrics {
  commitLatency: Histogram;
  proposals: Counter;
  commits: Counter;
  electionsStarted: Counter;
  electionsWon: Counter;
  leaderChanges: Counter;
  batchSize: Histogram;
}

let shared: ConsensusMetrics | undefined;

// Units follow UCUM as OpenTelemetry asks: durations in seconds, counts as {annotations}.
export function consensusMetrics(): ConsensusMetrics {
  if (shared !== undefined) return shared;
  const m = meter();
  shared = {
    commitLatency: m.createHistogram("quorate.commit.latency", {
      unit: "s",
      description: "Time from a leader accepting a proposal batch to its commit",
      advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5] },
    }),
    proposals: m.createCounter("quorate.proposals", {
      unit: "{proposal}",
      description: "Commands accepted for replication by a leader",
    }),
    commits: m.createCounter("quorate.commits", {
      unit: "{entry}",
      description: "Entries committed, counted by the leader",
    }),
    electionsStarted: m.createCounter("quorate.elections.started", {
      unit: "{election}",
      description: "Campaigns started (pre-vote and vote)",
    }),
    electionsWon: m.createCounter("quorate.elections.won", { unit: "{election}", description: "Campaigns won" }),
    leaderChanges: m.createCounter("quorate.leader.changes", {
      unit: "{change}",
      description: "Times a member saw a new leader",
    }),
    batchSize: m.createHistogram("quorate.batch.size", {
      unit: "{command}",
      description: "Commands per proposal batch",
      advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] },
    }),
  };
  return shared;
}

/** What a running member reports on each metrics collection. */
export interface MemberGauges {
  term: number;
  /** Committed entries not yet applied. */
  applyLag: number;
  /** Messages sent and not yet acknowledged (leader), or proposals waiting (any member). */
  inflight: number;
  /** Inbound frames dropped so far, by reason. */
  dropped: Readonly<Record<string, number>>;
}

/** Registers observable instruments for one member; returns the function that unregisters them. */
export function observeMember(attributes: Attributes, read: () => MemberGauges): () => void {
  const m = meter();
  const term = m.createObservableGauge("quorate.term", {
    unit: "{term}",
    description: "Current term (Raft) or ballot round (Paxos)",
  });
  const lag = m.createObservableGauge("quorate.apply.lag", {
    unit: "{entry}",
    description: "Committed entries not yet applied",
  });
  const inflight = m.createObservableGauge("quorate.inflight", {
    unit: "{message}",
    description: "Messages or proposals in flight",
  });
  const dropped = m.createObservableCounter("quorate.frames.dropped", {
    unit: "{frame}",
    description: "Inbound frames dropped, by reason",
  });
  const callback = (result: BatchObservableResult): void => {
    const g = read();
    result.observe(term, g.term, attributes);
    result.observe(lag, g.applyLag, attributes);
    result.observe(inflight, g.inflight, attributes);
    for (const [reason, count] of Object.entries(g.dropped)) {
      result.observe(dropped, count, { ...attributes, [Attr.dropReason]: reason });
    }
  };
  const observables = [term, lag, inflight, dropped];
  m.addBatchObservableCallback(callback, observables);
  return () => m.removeBatchObservableCallback(callback, observables);
}
