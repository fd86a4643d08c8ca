import { type CheckResult, checkOperations, HistoryRecorder, type Verdict } from "@quorate/checker";
import type { ConsensusNode, NodeId, Transport } from "@quorate/core";
import { Prng, seedPrng } from "@quorate/core/internal";
import { KvStateMachine } from "@quorate/kv";
import { SessionStateMachine } from "@quorate/service";
import { MemoryNetwork } from "@quorate/transport-memory";
import {
  type FaultCounts,
  type FaultKind,
  HEALTHY_NETWORK,
  NEMESIS_PROFILES,
  Nemesis,
  type NemesisOptions,
} from "./faults.js";
import { errorMessage, type ProtocolAdapter, type ProtocolRun, type Violation } from "./protocol.js";
import { Scheduler, VirtualTimers } from "./scheduler.js";
import { startMemberLeaseTicker } from "./ticker.js";
import { Trace, type TraceEvent, type TraceRecord } from "./trace.js";
import { ObservedTransport } from "./transport.js";
import {
  type AnsweredRead,
  Client,
  type ClusterAccess,
  DEFAULT_WORKLOAD,
  type MemberHandle,
  type WorkloadOptions,
} from "./workload.js";

export type SimulationMode = "safety" | "liveness";

export interface SimulationOptions {
  readonly seed: number;
  /**
   * safety: faults for the whole run. liveness: faults for `faultPeriodMs`, then everything
   * heals and a new client write must commit within `livenessBoundMs`.
   */
  readonly mode: SimulationMode;
  readonly protocol: ProtocolAdapter;
  /** Cluster size; by default 3 or 5, drawn from the seed. */
  readonly members?: number;
  /** Concurrent client processes; by default 3 to 5, drawn from the seed. */
  readonly clients?: number;
  /**
   * Virtual milliseconds of faults: the whole run in safety mode, before the heal in liveness
   * mode. By default the protocol's own (`ProtocolAdapter.faultPeriodMs`), else 5 s and 3 s.
   */
  readonly faultPeriodMs?: number;
  readonly livenessBoundMs?: number;
  readonly nemesis?: NemesisOptions;
  readonly workload?: WorkloadOptions;
  /** Events kept for the failure report. */
  readonly traceLimit?: number;
  /** Time budget of the linearizability check, real milliseconds. */
  readonly checkTimeoutMs?: number;
  /** Makes each member incarnation's KV store; tests pass deliberately broken stores. A `KvStateMachine` by default. */
  readonly store?: () => KvStateMachine;
}

export const DEFAULT_FAULT_PERIOD_MS: Record<SimulationMode, number> = { safety: 5_000, liveness: 3_000 };
export const DEFAULT_LIVENESS_BOUND_MS = 10_000;
/** Members boot within this many virtual ms of the start, clients within CLIENT_SPREAD_MS. */
const BOOT_SPREAD_MS = 20;
const CLIENT_SPREAD_MS = 50;
/** The first history process of the lease tickers, above any client's. */
const TICKER_PROCESS_BASE = 1_000;
/** After the liveness condition is met the run goes on this long, so the history has a healed tail. */
const LIVENESS_TAIL_MS = 300;

export interface RunViolation extends Violation {
  /** Virtual time and step at which it was found. */
  readonly at: number;
  readonly step: number;
  /** Further lines for the report (the operations a linearizability failure could not order). */
  readonly details: readonly string[];
}

export interface OperationCounts {
  ok: number;
  fail: number;
  info: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly mode: SimulationMode;
  readonly protocol: string;
  readonly members: number;
  readonly clients: number;
  readonly steps: number;
  readonly virtualMs: number;
  readonly realMs: number;
  readonly faults: FaultCounts;
  readonly operations: OperationCounts;
  /** The first violation; null when the run passed. */
  readonly violation: RunViolation | null;
  /** The linearizability verdict; "unknown" when the check ran out of time or did not run. */
  readonly linearizability: Verdict;
  /** The last `traceLimit` events. */
  readonly trace: readonly TraceRecord[];
  /** Digest of every event of the run: equal for two runs of one seed. */
  readonly digest: string;
  /** The client history, as Jepsen EDN (`quorate check` reads it). */
  readonly history: string;
}

