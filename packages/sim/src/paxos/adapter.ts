import type { ConsensusNode, NodeId } from "@quorate/core";
import {
  Acceptor,
  type AcceptorMachine,
  type AcceptorStorage,
  acceptorMachine,
  Learner,
  type LearnerMachine,
  learnerMachine,
  learnerStorageIn,
  type PaxosObservation,
  type PaxosOptions,
  type PaxosRoleName,
  type PaxosTopology,
  Proposer,
  type ProposerMachine,
  type ProposerStorage,
  paxosRoleId,
  proposerMachine,
  proposerStorageIn,
  resolveTopology,
} from "@quorate/paxos/internal";
import { type AcceptorState, type AcceptorWrite, MemoryAcceptorStorage, MemoryRaftStorage } from "@quorate/storage";
import { MemoryAcceptorDisk, MemoryDisk } from "@quorate/storage/internal";
import {
  errorMessage,
  guardMachine,
  type MemberEnvironment,
  type ProtocolAdapter,
  type ProtocolRun,
  type Violation,
} from "../protocol.js";
import type { SimulationMode } from "../simulation.js";
import { PaxosInvariants } from "./invariants.js";

export interface PaxosAdapterOptions {
  /** The role machines; tests pass deliberately broken variants built with `provide()`. */
  readonly acceptorMachine?: AcceptorMachine;
  readonly proposerMachine?: ProposerMachine;
  readonly learnerMachine?: LearnerMachine;
  /** Wrap each role's storage as its host sees it; tests use them to break durability. */
  readonly wrapAcceptorStorage?: (storage: AcceptorStorage) => AcceptorStorage;
  readonly wrapProposerStorage?: (storage: ProposerStorage) => ProposerStorage;
}

/**
 * Timing for simulated clusters, in ticks of SIM_PAXOS_TICK_MS: the active proposer heartbeats
 * every 50 ms and a passive one campaigns after 150-300 ms of silence (plus its backoff), so a
 * few virtual seconds hold many leader changes while faults come and go. Learners report
 * progress every 200 ms: each report is a broadcast to every role of every member.
 */
export const SIM_PAXOS_TICK_MS = 25;
export const SIM_PAXOS_OPTIONS: Partial<PaxosOptions> = {
  heartbeatTicks: 2,
  leaderTimeoutTicks: 6,
  maxBackoffTicks: 24,
  retransmitTicks: 4,
  learnerHeartbeatTicks: 8,
  catchupTicks: 4,
};

/**
 * A virtual second of Paxos costs about three of Raft (three roles per member, and every vote is
 * a broadcast to all of them), so runs are shorter than Raft's 5 s and 3 s. Safety mode's 2.5 s
 * average over 50 client operations per seed (the floor; 2.2 s gave 49).
 */
export const PAXOS_FAULT_PERIOD_MS: Readonly<Record<SimulationMode, number>> = { safety: 2_500, liveness: 1_300 };

/**
 * Learners checkpoint every ten applied slots, so acceptors truncate in about half the runs and
 * learners that fell behind the truncation point restore another learner's checkpoint now and then.
 */
export const SIM_CHECKPOINT_INTERVAL = 10;

/**
 * Multi-Paxos in the simulator: every member runs all three roles, as `quorate node --protocol
 * paxos` does, so a cluster of 3 or 5 members has that many acceptors, proposers (which duel)
 * and learners, with majority quorums. Each role has its own network identity and disk; a crash
 * takes the member's roles down together and each restarts from its own disk.
 */
export function paxosAdapter(options: PaxosAdapterOptions = {}): ProtocolAdapter {
  return {
    name: "paxos",
    faultPeriodMs: PAXOS_FAULT_PERIOD_MS,
    createRun: (members) => new PaxosRun(members, options),
  };
}

/** Acceptor storage as the simulator sees it: recovery and durable writes reported to the invariants. */
class ObservedAcceptorStorage implements AcceptorStorage {
  constructor(
    private readonly inner: AcceptorStorage,
    private readonly acceptor: NodeId,
    private readonly invariants: PaxosInvariants,
  ) {}

  async load(): Promise<AcceptorState> {
    const state = await this.inner.load();
    this.invariants.acceptorLoaded(this.acceptor, state);
    return state;
  }

