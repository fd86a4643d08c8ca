import type { ConsensusNode, NodeId, Timers } from "@quorate/core";
import { Prng } from "@quorate/core/internal";
import {
  type MembershipChange,
  type RaftMachine,
  RaftNode,
  type RaftOptions,
  raftMachine,
} from "@quorate/raft/internal";
import { MemoryRaftStorage, type RaftState, type RaftStorage, type RaftWrite } from "@quorate/storage";
import { MemoryDisk } from "@quorate/storage/internal";
import {
  errorMessage,
  guardMachine,
  type MemberEnvironment,
  type ProtocolAdapter,
  type ProtocolRun,
  type Violation,
} from "../protocol.js";
import { ObservedTransport } from "../transport.js";
import { RaftInvariants } from "./invariants.js";

export interface RaftAdapterOptions {
  /** The protocol machine; tests pass deliberately broken variants built with `provide()`. */
  readonly machine?: RaftMachine;
  /** Wraps each member's storage as its node sees it; tests use it to break durability. */
  readonly wrapStorage?: (storage: RaftStorage) => RaftStorage;
  /** Options over SIM_RAFT_OPTIONS, e.g. lease reads. */
  readonly raft?: Partial<RaftOptions>;
  /** Wraps each member's timers as its node sees them; tests use it to break the clock. */
  readonly wrapTimers?: (timers: Timers) => Timers;
}

/**
 * Timing for simulated clusters: elections time out after 120-240 ms and heartbeats go every
 * 40 ms, so a few virtual seconds hold many elections while faults come and go.
 */
export const SIM_TICK_MS = 20;
/**
 * Snapshots are taken every few dozen entries, so compaction, InstallSnapshot in chunks and
 * restarts from a snapshot all happen under faults in ordinary runs.
 */
export const SIM_SNAPSHOT_THRESHOLD = 25;
export const SIM_RAFT_OPTIONS: Partial<RaftOptions> = { electionTicks: 6, heartbeatTicks: 2 };
/** The bootstrap voters; further members start with `join` and wait for the operator to add them. */
export const SIM_BOOTSTRAP_VOTERS = 3;
/**
 * Chance that a run bootstraps a single voter (the others join as learners when the operator
 * adds them), and that the operator may shrink the voters down to one: a one-voter leader
 * commits alone, and a learner follows it.
 */
export const SIM_ONE_VOTER_CHANCE = 0.2;
/** How often, in virtual ms, a leader's operator considers a membership change or a leadership transfer. */
export const SIM_OPERATOR_INTERVAL_MS = 200;

export function raftAdapter(options: RaftAdapterOptions = {}): ProtocolAdapter {
  return { name: "raft", createRun: (members, seed) => new RaftRun(members, seed, options) };
}

/**
 * Raft serving reads from leader leases. Simulated clocks run within ±5% of real time, so two
 * of them differ by up to 10.6%: the lease is shortened by 11%.
 */
export const LEASE_RAFT_OPTIONS: Partial<RaftOptions> = { leaseReads: true, maxClockDriftPercent: 11 };

/** Raft with lease reads, as its own protocol name so that a failure's replay command runs it again. */
export function leaseRaftAdapter(): ProtocolAdapter {
  return { ...raftAdapter({ raft: LEASE_RAFT_OPTIONS }), name: "raft-lease" };
}

/** Storage as the simulator sees it: every write and recovery reported to the invariants. */
class ObservedStorage implements RaftStorage {
  constructor(
    private readonly inner: RaftStorage,
    private readonly member: NodeId,
    private readonly invariants: RaftInvariants,
  ) {}

  async load(): Promise<RaftState> {
    const state = await this.inner.load();
    this.invariants.loaded(this.member, state);
    return state;
  }

  write(write: RaftWrite): Promise<void> {
    this.invariants.writeRequested(this.member, write);
    return this.inner.write(write).then(() => this.invariants.writeDurable(this.member, write));
  }