/** A seed for one part of a run, so that parts draw independent streams from one seed. */
export function deriveSeed(seed: number, part: string): number {
  return seedPrng(`${seed}/${part}`);
}

/** Runs all microtasks (promise continuations of nodes, storage and clients) queued by a step. */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The memory network for members that may have several identities on it (Paxos roles each have
 * their own): a link cut between two members cuts every identity of one from every identity of
 * the other, as when the members are machines and the identities processes on them.
 */
class MemberNetwork extends MemoryNetwork {
  /** Every identity of a member, the member's own first. */
  readonly #identities = new Map<NodeId, NodeId[]>();
  /** Links cut between members, to cut identities that connect later too. */
  readonly #cuts: (readonly [NodeId, NodeId])[] = [];

  addIdentity(member: NodeId, identity: NodeId): void {
    const identities = this.#identitiesOf(member);
    if (identities.includes(identity)) return;
    identities.push(identity);
    for (const [from, to] of this.#cuts) if (from === member || to === member) this.#blockIdentities(from, to);
  }

  override block(from: NodeId, to: NodeId): void {
    this.#cuts.push([from, to]);
    this.#blockIdentities(from, to);
  }

  override heal(): void {
    super.heal();
    this.#cuts.length = 0;
  }

  #identitiesOf(member: NodeId): NodeId[] {
    let identities = this.#identities.get(member);
    if (identities === undefined) {
      identities = [member];
      this.#identities.set(member, identities);
    }
    return identities;
  }

  #blockIdentities(from: NodeId, to: NodeId): void {
    for (const a of this.#identitiesOf(from)) for (const b of this.#identitiesOf(to)) super.block(a, b);
  }
}

/** A running incarnation of a member. */
interface Incarnation {
  /** The member's connections: its own, then those it opened for further identities. */
  readonly transports: ObservedTransport[];
  readonly timers: VirtualTimers;
  readonly store: KvStateMachine;
  node: ConsensusNode | null;
  /** While the process is paused, what waits for it to run (a finished disk write, a client's call); null while it runs. */
  paused: (() => void)[] | null;
}

/** Resolves once the member's process runs: at once, or when a pause ends. */
function whenRunning(incarnation: Incarnation): Promise<void> {
  const paused = incarnation.paused;
  return paused === null ? Promise.resolve() : new Promise<void>((resolve) => paused.push(resolve));
}

/** A paused member's node as clients reach it: each call waits until the process runs again. */
function afterResume(incarnation: Incarnation, node: ConsensusNode): ConsensusNode {
  const resumed = () => whenRunning(incarnation);
  return {
    id: node.id,
    leader: () => node.leader(),
    get appliedIndex() {
      return node.appliedIndex;
    },
    propose: (command) => resumed().then(() => node.propose(command)),
    readBarrier: () => resumed().then(() => node.readBarrier()),
  };
}

/** Runs one seed: a whole cluster, its clients and the nemesis on one virtual clock. */
export function simulate(options: SimulationOptions): Promise<SimulationResult> {
  return new Simulation(options).run();
}

class Simulation implements ClusterAccess {
  readonly members: readonly NodeId[];
  readonly #options: SimulationOptions;
  readonly #scheduler = new Scheduler();
  readonly #network: MemberNetwork;
  readonly #trace: Trace;
  readonly #run: ProtocolRun;
  readonly #nemesis: Nemesis;
  readonly #recorder = new HistoryRecorder();
  readonly #config: Prng;
  readonly #disk: Prng;
  readonly #clockRates = new Map<NodeId, number>();
  readonly #running = new Map<NodeId, Incarnation>();
  readonly #incarnations = new Map<NodeId, number>();
  readonly #slowDisks = new Set<NodeId>();
  /** Per member, when its last write becomes durable: writes become durable in order. */
  readonly #durableAt = new Map<NodeId, number>();
  readonly #operations: OperationCounts = { ok: 0, fail: 0, info: 0 };
  readonly #clientCount: number;
  #clients = 0;
  /** Lease tickers started so far; each records its ticks as a process of its own, from TICKER_PROCESS_BASE on. */
  #tickers = 0;
  #step = 0;
  #endAt: number;
  #violation: RunViolation | null = null;
  #healedAt: number | null = null;
  #livenessMetAt: number | null = null;

