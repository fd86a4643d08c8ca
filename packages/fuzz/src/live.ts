import {
  DEFAULT_MAX_FRAME_BYTES,
  DROP_REASONS,
  type DropReason,
  decodeFrame,
  type NodeId,
  type Transport,
} from "@quorate/core";
import { Prng } from "@quorate/core/internal";
import { encodeKvCommand, KvStateMachine } from "@quorate/kv";
import {
  Acceptor,
  Learner,
  learnerStorageIn,
  Proposer,
  paxosRoleId,
  proposerStorageIn,
  resolveTopology,
} from "@quorate/paxos";
import { RaftNode } from "@quorate/raft";
import { encodeSessionCommand, SessionStateMachine } from "@quorate/service";
import { MemoryAcceptorStorage, MemoryRaftStorage } from "@quorate/storage";
import { MemoryAcceptorDisk, MemoryDisk } from "@quorate/storage/internal";
import { MemoryNetwork } from "@quorate/transport-memory";
import { emptyCounts, type FuzzCounts, toHex } from "./decoder.js";
import { type FuzzTarget, nextFrame, PAXOS_TYPES, RAFT_TYPES } from "./frames.js";

const FUZZER: NodeId = "fuzzer";
const CLUSTER = "fuzz";

/** A running consensus group with its members' transports, a way to write, and a way to stop. */
interface Deployment {
  readonly name: "raft" | "paxos";
  readonly network: MemoryNetwork;
  readonly target: FuzzTarget;
  readonly transports: ReadonlyMap<NodeId, Transport>;
  /** Member failures (a role's `failure`), by member. */
  failures(): Map<NodeId, string>;
  /** One KV put through the group; rejects when the group cannot take it now. */
  write(key: string, value: string): Promise<void>;
  ready(): boolean;
  kill(): void;
}

function target(group: string, members: NodeId[], types: typeof RAFT_TYPES): FuzzTarget {
  return { cluster: CLUSTER, group, fuzzer: FUZZER, members, types, maxFrameBytes: DEFAULT_MAX_FRAME_BYTES };
}

async function startRaft(seed: number): Promise<Deployment> {
  const network = new MemoryNetwork({ seed });
  const ids = ["n1", "n2", "n3"];
  const nodes: RaftNode[] = [];
  const transports = new Map<NodeId, Transport>();
  for (const id of ids) {
    const transport = network.connect({ cluster: CLUSTER, group: "kv", self: id });
    transports.set(id, transport);
    nodes.push(
      await RaftNode.start({
        id,
        members: ids,
        transport,
        storage: new MemoryRaftStorage(new MemoryDisk()),
        stateMachine: new KvStateMachine(),
        tickMs: 10,
      }),
    );
  }
  const leader = () => nodes.find((n) => n.role() === "leader");
  return {
    name: "raft",
    network,
    target: target("kv", ids, RAFT_TYPES),
    transports,
    failures: () => new Map(nodes.filter((n) => n.failure !== null).map((n) => [n.id, String(n.failure)])),
    write: async (key, value) => {
      const node = leader();
      if (node === undefined) throw new Error("no leader");
      await node.propose(encodeKvCommand({ op: "put", key, value }));
    },
    ready: () => leader() !== undefined,
    kill: () => {
      for (const node of nodes) node.kill();
    },
  };
}