  write(write: AcceptorWrite): Promise<void> {
    const votes = this.invariants.acceptorWriteRequested(this.acceptor);
    return this.inner.write(write).then(() => this.invariants.acceptorWriteDurable(this.acceptor, write, votes));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A proposer's storage, its rounds reported to the invariants. */
class ObservedRoundStorage implements ProposerStorage {
  constructor(
    private readonly inner: ProposerStorage,
    private readonly proposer: NodeId,
    private readonly invariants: PaxosInvariants,
  ) {}

  async loadRound(): Promise<number> {
    const round = await this.inner.loadRound();
    this.invariants.proposerLoaded(this.proposer, round);
    return round;
  }

  writeRound(round: number): Promise<void> {
    this.invariants.proposerRoundRequested(this.proposer, round);
    return this.inner.writeRound(round).then(() => this.invariants.proposerRoundDurable(this.proposer, round));
  }
}

/** The disks of one member: each role keeps its own, as each has its own data directory. */
interface MemberDisks {
  readonly acceptor: MemoryAcceptorDisk;
  readonly proposer: MemoryDisk;
  readonly learner: MemoryDisk;
}

/** The roles of one running member incarnation, as far as they have started. */
interface MemberRoles {
  acceptor: Acceptor | null;
  proposer: Proposer | null;
  learner: Learner | null;
}

/**
 * A member as clients reach it: its learner takes commands and read barriers. It names itself
 * leader while its own proposer is active, so the nemesis's leader-targeted faults hit it.
 */
class PaxosMember implements ConsensusNode {
  constructor(
    readonly id: NodeId,
    private readonly learner: Learner,
    private readonly proposer: Proposer,
    private readonly memberOf: ReadonlyMap<NodeId, NodeId>,
  ) {}

  leader(): NodeId | null {
    if (this.proposer.mode === "active") return this.id;
    const proposer = this.learner.leader();
    return proposer === null ? null : (this.memberOf.get(proposer) ?? null);
  }

  propose(command: Uint8Array): Promise<Uint8Array> {
    return this.learner.propose(command);
  }

  readBarrier(): Promise<void> {
    return this.learner.readBarrier();
  }

  get appliedIndex(): number {
    return this.learner.appliedIndex;
  }
}

class PaxosRun implements ProtocolRun {
  readonly #topology: PaxosTopology;
  readonly #invariants: PaxosInvariants;
  readonly #disks = new Map<NodeId, MemberDisks>();
  readonly #running = new Map<NodeId, MemberRoles>();
  /** Running acceptors by role id, for the per-step promise check. */
  readonly #acceptors = new Map<NodeId, Acceptor>();
  /** The member of every proposer, for leader hints. */
  readonly #memberOfProposer: ReadonlyMap<NodeId, NodeId>;
  readonly #acceptorMachine: AcceptorMachine;
  readonly #proposerMachine: ProposerMachine;
  readonly #learnerMachine: LearnerMachine;
  /** See highestCommitted(); kept across crashes. */
  #highestApplied = 0;

  constructor(
    members: readonly NodeId[],
    private readonly options: PaxosAdapterOptions,
  ) {
    const ids = (role: PaxosRoleName) => members.map((m) => paxosRoleId(m, role));
    this.#topology = resolveTopology({
      acceptors: ids("acceptor"),
      proposers: ids("proposer"),
      learners: ids("learner"),
    });
    this.#invariants = new PaxosInvariants(this.#topology.q2);
    this.#memberOfProposer = new Map(members.map((m) => [paxosRoleId(m, "proposer"), m]));
    const guard = <M extends object>(machine: M, role: string): M =>
      guardMachine(machine, (err) =>
        this.#invariants.fail("member-failure", `a ${role} machine threw: ${errorMessage(err)}`),
      );
    this.#acceptorMachine = guard(options.acceptorMachine ?? acceptorMachine, "acceptor");
    this.#learnerMachine = guard(options.learnerMachine ?? learnerMachine, "learner");
    // A scout or commander that throws errors the proposer: the guard reports that too.
    this.#proposerMachine = guard(options.proposerMachine ?? proposerMachine, "proposer");
  }

