#!/usr/bin/env node
// `pnpm bench:host`: what Quorate's own code costs per operation, without NATS sockets or fsync.
// Three Raft members in this one process, over the in-memory network and in-memory disks, with
// the KV state machine; one client proposes puts one after another (then 64 at a time) and reads
// with ReadIndex. Then the same against three Multi-Paxos members (acceptor, proposer and learner
// each, as `quorate node --protocol paxos` runs them), with the Paxos/Raft ratio per row. Prints CPU microseconds per operation for the three members together (the
// process's user+system time), which load on the machine barely changes: the number to watch
// when optimising the host, the machines and the codec. Profile with
// `node --cpu-prof test/bench/host.mjs`.  BENCH_OPS=20000
import { performance } from "node:perf_hooks";
import { encodeKvCommand, KvStateMachine } from "../../packages/kv/dist/index.js";
import {
  Acceptor,
  Learner,
  learnerStorageIn,
  Proposer,
  paxosRoleId,
  proposerStorageIn,
  resolveTopology,
} from "../../packages/paxos/dist/index.js";
import { RaftNode } from "../../packages/raft/dist/index.js";
import {
  MemoryAcceptorDisk,
  MemoryAcceptorStorage,
  MemoryDisk,
  MemoryRaftStorage,
} from "../../packages/storage/dist/internal.js";
import { MemoryNetwork } from "../../packages/transport-memory/dist/index.js";
import { fmt, table } from "./cluster.mjs";

const OPS = Number(process.env.BENCH_OPS ?? 20_000);
const IDS = ["n1", "n2", "n3"];

/** Three Raft members; their leader proposes and reads. */
async function startRaft() {
  const network = new MemoryNetwork();
  const nodes = await Promise.all(
    IDS.map((id) =>
      RaftNode.start({
        id,
        members: IDS,
        transport: network.connect({ cluster: "bench", group: "kv", self: id }),
        storage: new MemoryRaftStorage(new MemoryDisk()),
        stateMachine: new KvStateMachine(),
        tickMs: 50,
        // A loop that keeps the event loop this busy delays the ticks; the members catch up on
        // them, and at the default 10 ticks would hold elections that the numbers must not include.
        raft: { electionTicks: 200 },
      }),
    ),
  );
  const leaderOf = () => nodes.find((n) => n.role() === "leader");
  while (leaderOf() === undefined) await new Promise((r) => setTimeout(r, 20));
  const leader = leaderOf();
  return {
    put: (i) => leader.propose(encodeKvCommand({ op: "put", key: `k${i % 1000}`, value })),
    read: () => leader.readBarrier(),
    stop: () => Promise.all(nodes.map((n) => n.stop())),
  };
}

/** Three Multi-Paxos members, each with all three roles; the learner beside the active proposer serves. */
async function startPaxos() {
  const network = new MemoryNetwork();
  const ids = (role) => IDS.map((m) => paxosRoleId(m, role));
  const topology = resolveTopology({
    acceptors: ids("acceptor"),
    proposers: ids("proposer"),
    learners: ids("learner"),
  });
  const connect = (member, role) =>
    network.connect({ cluster: "bench", group: "paxos", self: paxosRoleId(member, role) });
  // As Raft's above: a long leader timeout, so a busy loop's late ticks start no campaign.
  const paxos = { leaderTimeoutTicks: 200 };
  const members = [];
  for (const id of IDS) {
    const acceptor = await Acceptor.start({
      id: paxosRoleId(id, "acceptor"),
      topology,
      transport: connect(id, "acceptor"),
      storage: new MemoryAcceptorStorage(new MemoryAcceptorDisk()),
      paxos,
    });
    const learner = await Learner.start({
      id: paxosRoleId(id, "learner"),
      topology,
      transport: connect(id, "learner"),
      storage: learnerStorageIn(new MemoryRaftStorage(new MemoryDisk())),
      stateMachine: new KvStateMachine(),
      tickMs: 50,
      paxos,
    });
    const proposer = await Proposer.start({
      id: paxosRoleId(id, "proposer"),
      topology,
      transport: connect(id, "proposer"),
      storage: proposerStorageIn(new MemoryRaftStorage(new MemoryDisk())),
      tickMs: 50,
      paxos,
    });
    members.push({ acceptor, learner, proposer });
  }
  const activeOf = () => members.find((m) => m.proposer.mode === "active" && m.learner.leader() !== null);
  while (activeOf() === undefined) await new Promise((r) => setTimeout(r, 20));
  const { learner } = activeOf();
  return {
    put: (i) => learner.propose(encodeKvCommand({ op: "put", key: `k${i % 1000}`, value })),
    read: () => learner.readBarrier(),
    stop: () => Promise.all(members.flatMap((m) => [m.acceptor.stop(), m.learner.stop(), m.proposer.stop()])),
  };
}

const value = new Uint8Array(100).fill(7);

/** Runs `count` operations, `concurrency` at a time; returns CPU µs per operation and ops/s. */
async function run(count, concurrency, op) {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++);
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  return { cpuUsPerOp: (cpu.user + cpu.system) / count, opsPerSecond: count / seconds };
}

const ROWS = [
  ["put", 1, "put"],
  ["put", 64, "put"],
  ["linearizable read (ReadIndex)", 1, "read"],
];
const results = {};
for (const [protocol, start] of [
  ["raft", startRaft],
  ["paxos", startPaxos],
]) {
  const cluster = await start();
  await run(2_000, 1, cluster.put); // warm-up: JIT, log growth
  results[protocol] = [];
  for (const [, concurrency, op] of ROWS) results[protocol].push(await run(OPS, concurrency, cluster[op]));
  await cluster.stop();
}
console.log(
  `Quorate host cost: 3 members in one process (Raft, then Multi-Paxos with its 3 roles each), in-memory network and disks; ${OPS} operations per row`,
);
console.log(
  table(
    [
      "operation",
      "in flight",
      "raft cpu µs/op (3 members)",
      "per member",
      "ops/s",
      "paxos cpu µs/op",
      "ops/s",
      "paxos/raft cpu",
    ],
    ROWS.map(([label, concurrency], i) => {
      const r = results.raft[i];
      const p = results.paxos[i];
      return [
        label,
        concurrency,
        fmt(r.cpuUsPerOp, 1),
        fmt(r.cpuUsPerOp / IDS.length, 1),
        fmt(r.opsPerSecond),
        fmt(p.cpuUsPerOp, 1),
        fmt(p.opsPerSecond),
        fmt(p.cpuUsPerOp / r.cpuUsPerOp, 2),
      ];
    }),
  ),
);