  compact(upTo: number): Promise<void> {
    return this.inner.compact(upTo);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

class RaftRun implements ProtocolRun {
  readonly #invariants = new RaftInvariants();
  readonly #disks = new Map<NodeId, MemoryDisk>();
  /** The running nodes. */
  readonly #nodes = new Map<NodeId, RaftNode>();
  readonly #bootstrapVoters: readonly NodeId[];
  /** Whether the operator may remove voters down to a single one. */
  readonly #oneVoterAllowed: boolean;
  /** The run's virtual time, known once a member started. */
  #now: () => number = () => 0;

  constructor(
    private readonly members: readonly NodeId[],
    seed: number,
    private readonly options: RaftAdapterOptions,
  ) {
    const prng = new Prng(seed);
    this.#bootstrapVoters = members.slice(0, prng.chance(SIM_ONE_VOTER_CHANCE) ? 1 : SIM_BOOTSTRAP_VOTERS);
    this.#oneVoterAllowed = prng.chance(SIM_ONE_VOTER_CHANCE);
  }

  async start(env: MemberEnvironment): Promise<ConsensusNode> {
    const { id } = env;
    let disk = this.#disks.get(id);
    if (disk === undefined) {
      disk = new MemoryDisk();
      this.#disks.set(id, disk);
    }
    const storage = new MemoryRaftStorage(disk, { schedule: env.scheduleDurability });
    const invariants = this.#invariants;
    const observed = new ObservedStorage(storage, id, invariants);
    invariants.started(id);
    const voters = this.#bootstrapVoters;
    const node = await RaftNode.start({
      id,
      members: voters,
      join: !voters.includes(id),
      // The member's sends, seen by the invariants first; deliveries are observed by the simulation.
      transport: new ObservedTransport(
        env.transport,
        () => {},
        () => {},
        (type, body, to) => invariants.sending(id, type, body, to, env.now()),
      ),
      storage: this.options.wrapStorage?.(observed) ?? observed,
      stateMachine: env.stateMachine,
      raft: { ...SIM_RAFT_OPTIONS, ...this.options.raft },
      tickMs: SIM_TICK_MS,
      snapshotThreshold: SIM_SNAPSHOT_THRESHOLD,
      seed: env.seed,
      timers: this.options.wrapTimers?.(env.timers) ?? env.timers,
      machine: guardMachine(this.options.machine ?? raftMachine, (err) =>
        invariants.fail("member-failure", `${id}'s machine threw: ${errorMessage(err)}`),
      ),
      observe: (observation) => {
        if (observation.kind === "role") env.traceRole(observation.role, observation.term);
        if (observation.kind === "transfer" && observation.status === "started" && observation.to !== null)
          env.transferStarted(observation.to);
        invariants.observed(id, observation);
      },
    });
    this.#nodes.set(id, node);
    this.#now = env.now;
    const operator = new Prng(`${env.seed}/operator`);
    env.timers.setInterval(() => this.#operate(node, operator), SIM_OPERATOR_INTERVAL_MS);
    return node;
  }

  /**
   * An operator at the leader: now and then it adds, promotes or removes a member, sometimes two
   * changes at once (the second must be refused while the first is uncommitted), or moves
   * leadership. Outcomes do not matter to the run, only that every invariant holds throughout.
   */
  #operate(node: RaftNode, prng: Prng): void {
    if (node.role() !== "leader" || !prng.chance(0.7)) return;
    if (prng.chance(0.15)) {
      node.transferLeadership(prng.chance(0.5) ? undefined : prng.pick(this.members)).catch(() => {});
      return;
    }
    const changes = prng.chance(0.3) ? 2 : 1;
    for (let i = 0; i < changes; i++) node.changeMembership(this.#pickChange(node, prng)).catch(() => {});
  }

  #pickChange(node: RaftNode, prng: Prng): MembershipChange {
    const { voters, learners } = node.membership();
    // A learner is usually on its way to becoming a voter.
    if (learners.length > 0 && prng.chance(0.6)) return { type: "promote", member: prng.pick(learners) };
    const outside = this.members.filter((m) => !voters.includes(m) && !learners.includes(m));
    const choices: MembershipChange[] = [
      ...outside.map((member) => ({ type: "add-learner" as const, member })),
      ...learners.map((member) => ({ type: "remove" as const, member })),
      // Usually at least two voters, so that there is something to partition; the leader may remove itself.
      ...(voters.length > (this.#oneVoterAllowed ? 1 : 2)
        ? voters.map((member) => ({ type: "remove" as const, member }))
        : []),
    ];
    return choices.length > 0 ? prng.pick(choices) : { type: "remove", member: prng.pick(voters) };
  }

  crash(member: NodeId): void {
    const node = this.#nodes.get(member);
    if (node === undefined) return;
    this.#nodes.delete(member);
    node.kill();
    // The storage loses its pending writes and never settles them, as a killed process would.
    this.#disks.get(member)?.crash();
    this.#invariants.crashed(member);
  }

  check(): Violation | null {
    return this.#invariants.check(this.#nodes);
  }

  readonly leadership = {
    highestElectedTerm: (): number => this.#invariants.highestElectedTerm,
    leadingTerm: (member: NodeId): number | null => {
      const node = this.#nodes.get(member);
      return node?.role() === "leader" ? node.status().term : null;
    },
    readTaken: (member: NodeId): (() => string | null) | null => {
      const node = this.#nodes.get(member);
      // A lease read is answered without a round; deposed-leader-read checks those.
      if (node === undefined || node.role() !== "leader" || this.options.raft?.leaseReads === true) return null;
      const takenAt = this.#now();
      const term = node.status().term;
      const votersAtArrival = node.membership().voters;
      return () => {
        // Answered by the same incarnation, still leading in the same term: otherwise some other
        // check applies (a restarted or re-elected member answers nothing it took up before).
        if (this.#nodes.get(member) !== node || node.role() !== "leader" || node.status().term !== term) return null;
        return this.#invariants.readQuorumMissing(member, term, [votersAtArrival, node.membership().voters], takenAt);
      };
    },
  };

  highestCommitted(): number {
    return this.#invariants.highestCommitted(this.#nodes);
  }
}