  async start(env: MemberEnvironment): Promise<ConsensusNode> {
    const { id } = env;
    let disks = this.#disks.get(id);
    if (disks === undefined) {
      disks = { acceptor: new MemoryAcceptorDisk(), proposer: new MemoryDisk(), learner: new MemoryDisk() };
      this.#disks.set(id, disks);
    }
    const roles: MemberRoles = { acceptor: null, proposer: null, learner: null };
    this.#running.set(id, roles);
    // Every role talks under its own identity: the member's own connection is closed, so that
    // broadcasts are not delivered (and decoded) there for nobody.
    void env.transport.close();
    const invariants = this.#invariants;
    const schedule = { schedule: env.scheduleDurability };
    const common = (role: PaxosRoleName) => {
      const self = paxosRoleId(id, role);
      return {
        id: self,
        topology: this.#topology,
        transport: env.connect(self),
        paxos: SIM_PAXOS_OPTIONS,
        observe: (observation: PaxosObservation) => {
          if (observation.kind === "mode") {
            env.traceRole(observation.mode === "active" ? "leader" : observation.mode, observation.ballot[0]);
          }
          invariants.observed(observation);
        },
      };
    };

    const acceptorId = paxosRoleId(id, "acceptor");
    const acceptorStorage = new ObservedAcceptorStorage(
      new MemoryAcceptorStorage(disks.acceptor, schedule),
      acceptorId,
      invariants,
    );
    invariants.acceptorStarted(acceptorId);
    roles.acceptor = await Acceptor.start({
      ...common("acceptor"),
      storage: this.options.wrapAcceptorStorage?.(acceptorStorage) ?? acceptorStorage,
      machine: this.#acceptorMachine,
    });
    this.#acceptors.set(acceptorId, roles.acceptor);

    roles.learner = await Learner.start({
      ...common("learner"),
      storage: learnerStorageIn(new MemoryRaftStorage(disks.learner, schedule)),
      stateMachine: env.stateMachine,
      timers: env.timers,
      tickMs: SIM_PAXOS_TICK_MS,
      checkpointInterval: SIM_CHECKPOINT_INTERVAL,
      machine: this.#learnerMachine,
    });

    const proposerId = paxosRoleId(id, "proposer");
    const proposerStorage = new ObservedRoundStorage(
      proposerStorageIn(new MemoryRaftStorage(disks.proposer, schedule)),
      proposerId,
      invariants,
    );
    invariants.proposerStarted(proposerId);
    roles.proposer = await Proposer.start({
      ...common("proposer"),
      storage: this.options.wrapProposerStorage?.(proposerStorage) ?? proposerStorage,
      seed: env.seed,
      timers: env.timers,
      tickMs: SIM_PAXOS_TICK_MS,
      machine: this.#proposerMachine,
    });
    return new PaxosMember(id, roles.learner, roles.proposer, this.#memberOfProposer);
  }

  crash(member: NodeId): void {
    const roles = this.#running.get(member);
    if (roles === undefined) return;
    this.#running.delete(member);
    roles.acceptor?.kill();
    roles.proposer?.kill();
    roles.learner?.kill();
    // Each storage loses its pending writes and never settles them, as a killed process would.
    const disks = this.#disks.get(member);
    disks?.acceptor.crash();
    disks?.proposer.crash();
    disks?.learner.crash();
    for (const role of ["acceptor", "proposer", "learner"] as const) {
      const id = paxosRoleId(member, role);
      this.#acceptors.delete(id);
      this.#invariants.crashed(id);
    }
  }

  check(): Violation | null {
    this.highestCommitted();
    return this.#invariants.check({ acceptors: this.#acceptors, failures: this.#failures() });
  }

  /**
   * The highest slot any learner applied so far. Chosen slots do not count: they are chosen out
   * of order, and a slot above a hole says nothing of the hole. A correct read is never below
   * it: every slot chosen before the read reached the active proposer is at or below its read
   * index (the proof is in packages/paxos/README.md, "Reads"), and the read waits until its
   * learner applied through that index, in slot order.
   */
  highestCommitted(): number {
    for (const roles of this.#running.values()) {
      if (roles.learner !== null) this.#highestApplied = Math.max(this.#highestApplied, roles.learner.appliedIndex);
    }
    return this.#highestApplied;
  }

  *#failures(): Iterable<{ readonly id: NodeId; readonly failure: Error | null }> {
    for (const roles of this.#running.values()) {
      if (roles.acceptor !== null) yield roles.acceptor;
      if (roles.proposer !== null) yield roles.proposer;
      if (roles.learner !== null) yield roles.learner;
    }
  }
}
