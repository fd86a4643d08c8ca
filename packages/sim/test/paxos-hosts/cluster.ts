import type { NodeId, PaxosValue, StateMachine } from "@quorate/core";
import { KvStateMachine } from "@quorate/kv";
import {
  Acceptor,
  Learner,
  learnerStorageIn,
  type PaxosObservation,
  type PaxosOptions,
  type PaxosTopology,
  Proposer,
  paxosRoleId,
  proposerStorageIn,
  resolveTopology,
} from "@quorate/paxos";
import { SessionStateMachine } from "@quorate/service";
import { MemoryAcceptorStorage, MemoryRaftStorage } from "@quorate/storage";
import { MemoryAcceptorDisk, MemoryDisk } from "@quorate/storage/internal";
import { MemoryNetwork, type MemoryTransport } from "@quorate/transport-memory";

export const CLUSTER = "test";
export const GROUP = "paxos";
/**
 * Ticks follow the real clock, so on a loaded machine a stalled event loop counts as time: 25 ms
 * ticks give leader timeouts of 100-200 ms, long enough that a stall does not unseat a live leader.
 */
const TEST_TICK_MS = 25;

/**
 * A whole Multi-Paxos deployment in one process over the memory network (auto delivery) with
 * memory storage: roles can be killed and restarted on their disks.
 */
export class PaxosCluster {
  readonly network = new MemoryNetwork({ seed: 7 });
  readonly topology: PaxosTopology;
  readonly acceptors = new Map<NodeId, Acceptor>();
  readonly proposers = new Map<NodeId, Proposer>();
  readonly learners = new Map<NodeId, Learner>();
  readonly stateMachines = new Map<NodeId, SessionStateMachine>();
  readonly acceptorDisks = new Map<NodeId, MemoryAcceptorDisk>();
  readonly raftDisks = new Map<NodeId, MemoryDisk>();
  /** What each learner applied, slot by slot. */
  readonly applied = new Map<NodeId, Map<number, PaxosValue>>();
  readonly observations: PaxosObservation[] = [];

  constructor(
    readonly members: { acceptors: string[]; proposers: string[]; learners: string[] },
    readonly options: {
      paxos?: Partial<PaxosOptions>;
      q1?: number;
      q2?: number;
      checkpointInterval?: number;
      tickMs?: number;
    } = {},
  ) {
    this.topology = resolveTopology({
      acceptors: members.acceptors.map((m) => paxosRoleId(m, "acceptor")),
      proposers: members.proposers.map((m) => paxosRoleId(m, "proposer")),
      learners: members.learners.map((m) => paxosRoleId(m, "learner")),
      ...(options.q1 === undefined ? {} : { q1: options.q1 }),
      ...(options.q2 === undefined ? {} : { q2: options.q2 }),
    });
  }

  #observe = (o: PaxosObservation) => {
    this.observations.push(o);
    if (o.kind === "applied") {
      let map = this.applied.get(o.learner);
      if (map === undefined) {
        map = new Map();
        this.applied.set(o.learner, map);
      }
      map.set(o.slot, o.value);
    }
  };

  readonly #transports = new Map<NodeId, MemoryTransport>();

  #transport(self: NodeId): MemoryTransport {
    const transport = this.network.connect({ cluster: CLUSTER, group: GROUP, self });
    this.#transports.set(self, transport);
    return transport;
  }

  async startAcceptor(id: NodeId): Promise<Acceptor> {
    let disk = this.acceptorDisks.get(id);
    if (disk === undefined) {
      disk = new MemoryAcceptorDisk();
      this.acceptorDisks.set(id, disk);
    }
    const acceptor = await Acceptor.start({
      id,
      topology: this.topology,
      transport: this.#transport(id),
      storage: new MemoryAcceptorStorage(disk),
      paxos: this.options.paxos,
      observe: this.#observe,
    });
    this.acceptors.set(id, acceptor);
    return acceptor;
  }

  #raftStorage(id: NodeId): MemoryRaftStorage {
    let disk = this.raftDisks.get(id);
    if (disk === undefined) {
      disk = new MemoryDisk();
      this.raftDisks.set(id, disk);
    }
    return new MemoryRaftStorage(disk);
  }

  async startProposer(id: NodeId): Promise<Proposer> {
    const proposer = await Proposer.start({
      id,
      topology: this.topology,
      transport: this.#transport(id),
      storage: proposerStorageIn(this.#raftStorage(id)),
      paxos: this.options.paxos,
      tickMs: this.options.tickMs ?? TEST_TICK_MS,
      observe: this.#observe,
    });
    this.proposers.set(id, proposer);
    return proposer;
  }

  async startLearner(id: NodeId, stateMachine?: StateMachine): Promise<Learner> {
    const sm = new SessionStateMachine(new KvStateMachine());
    this.stateMachines.set(id, sm);
    const learner = await Learner.start({
      id,
      topology: this.topology,
      transport: this.#transport(id),
      storage: learnerStorageIn(this.#raftStorage(id)),
      stateMachine: stateMachine ?? sm,
      paxos: this.options.paxos,
      tickMs: this.options.tickMs ?? TEST_TICK_MS,
      checkpointInterval: this.options.checkpointInterval ?? 1000,
      observe: this.#observe,
    });
    this.learners.set(id, learner);
    return learner;
  }

  async start(): Promise<this> {
    for (const id of this.topology.acceptors) await this.startAcceptor(id);
    for (const id of this.topology.learners) await this.startLearner(id);
    for (const id of this.topology.proposers) await this.startProposer(id);
    return this;
  }

  /** Crashes a role: it halts, loses its unsynced writes, and leaves the network. */
  crash(id: NodeId): void {
    const role = this.acceptors.get(id) ?? this.proposers.get(id) ?? this.learners.get(id);
    role?.kill();
    this.acceptorDisks.get(id)?.crash();
    this.raftDisks.get(id)?.crash();
    this.acceptors.delete(id);
    this.proposers.delete(id);
    this.learners.delete(id);
    void this.#transports.get(id)?.close();
    this.#transports.delete(id);
  }

  activeProposer(): Proposer | undefined {
    return [...this.proposers.values()].find((p) => p.mode === "active");
  }

  async waitFor(predicate: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(): Promise<void> {
    for (const l of this.learners.values()) await l.stop();
    for (const p of this.proposers.values()) await p.stop();
    for (const a of this.acceptors.values()) await a.stop();
    for (const t of this.#transports.values()) await t.close();
  }
}
