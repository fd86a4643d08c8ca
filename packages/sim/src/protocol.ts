import type { ConsensusNode, NodeId, StateMachine, Transport } from "@quorate/core";
import type { VirtualTimers } from "./scheduler.js";
import type { SimulationMode } from "./simulation.js";

/** A broken invariant or a failed check: ends the run. */
export interface Violation {
  /** Which invariant or check, e.g. "election-safety", "linearizability", "liveness". */
  readonly kind: string;
  readonly message: string;
}

/** The message of whatever a member, a client or a step threw. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A protocol machine with failures made visible: XState reports an error thrown by an actor
 * nobody observes on a timer, as an uncaught exception outside the simulation's control. Here
 * the step that threw (or whose child actor threw, which errors the parent) is reported at once
 * and the event is dropped; the run ends with it.
 */
export function guardMachine<M extends object>(machine: M, onError: (err: unknown) => void): M {
  return new Proxy(machine, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (property !== "transition" || typeof value !== "function") return value;
      return (...args: unknown[]): unknown => {
        try {
          const next: unknown = Reflect.apply(value, target, args);
          if (typeof next !== "object" || next === null || !("status" in next) || next.status !== "error") return next;
          onError("error" in next ? next.error : next);
        } catch (err) {
          onError(err);
        }
        return args[0];
      };
    },
  });
}

/** What the simulator gives one incarnation of one member. */
export interface MemberEnvironment {
  readonly id: NodeId;
  readonly members: readonly NodeId[];
  /** 1 at the first boot, one more at each restart. */
  readonly incarnation: number;
  /** A fresh connection to the simulated network. */
  readonly transport: Transport;
  /**
   * A further connection under another identity (a Paxos role's own, `n1-acceptor`): observed
   * like `transport`, closed when the member crashes, and cut off by the member's partitions.
   */
  readonly connect: (self: NodeId) => Transport;
  /** Timers on the virtual clock, cancelled when the member crashes. */
  readonly timers: VirtualTimers;
  /** A fresh replica of the replicated state machine; recovery replays the log into it. */
  readonly stateMachine: StateMachine;
  /** Seeds the member's own randomness (election timeouts); derived from the run's seed. */
  readonly seed: number;
  /**
   * Durability on the virtual clock: a storage write stays pending until the simulator calls
   * `makeDurable`, after a disk latency drawn from the run's PRNG (long while the disk is slow).
   */
  readonly scheduleDurability: (makeDurable: () => void) => void;
  /** Records a role change (leader, follower, ...) in the run's trace. */
  readonly traceRole: (role: string, term: number) => void;
  /** Leadership is moving to `to`: the nemesis sometimes cuts it off, so the transfer aborts. */
  readonly transferStarted: (to: NodeId) => void;
  /** The run's virtual time in ms, the same for every member (a member's own clock may drift). */
  readonly now: () => number;
}

/** One run of one protocol: the members' disks, the live nodes, and the protocol's invariants. */
export interface ProtocolRun {
  /** Boots a member from its disk: empty at first, whatever was durable after a crash. */
  start(env: MemberEnvironment): Promise<ConsensusNode>;
  /** Crashes a running member: it halts at once and loses the writes not yet durable. */
  crash(member: NodeId): void;
  /**
   * Checks the protocol's invariants over the whole cluster; called after every step, so it
   * must be incremental. Returns the first violation found, including those noticed between
   * steps (in storage callbacks or protocol observations).
   */
  check(): Violation | null;
  /**
   * The highest index the run has seen committed, over every incarnation so far: a read invoked
   * now must be answered from a state at least this far along (the stale-read invariant). Only
   * an index whose whole prefix is decided counts (Raft: a leader's commit index or a member's
   * applied index; Paxos: a learner's applied slot, as slots are chosen out of order).
   */
  highestCommitted(): number;
  /**
   * Raft's terms: the highest term a leader was elected in so far, and the term `member` leads in
   * now (null when it does not lead). A leader answering a read that reached it after a leader of
   * a later term was elected cannot have confirmed its leadership: a quorum voted in the later
   * term before its heartbeat round (or its lease check) began, and any quorum that acknowledged
   * the round shares a member with it (the deposed-leader-read invariant). Absent for protocols
   * without terms.
   */
  readonly leadership?: {
    highestElectedTerm(): number;
    leadingTerm(member: NodeId): number | null;
    /**
     * A read reaches `member` now. Returns the read-quorum check to run when the member answers
     * it (what was missing, or null), or null when none applies (lease reads, a non-leader).
     */
    readTaken(member: NodeId): (() => string | null) | null;
  };
}

/**
 * Everything protocol-specific the simulator needs. The network, clock, faults, clients and the
 * linearizability check are shared; `src/raft/` and `src/paxos/` implement it.
 */
export interface ProtocolAdapter {
  readonly name: string;
  /**
   * Virtual milliseconds of faults per mode for runs that do not set them, sized to what a
   * virtual second of the protocol costs; the simulator's defaults when absent. The CLI and the
   * tests both take them from here, so a printed replay command re-runs a test's seed exactly.
   */
  readonly faultPeriodMs?: Readonly<Record<SimulationMode, number>>;
  /** Starts a run for these members; called once per seed, with a seed for the run's own choices. */
  createRun(members: readonly NodeId[], seed: number): ProtocolRun;
}