async function startPaxos(): Promise<Deployment> {
  const network = new MemoryNetwork({ seed: 7 });
  const hosts = ["n1", "n2", "n3"];
  const topology = resolveTopology({
    acceptors: hosts.map((m) => paxosRoleId(m, "acceptor")),
    proposers: hosts.slice(0, 2).map((m) => paxosRoleId(m, "proposer")),
    learners: hosts.map((m) => paxosRoleId(m, "learner")),
  });
  const transports = new Map<NodeId, Transport>();
  const connect = (self: NodeId) => {
    const transport = network.connect({ cluster: CLUSTER, group: "paxos", self });
    transports.set(self, transport);
    return transport;
  };
  const acceptors: Acceptor[] = [];
  for (const id of topology.acceptors) {
    acceptors.push(
      await Acceptor.start({
        id,
        topology,
        transport: connect(id),
        storage: new MemoryAcceptorStorage(new MemoryAcceptorDisk()),
      }),
    );
  }
  const learners: Learner[] = [];
  for (const id of topology.learners) {
    learners.push(
      await Learner.start({
        id,
        topology,
        transport: connect(id),
        storage: learnerStorageIn(new MemoryRaftStorage(new MemoryDisk())),
        stateMachine: new SessionStateMachine(new KvStateMachine()),
        tickMs: 5,
        checkpointInterval: 1000,
      }),
    );
  }
  const proposers: Proposer[] = [];
  for (const id of topology.proposers) {
    proposers.push(
      await Proposer.start({
        id,
        topology,
        transport: connect(id),
        storage: proposerStorageIn(new MemoryRaftStorage(new MemoryDisk())),
        tickMs: 5,
      }),
    );
  }
  const roles = [...acceptors, ...learners, ...proposers];
  let next = 0;
  return {
    name: "paxos",
    network,
    target: target("paxos", [...transports.keys()], PAXOS_TYPES),
    transports,
    failures: () => new Map(roles.filter((r) => r.failure !== null).map((r) => [r.id, String(r.failure)])),
    write: async (key, value) => {
      const learner = learners[next++ % learners.length] as Learner;
      await learner.propose(encodeSessionCommand(null, encodeKvCommand({ op: "put", key, value })));
    },
    ready: () => proposers.some((p) => p.mode === "active"),
    kill: () => {
      for (const role of roles) role.kill();
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const macrotask = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Writes until `deadlineMs` (wall clock) until `count` succeed; returns how many did. */
async function commitWrites(deployment: Deployment, count: number, deadlineMs: number, tag: string): Promise<number> {
  let done = 0;
  while (done < count && Date.now() < deadlineMs) {
    try {
      await withTimeout(deployment.write(`${tag}${done}`, "after"), 1000);
      done++;
    } catch {
      await sleep(20);
    }
  }
  return done;
}

/** Per-deployment result of a live run. */
export interface LiveResult {
  readonly name: "raft" | "paxos";
  /** `frames` and `byClass` count frames; `decoded` and `dropped` count deliveries (a broadcast reaches every member). */
  readonly counts: FuzzCounts;
  /** Frames the codec accepted from the fuzzer's own subject: handed to members as legal input. */
  readonly delivered: number;
  /** Drops the members' transports counted, by reason, against what the delivered frames predict. */
  readonly droppedCounted: Record<DropReason, number>;
  readonly droppedExpected: Record<DropReason, number>;
  readonly handlerErrors: number;
  readonly memberFailures: Map<NodeId, string>;
  /** Writes the deployment committed while frames were injected, and of the final writes, how many committed. */
  readonly writesDuringFuzz: number;
  readonly writesAfter: number;
  readonly writesAfterWanted: number;
}

export interface LiveOptions {
  /** Frames between two yields to the event loop, so members process, write and tick. */
  batch?: number;
  /** Writes that must commit after the fuzzing, within `settleMs`. */
  writesAfter?: number;
  settleMs?: number;
  onProgress?: (frames: number) => void;
}

function zeroReasons(): Record<DropReason, number> {
  const out = {} as Record<DropReason, number>;
  for (const reason of DROP_REASONS) out[reason] = 0;
  return out;
}

function droppedTotal(transports: Iterable<Transport>): Record<DropReason, number> {
  const out = zeroReasons();
  for (const t of transports) for (const reason of DROP_REASONS) out[reason] += t.stats.dropped[reason];
  return out;
}

/**
 * Injects `frames` frames (half into a 3-member Raft group, half into a Paxos deployment) at
 * the members' subjects from a non-member identity, while a writer keeps writing; then checks
 * that no member failed, every malformed frame was counted as dropped, and both groups still commit.
 */
export async function fuzzLive(seed: number, frames: number, options: LiveOptions = {}): Promise<LiveResult[]> {
  const batch = options.batch ?? 64;
  const deployments = [await startRaft(seed), await startPaxos()];
  const results: LiveResult[] = [];
  try {
    const start = Date.now();
    while (!deployments.every((d) => d.ready())) {
      if (Date.now() - start > 10_000) throw new Error("the groups did not elect a leader");
      await sleep(10);
    }
    for (const d of deployments) {
      if ((await commitWrites(d, 1, Date.now() + 10_000, "before")) !== 1) throw new Error(`${d.name} never committed`);
    }
    const prng = new Prng(seed);
    const state = deployments.map((d) => ({
      counts: emptyCounts(),
      delivered: 0,
      expected: zeroReasons(),
      baseline: droppedTotal(d.transports.values()),
      handlerErrorsBefore: [...d.transports.values()].reduce((n, t) => n + t.stats.handlerErrors, 0),
      writes: 0,
    }));
    let writing = true;
    const writers = deployments.map(async (d, i) => {
      let n = 0;
      while (writing) {
        try {
          await withTimeout(d.write(`k${n++ % 100}`, `v${n}`), 1000);
          (state[i] as (typeof state)[number]).writes++;
        } catch {
          await sleep(5);
        }
      }
    });
    for (let index = 0; index < frames; index++) {
      const which = index % deployments.length;
      const d = deployments[which] as Deployment;
      const s = state[which] as (typeof state)[number];
      const frame = nextFrame(prng, d.target);
      s.counts.frames++;
      s.counts.byClass[frame.class]++;
      // A broadcast reaches every member but its publisher; a member never gets its own frames.
      const others = [...d.transports.keys()].filter((m) => m !== frame.subject);
      const to = prng.chance(0.2) ? null : prng.pick(others);
      const recipients = to === null ? others.length : 1;
      // What each recipient's transport must do: the codec's verdict, then the subject check.
      const result = decodeFrame(frame.data, d.target, d.target.maxFrameBytes);
      if (!result.ok) {
        s.counts.dropped[result.reason] += recipients;
        s.expected[result.reason] += recipients;
      } else if (result.envelope.sender !== frame.subject) {
        s.counts.dropped.spoofed += recipients;
        s.expected.spoofed += recipients;
      } else {
        s.counts.decoded += recipients;
        s.delivered += recipients;
      }
      d.network.injectRaw(CLUSTER, d.target.group, frame.subject, frame.data, to ?? undefined);
      if (index % batch === batch - 1) {
        await macrotask();
        if (deployments.some((x) => x.failures().size > 0)) {
          // Keep the frames of the last batch: one of them stopped a member.
          throw new Error(
            `member failed at frame ${index} (seed ${seed}): ${JSON.stringify([...d.failures()])}; last frame ${toHex(frame.data)}`,
          );
        }
        if (index % (batch * 64) === batch * 64 - 1) options.onProgress?.(index + 1);
      }
    }
    await macrotask();
    writing = false;
    await Promise.all(writers);
    const settleMs = options.settleMs ?? 15_000;
    for (const [i, d] of deployments.entries()) {
      const s = state[i] as (typeof state)[number];
      const wanted = options.writesAfter ?? 10;
      const after = await commitWrites(d, wanted, Date.now() + settleMs, "after");
      const now = droppedTotal(d.transports.values());
      const counted = zeroReasons();
      for (const reason of DROP_REASONS) counted[reason] = now[reason] - s.baseline[reason];
      results.push({
        name: d.name,
        counts: s.counts,
        delivered: s.delivered,
        droppedCounted: counted,
        droppedExpected: s.expected,
        handlerErrors:
          [...d.transports.values()].reduce((n, t) => n + t.stats.handlerErrors, 0) - s.handlerErrorsBefore,
        memberFailures: d.failures(),
        writesDuringFuzz: s.writes,
        writesAfter: after,
        writesAfterWanted: wanted,
      });
    }
  } finally {
    for (const d of deployments) d.kill();
  }
  return results;
}

/** What is wrong with a live result, or an empty list. */
export function liveProblems(result: LiveResult): string[] {
  const problems: string[] = [];
  for (const [member, failure] of result.memberFailures)
    problems.push(`${result.name} member ${member} failed: ${failure}`);
  if (result.handlerErrors > 0) problems.push(`${result.name}: ${result.handlerErrors} frame handler errors`);
  for (const reason of DROP_REASONS) {
    if (result.droppedCounted[reason] !== result.droppedExpected[reason]) {
      problems.push(
        `${result.name}: dropped ${reason} counted ${result.droppedCounted[reason]}, expected ${result.droppedExpected[reason]}`,
      );
    }
  }
  if (result.writesAfter < result.writesAfterWanted) {
    problems.push(
      `${result.name}: only ${result.writesAfter} of ${result.writesAfterWanted} writes committed after fuzzing`,
    );
  }
  return problems;
}