  constructor(options: SimulationOptions) {
    this.#options = options;
    const { seed } = options;
    this.#config = new Prng(deriveSeed(seed, "config"));
    this.#disk = new Prng(deriveSeed(seed, "disk"));
    const size = options.members ?? this.#config.pick([3, 5]);
    this.members = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    this.#clientCount = options.clients ?? this.#config.int(3, 5);
    this.#network = new MemberNetwork({
      seed: deriveSeed(seed, "network"),
      now: () => this.#scheduler.now,
      delivery: "manual",
    });
    this.#network.setFaults(HEALTHY_NETWORK);
    this.#trace = new Trace(options.traceLimit ?? 50);
    this.#run = options.protocol.createRun(this.members, deriveSeed(seed, "protocol"));
    this.#nemesis = new Nemesis(
      this.#scheduler,
      new Prng(deriveSeed(seed, "nemesis")),
      {
        members: this.members,
        network: this.#network,
        isUp: (member) => this.#running.has(member),
        leads: (member) => this.member(member)?.node.leader() === member,
        crash: (member) => this.#crash(member),
        restart: (member) => this.#boot(member),
        setSlowDisk: (member, slow) => void (slow ? this.#slowDisks.add(member) : this.#slowDisks.delete(member)),
        pause: (member) => this.#pause(member),
        resume: (member) => this.#resume(member),
      },
      options.nemesis ?? this.#config.pick(NEMESIS_PROFILES),
      (fault: FaultKind, detail: string) => this.#record({ kind: "fault", fault, detail }),
    );
    const faultPeriod = this.#faultPeriod;
    this.#endAt = options.mode === "safety" ? faultPeriod : faultPeriod + this.#livenessBound;
  }

  get #faultPeriod(): number {
    const { faultPeriodMs, protocol, mode } = this.#options;
    return faultPeriodMs ?? protocol.faultPeriodMs?.[mode] ?? DEFAULT_FAULT_PERIOD_MS[mode];
  }

  get #livenessBound(): number {
    return this.#options.livenessBoundMs ?? DEFAULT_LIVENESS_BOUND_MS;
  }

  member(id: NodeId): MemberHandle | null {
    const incarnation = this.#running.get(id);
    if (incarnation === undefined || incarnation.node === null) return null;
    const node = incarnation.paused === null ? incarnation.node : afterResume(incarnation, incarnation.node);
    return { node, store: incarnation.store, whenRunning: () => whenRunning(incarnation) };
  }

  async run(): Promise<SimulationResult> {
    const started = performance.now();
    for (const member of this.members) {
      // Clocks drift by up to ±5%, and members boot at different moments.
      this.#clockRates.set(member, 1 + this.#config.int(-50, 50) / 1000);
      this.#scheduler.after(this.#config.int(0, BOOT_SPREAD_MS), () => this.#boot(member));
    }
    for (let i = 0; i < this.#clientCount; i++) this.#startClient(this.#config.int(0, CLIENT_SPREAD_MS));
    this.#nemesis.start();
    if (this.#options.mode === "liveness") this.#scheduler.at(this.#faultPeriod, () => this.#heal());
    await this.#loop();
    let verdict: Verdict = "unknown";
    if (this.#violation === null) verdict = this.#checkLinearizability();
    return {
      seed: this.#options.seed,
      mode: this.#options.mode,
      protocol: this.#options.protocol.name,
      members: this.members.length,
      clients: this.#clients,
      steps: this.#step,
      virtualMs: this.#scheduler.now,
      realMs: performance.now() - started,
      faults: this.#nemesis.counts,
      operations: this.#operations,
      violation: this.#violation,
      linearizability: verdict,
      trace: this.#trace.recent(),
      digest: this.#trace.digest,
      history: this.#recorder.toEdn(),
    };
  }

  /** The event loop: one step per event or per network delivery time, invariants after each. */
  async #loop(): Promise<void> {
    while (this.#violation === null) {
      const eventAt = this.#scheduler.nextAt();
      const deliveryAt = this.#network.nextDeliveryAt();
      const network = deliveryAt !== undefined && (eventAt === undefined || deliveryAt <= eventAt);
      const at = network ? deliveryAt : eventAt;
      if (at === undefined || at > this.#endAt) break;
      this.#step++;
      try {
        if (network) {
          this.#scheduler.advanceTo(at);
          this.#network.deliverDue();
        } else {
          this.#scheduler.take()?.run();
        }
      } catch (err) {
        this.#fail({ kind: "member-failure", message: `a step threw: ${errorMessage(err)}` });
      }
      await drainMicrotasks();
      const violation = this.#run.check();
      if (violation !== null) this.#fail(violation);
    }
  }

  #fail(violation: Violation, details: readonly string[] = []): void {
    this.#violation ??= { ...violation, at: this.#scheduler.now, step: this.#step, details };
  }

  #record(event: TraceEvent): void {
    this.#trace.record(this.#scheduler.now, this.#step, event);
  }

  #boot(id: NodeId): void {
    const number = (this.#incarnations.get(id) ?? 0) + 1;
    this.#incarnations.set(id, number);
    const timers = new VirtualTimers(this.#scheduler, this.#clockRates.get(id));
    const store = this.#options.store?.() ?? new KvStateMachine();
    const incarnation: Incarnation = { transports: [], timers, store, node: null, paused: null };
    this.#running.set(id, incarnation);
    const connect = (self: NodeId): Transport => {
      if (this.#running.get(id) !== incarnation) throw new Error(`${self} connected after ${id} crashed`);
      this.#network.addIdentity(id, self);
      const transport = new ObservedTransport(
        this.#network.connect({ cluster: "sim", group: this.#options.protocol.name, self }),
        (m) => this.#record({ kind: "deliver", from: m.sender, to: self, type: m.type, body: m.body }),
        (err) =>
          this.#fail({ kind: "member-failure", message: `${self} threw handling a message: ${errorMessage(err)}` }),
      );
      incarnation.transports.push(transport);
      return transport;
    };
    const transport = connect(id);
    if ((this.#options.workload ?? DEFAULT_WORKLOAD).leaseShare > 0) this.#startLeaseTicker(id, incarnation);
    const seed = deriveSeed(this.#options.seed, `member/${id}/${number}`);
    this.#run
      .start({
        id,
        members: this.members,
        incarnation: number,
        transport,
        connect,
        timers,
        stateMachine: new SessionStateMachine(store),
        seed,
        scheduleDurability: (makeDurable) => this.#scheduleDurability(id, incarnation, makeDurable),
        traceRole: (role, term) => {
          this.#record({ kind: "role", member: id, role, term });
          if (role === "leader") this.#nemesis.leaderElected(id);
        },
        transferStarted: (to) => this.#nemesis.transferStarted(to),
        now: () => this.#scheduler.now,
      })
      .then(
        (node) => {
          if (this.#running.get(id) === incarnation) incarnation.node = node;
        },
        (err: unknown) =>
          this.#fail({ kind: "member-failure", message: `${id} failed to start: ${errorMessage(err)}` }),
      );
  }

  /**
   * The member's lease clock ticker, as its KV service would run it. Its term is Raft's; without
   * terms, one number per incarnation (the ticker's own), standing in for the Paxos ballot round a
   * restarted member campaigns with: each incarnation numbers its ticks from 1 again.
   */
  #startLeaseTicker(id: NodeId, incarnation: Incarnation): void {
    const ordinal = this.#tickers++;
    const process = TICKER_PROCESS_BASE + ordinal;
    startMemberLeaseTicker({
      member: id,
      process,
      timers: incarnation.timers,
      store: incarnation.store,
      node: () => incarnation.node,
      running: () => this.#running.get(id) === incarnation,
      leadership: () => {
        const node = incarnation.node;
        if (node === null) return null;
        const leadership = this.#run.leadership;
        if (leadership === undefined) return node.leader() === id ? { term: ordinal } : null;
        const term = leadership.leadingTerm(id);
        return term === null ? null : { term };
      },
      recorder: this.#recorder,
      trace: (p, detail) => this.#record({ kind: "client", process: p, detail }),
    });
  }

  #crash(id: NodeId): void {
    const incarnation = this.#running.get(id);
    if (incarnation === undefined) return;
    this.#running.delete(id);
    this.#run.crash(id);
    incarnation.timers.cancelAll();
    for (const transport of incarnation.transports) void transport.close();
  }

  /** Stops a started member's process: its timers, deliveries, disk completions and client calls wait. */
  #pause(id: NodeId): boolean {
    const incarnation = this.#running.get(id);
    if (incarnation === undefined || incarnation.node === null || incarnation.paused !== null) return false;
    incarnation.paused = [];
    incarnation.timers.pause();
    for (const transport of incarnation.transports) transport.hold();
    return true;
  }

  /**
   * The process runs again, one step at a time as an event loop would: first its overdue timers
   * (once each), then the disk writes and client calls that waited, then the messages that
   * queued. Clients first: a request handled before the news from the other members is what a
   * resumed leader must not answer from stale state.
   */
  #resume(id: NodeId): void {
    const incarnation = this.#running.get(id);
    if (incarnation === undefined || incarnation.paused === null) return;
    const waiting = incarnation.paused;
    incarnation.paused = null;
    incarnation.timers.resume();
    const running = () => this.#running.get(id) === incarnation;
    for (const run of waiting) {
      this.#scheduler.after(0, () => {
        if (running()) run();
      });
    }
    for (const transport of incarnation.transports) {
      for (const message of transport.release()) {
        this.#scheduler.after(0, () => {
          if (running()) transport.deliver(message);
        });
      }
    }
  }

  /** Disk latency from the run's PRNG; writes become durable in order per member. */
  #scheduleDurability(id: NodeId, incarnation: Incarnation, makeDurable: () => void): void {
    // A healthy disk takes a few ms, with an occasional stall as fsync has; a slow one, hundreds.
    const latency = this.#slowDisks.has(id)
      ? this.#disk.int(50, 400)
      : this.#disk.chance(0.05)
        ? this.#disk.int(10, 60)
        : this.#disk.int(0, 3);
    const at = Math.max(this.#scheduler.now + latency, this.#durableAt.get(id) ?? 0);
    this.#durableAt.set(id, at);
    this.#scheduler.at(at, () => {
      // A crash lost whatever was still pending; the storage discards it too.
      if (this.#running.get(id) !== incarnation) return;
      if (incarnation.paused === null) makeDurable();
      else incarnation.paused.push(makeDurable);
    });
  }

  #startClient(delayMs: number): void {
    const process = this.#clients++;
    const client = new Client(process, {
      scheduler: this.#scheduler,
      prng: new Prng(deriveSeed(this.#options.seed, `client/${process}`)),
      recorder: this.#recorder,
      cluster: this,
      options: this.#options.workload ?? DEFAULT_WORKLOAD,
      trace: (p, detail) => this.#record({ kind: "client", process: p, detail }),
      onComplete: (outcome, f, invokedAt) => {
        this.#operations[outcome]++;
        if (outcome === "ok" && !["get", "entry", "keys", "list"].includes(f)) this.#writeAcknowledged(invokedAt);
      },
      readFloor: () => this.#run.highestCommitted(),
      electedTermFloor: () => this.#run.leadership?.highestElectedTerm() ?? 0,
      leadingTerm: (member) => this.#run.leadership?.leadingTerm(member) ?? null,
      readTaken: (member) => this.#run.leadership?.readTaken(member) ?? null,
      readAnswered: (read) => this.#checkStaleRead(read),
    });
    this.#scheduler.after(delayMs, () => {
      // A client only throws on a result it cannot decode: a member answered with garbage.
      client
        .run(() => this.#violation === null)
        .catch((err: unknown) => {
          this.#fail({
            kind: "member-failure",
            message: `client c${process} got a malformed result: ${errorMessage(err)}`,
          });
        });
    });
  }

  /** Liveness mode: the fault period is over; from now on the cluster must make progress. */
  #heal(): void {
    this.#healedAt = this.#scheduler.now;
    this.#nemesis.healAll();
    // A fresh client, so that writes invoked after the heal exist even if every other client is mid-retry.
    this.#startClient(0);
    const bound = this.#livenessBound;
    this.#scheduler.after(bound, () => {
      if (this.#livenessMetAt !== null) return;
      this.#fail({
        kind: "liveness",
        message: `no client write invoked after the heal at ${this.#healedAt}ms was acknowledged within ${bound}ms`,
      });
    });
  }

  /**
   * The stale-read invariant: a read is answered from a state at least as recent as every index
   * committed before it was invoked (why a correct protocol never fails it: `highestCommitted`).
   */
  #checkStaleRead(read: AnsweredRead): void {
    if (read.quorumMissing !== null) {
      this.#fail({ kind: "read-quorum", message: `c${read.process}'s ${read.f} ${read.key}: ${read.quorumMissing}` });
      return;
    }
    if (read.servedTerm !== null && read.servedTerm < read.electedTermFloor) {
      this.#fail({
        kind: "deposed-leader-read",
        message:
          `c${read.process}'s ${read.f} ${read.key} reached ${read.member} after a leader of term ` +
          `${read.electedTermFloor} was elected, and ${read.member} answered it as leader of term ${read.servedTerm}`,
      });
      return;
    }
    if (read.appliedIndex >= read.floor) return;
    this.#fail({
      kind: "stale-read",
      message:
        `c${read.process}'s ${read.f} ${read.key}, invoked at ${read.invokedAt}ms when index ${read.floor} was committed, ` +
        `was answered by ${read.member} at applied index ${read.appliedIndex}`,
    });
  }

  #writeAcknowledged(invokedAt: number): void {
    if (this.#healedAt === null || invokedAt < this.#healedAt || this.#livenessMetAt !== null) return;
    this.#livenessMetAt = this.#scheduler.now;
    this.#endAt = Math.min(this.#endAt, this.#scheduler.now + LIVENESS_TAIL_MS);
  }

  #checkLinearizability(): Verdict {
    const result: CheckResult = checkOperations(this.#recorder.operations(), {
      timeoutMs: this.#options.checkTimeoutMs ?? 10_000,
    });
    if (result.verdict === "not-linearizable") {
      const witness = (result.witness ?? []).map(
        (op) =>
          `c${op.process} ${op.f} ${op.key} ${JSON.stringify(op.f === "get" || op.f === "entry" ? op.output : op.input)} ` +
          (op.entries ? `= ${JSON.stringify(op.entries)} ` : "") +
          (op.succeeded !== undefined && op.succeeded !== null ? `succeeded ${op.succeeded} ` : "") +
          ("lease" in op && op.lease !== undefined ? `lease ${op.lease} ` : "") +
          (op.applied !== null ? `applied ${op.applied} ` : "") +
          `(${op.status}, events ${op.call}..${op.return === Number.POSITIVE_INFINITY ? "∞" : op.return})`,
      );
      const failed = result.keys.find((key) => key.verdict === "not-linearizable");
      this.#fail(
        {
          kind: "linearizability",
          message:
            result.revisionOrder === undefined
              ? `the client history is not linearizable on ${failed?.keys === undefined ? "key" : "keys"} ` +
                `${failed?.keys?.join(", ") ?? failed?.key ?? "?"}`
              : `the client history is not linearizable: ${result.revisionOrder.reason}`,
        },
        ["operations that cannot be ordered:", ...witness.map((line) => `  ${line}`)],
      );
    }
    return result.verdict;
  }
}
