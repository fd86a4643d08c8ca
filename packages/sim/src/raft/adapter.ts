import type { ConsensusNode, NodeId } from "@quorate/core";
import { type RaftMachine, RaftNode, type RaftOptions, raftMachine } from "@quorate/raft";
import { MemoryDisk, MemoryRaftStorage, type RaftState, type RaftStorage, type RaftWrite } from "@quorate/storage";
import {
  errorMessage,
  guardMachine,
  type MemberEnvironment,
  type ProtocolAdapter,
  type ProtocolRun,
  type Violation,
} from "../protocol.js";
import { RaftInvariants } from "./invariants.js";

export interface RaftAdapterOptions {
  /** The protocol machine; tests pass deliberately broken variants built with `provide()`. */
  readonly machine?: RaftMachine;
  /** Wraps each member's storage as its node sees it; tests use it to break durability. */
  readonly wrapStorage?: (storage: RaftStorage) => RaftStorage;
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

export function raftAdapter(options: RaftAdapterOptions = {}): ProtocolAdapter {
  return { name: "raft", createRun: (members) => new RaftRun(members, options) };
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

  constructor(
    private readonly members: readonly NodeId[],
    private readonly options: RaftAdapterOptions,
  ) {}

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
    const node = await RaftNode.start({
      id,
      members: this.members,
      transport: env.transport,
      storage: this.options.wrapStorage?.(observed) ?? observed,
      stateMachine: env.stateMachine,
      raft: SIM_RAFT_OPTIONS,
      tickMs: SIM_TICK_MS,
      snapshotThreshold: SIM_SNAPSHOT_THRESHOLD,
      seed: env.seed,
      timers: env.timers,
      machine: guardMachine(this.options.machine ?? raftMachine, (err) =>
        invariants.fail("member-failure", `${id}'s machine threw: ${errorMessage(err)}`),
      ),
      observe: (observation) => {
        if (observation.kind === "role") env.traceRole(observation.role, observation.term);
        invariants.observed(id, observation);
      },
    });
    this.#nodes.set(id, node);
    return node;
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
}
