import type { NodeId } from "@quorate/core";
import type { Prng } from "@quorate/core/internal";
import type { MemoryNetwork, NetworkFaults } from "@quorate/transport-memory";
import type { ScheduledEvent, Scheduler } from "./scheduler.js";

export const FAULT_KINDS = [
  "drop",
  "duplicate",
  "reorder",
  "delay",
  "partition",
  "asymmetric-partition",
  "leader-isolation",
  "deaf-leader",
  "leader-bounce",
  "heal",
  "crash",
  "leader-crash",
  "restart",
  "slow-disk",
  "pause",
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults the nemesis draws at random; the others follow from these or from elections. */
const INJECTED_KINDS = FAULT_KINDS.filter(
  (kind) =>
    kind !== "restart" &&
    kind !== "leader-crash" &&
    kind !== "leader-isolation" &&
    kind !== "deaf-leader" &&
    kind !== "leader-bounce",
);

export type FaultCounts = Record<FaultKind, number>;

export function emptyFaultCounts(): FaultCounts {
  return Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as FaultCounts;
}

/** A healthy network: nothing lost or duplicated, a little latency and jitter. */
export const HEALTHY_NETWORK: NetworkFaults = { drop: 0, duplicate: 0, minDelayMs: 1, maxDelayMs: 5 };

/** What the nemesis acts on. */
export interface FaultTarget {
  readonly members: readonly NodeId[];
  readonly network: MemoryNetwork;
  isUp(member: NodeId): boolean;
  /** Whether a running member believes it leads. */
  leads(member: NodeId): boolean;
  crash(member: NodeId): void;
  restart(member: NodeId): void;
  setSlowDisk(member: NodeId, slow: boolean): void;
  /**
   * Stops a running member's process (GC, SIGSTOP, a stalled VM): no timer fires and nothing is
   * handled while its messages queue and the others go on. False if it is not running or already paused.
   */
  pause(member: NodeId): boolean;
  /** Lets a paused member run again: its overdue timers fire once, then the queued messages are handled. */
  resume(member: NodeId): void;
}

export interface NemesisOptions {
  /** Pause between faults, drawn from this range (virtual ms). */
  readonly gapMs: readonly [number, number];
  /** How long a network condition, partition or slow disk lasts. */
  readonly durationMs: readonly [number, number];
  /** How long a crashed member stays down before it restarts; short downtimes restart with messages still in flight. */
  readonly downtimeMs: readonly [number, number];
  /**
   * Chance that a newly elected leader is crashed within `leaderCrashWithinMs`: before its first
   * entries are durable or replicated, the case Raft's commit rule (Figure 8) exists for.
   */
  readonly leaderCrashChance: number;
  readonly leaderCrashWithinMs: number;
  /** Chance that another member crashes together with the leader. */
  readonly correlatedCrashChance: number;
  /** Chance that a newly elected leader's disk turns slow: its own writes lag behind its followers' acks. */
  readonly leaderSlowDiskChance: number;
  /**
   * Chance that a newly elected leader is cut off, with a minority of followers at most, within
   * `leaderIsolationWithinMs`: soon enough that even its first broadcast is lost, so the entries
   * it appends reach few members or none.
   */
  readonly leaderIsolationChance: number;
  readonly leaderIsolationWithinMs: number;
  /**
   * Liveness mode: at the heal, the leader of the moment (or else the next one elected) stops
   * hearing every other member for good, while they still hear it. A majority still talks both
   * ways, so progress must follow: the deaf leader has to notice it hears no quorum and step
   * down. Off unless set.
   */
  readonly deafLeaderAfterHeal?: boolean;
  /**
   * Share of the random faults that cut off whoever leads at that moment (with a minority at
   * most), both ways or one way, while clients keep sending it reads: a leader that has served
   * reads and committed in its term, and does not know yet that it was replaced.
   */
  readonly leaderIsolationShare: number;
  /** Chance that the target of a leadership transfer is cut off as the transfer starts. */
  readonly transferCutChance: number;
  /**
   * Share of the random faults that bounce an established leader: its messages of the next few
   * tens of ms are delayed by up to half a second, then it crashes and restarts at once. If it wins
   * again, its old heartbeats reach followers already in its new term, while its restarted
   * heartbeat round counter is far behind the one those heartbeats carry.
   */
  readonly leaderBounceShare: number;
  /** How long a paused member stays stopped: several election timeouts, so the others elect without it. */
  readonly pauseMs: readonly [number, number];
}

/**
 * Nasty enough to produce Raft's Figure 8 (an entry of an old term committed by counting, then
 * overwritten) within a few hundred seeds: new leaders are often cut off before their first
 * broadcast, crash soon after election (sometimes with a follower), and write to slow disks;
 * random faults come every few hundred ms, so the cluster also makes progress in between.
 */
export const DEFAULT_NEMESIS: NemesisOptions = {
  gapMs: [100, 600],
  durationMs: [100, 1_500],
  downtimeMs: [0, 300],
  leaderCrashChance: 0.5,
  leaderCrashWithinMs: 60,
  correlatedCrashChance: 0.5,
  leaderSlowDiskChance: 0.9,
  leaderIsolationChance: 0.5,
  leaderIsolationWithinMs: 3,
  leaderIsolationShare: 0,
  transferCutChance: 0.5,
  leaderBounceShare: 0,
  pauseMs: [250, 1_200],
};

/**
 * Gentler on new leaders, harder on established ones: a new leader usually commits in its term
 * and serves reads, then half the faults cut off whoever leads while clients keep reading from
 * it. That is where a deposed leader that does not know it yet may answer a read that a newer
 * leader's commits have overtaken.
 */
export const READ_WINDOW_NEMESIS: NemesisOptions = {
  ...DEFAULT_NEMESIS,
  leaderCrashChance: 0.1,
  leaderSlowDiskChance: 0.1,
  leaderIsolationChance: 0,
  leaderIsolationShare: 0.6,
  leaderBounceShare: 0.3,
};

/** A seed that names no nemesis draws one of these: Figure 8 needs the default's chains of elections more often. */
export const NEMESIS_PROFILES: readonly NemesisOptions[] = [DEFAULT_NEMESIS, DEFAULT_NEMESIS, READ_WINDOW_NEMESIS];

/** How long a member must have led before leader-bounce picks it. */
const BOUNCE_LEADER_MS = 800;

/** A bounced leader elected again within this long is cut off soon after. */
const BOUNCE_REELECTION_MS = 1_500;

/** How long a member must have led before the random faults' leader isolation picks it. */
const ESTABLISHED_LEADER_MS = 100;

/** A set of directed links cut together, healed together. */
interface Cut {
  readonly links: readonly (readonly [NodeId, NodeId])[];
}

/**
 * Injects faults drawn from the run's PRNG: network loss, duplication, reordering, delay,
 * symmetric and asymmetric partitions, crashes with restarts, slow disks, paused processes. Each fault undoes
 * itself after a drawn duration; overlapping ones compose.
 */
export class Nemesis {
  readonly counts = emptyFaultCounts();
  #next: ScheduledEvent | null = null;
  #active = false;
  readonly #cuts = new Set<Cut>();
  /** Bumped by every change of a network knob, so only the latest change's undo applies. */
  readonly #generation = { drop: 0, duplicate: 0, latency: 0 };
  /** The slow-disk fault in force per member, by the number it was injected as. */
  readonly #slowDisks = new Map<NodeId, number>();
  #injected = 0;
  /** The pause in force per member, by the number it was injected as. */
  readonly #pauses = new Map<NodeId, number>();
  readonly #restarts = new Map<NodeId, ScheduledEvent>();
  /** The heal found no leader to deafen: the next one elected is. */
  #deafenNextLeader = false;
  /** Leaders bounced (leader-bounce), by when: if one wins again soon, it is cut off soon after. */
  readonly #bounced = new Map<NodeId, number>();
  /** When each member last became leader. */
  readonly #electedAt = new Map<NodeId, number>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    private readonly target: FaultTarget,
    private readonly options: NemesisOptions,
    private readonly trace: (fault: FaultKind, detail: string) => void,
  ) {}

  start(): void {
    this.#active = true;
    this.#scheduleNext();
  }

  /**
   * Ends the fault period: no new faults, network healed and clean, disks fast, crashed
   * members restarted. The liveness mode then expects progress.
   */
  healAll(): void {
    this.#active = false;
    if (this.#next !== null) this.#next.cancelled = true;
    this.#generation.drop++;
    this.#generation.duplicate++;
    this.#generation.latency++;
    this.#cuts.clear();
    this.target.network.heal();
    this.target.network.setFaults(HEALTHY_NETWORK);
    this.#note("heal", "everything: network, disks, crashed members");
    for (const member of this.target.members) {
      if (this.#pauses.delete(member)) this.target.resume(member);
      if (this.#slowDisks.has(member)) {
        this.#slowDisks.delete(member);
        this.target.setSlowDisk(member, false);
      }
      const restart = this.#restarts.get(member);
      if (restart !== undefined) restart.cancelled = true;
      this.#restarts.delete(member);
      if (!this.target.isUp(member)) this.#restart(member);
    }
    if (this.options.deafLeaderAfterHeal === true) {
      const leader = this.target.members.find((m) => this.target.isUp(m) && this.target.leads(m));
      if (leader === undefined) this.#deafenNextLeader = true;
      else this.#deafen(leader);
    }
  }

  /** Called when a member becomes leader: sometimes its disk turns slow, sometimes it crashes right away. */
  leaderElected(member: NodeId): void {
    if (this.#deafenNextLeader) {
      this.#deafenNextLeader = false;
      this.#deafen(member);
    }
    this.#electedAt.set(member, this.scheduler.now);
    if (!this.#active) return;
    const bouncedAt = this.#bounced.get(member);
    this.#bounced.delete(member);
    if (bouncedAt !== undefined && this.scheduler.now - bouncedAt < BOUNCE_REELECTION_MS) {
      // Back in the lead with its old heartbeats still arriving: cut it off soon, with a minority,
      // while its restarted round counter is still behind theirs and clients read from it.
      this.scheduler.after(this.prng.int(100, 300), () => {
        if (this.#active && this.target.leads(member)) this.#isolateLeader(member, "both", true);
      });
    }
    if (this.prng.chance(this.options.leaderSlowDiskChance)) this.#slowDisk(member);
    if (this.prng.chance(this.options.leaderIsolationChance)) {
      this.scheduler.after(this.prng.int(0, this.options.leaderIsolationWithinMs), () => {
        if (this.#active && this.target.leads(member)) this.#isolateLeader(member, "both");
      });
    }
    if (this.prng.chance(this.options.leaderCrashChance)) {
      this.scheduler.after(this.prng.int(0, this.options.leaderCrashWithinMs), () => {
        if (!this.#active || !this.target.leads(member)) return;
        this.#crash(member, "leader-crash");
        // Failures correlate (a rack, a power feed): sometimes a follower goes down with the leader.
        const up = this.target.members.filter((m) => this.target.isUp(m));
        if (up.length > 0 && this.prng.chance(this.options.correlatedCrashChance))
          this.#crash(this.prng.pick(up), "crash");
      });
    }
  }

  /** Leadership is moving to `to`: sometimes it is cut off at once, so the transfer aborts (or its TimeoutNow lands late). */
  transferStarted(to: NodeId): void {
    if (!this.#active || !this.prng.chance(this.options.transferCutChance)) return;
    const others = this.target.members.filter((m) => m !== to);
    const direction = this.prng.pick(["both", "outbound", "inbound"] as const);
    const links: [NodeId, NodeId][] = [];
    for (const other of others) {
      if (direction !== "inbound") links.push([to, other]);
      if (direction !== "outbound") links.push([other, to]);
    }
    const arrow = { both: "|", outbound: "-x->", inbound: "<-x-" }[direction];
    this.#addCut(
      direction === "both" ? "partition" : "asymmetric-partition",
      links,
      `transfer target [${to}] ${arrow} [${others.join(",")}]`,
    );
  }

  #scheduleNext(): void {
    const [lo, hi] = this.options.gapMs;
    this.#next = this.scheduler.after(this.prng.int(lo, hi), () => {
      if (!this.#active) return;
      this.#inject();
      this.#scheduleNext();
    });
  }

  #duration(): number {
    const [lo, hi] = this.options.durationMs;
    return this.prng.int(lo, hi);
  }

  #note(kind: FaultKind, detail: string): void {
    this.counts[kind]++;
    this.trace(kind, detail);
  }

  #inject(): void {
    // An established leader: one that had time to commit in its term and answer reads.
    const leaders = this.target.members.filter(
      (m) => this.target.leads(m) && this.scheduler.now - (this.#electedAt.get(m) ?? 0) >= ESTABLISHED_LEADER_MS,
    );
    // A leader of long standing: its heartbeat round counter is far ahead of a restarted one's.
    const longStanding = leaders.filter((m) => this.scheduler.now - (this.#electedAt.get(m) ?? 0) >= BOUNCE_LEADER_MS);
    if (longStanding.length > 0 && this.prng.chance(this.options.leaderBounceShare)) {
      this.#bounceLeader(this.prng.pick(longStanding));
      return;
    }
    if (leaders.length > 0 && this.prng.chance(this.options.leaderIsolationShare)) {
      // Both ways half the time: the others elect a new leader while this one still serves reads.
      this.#isolateLeader(this.prng.pick(leaders), this.prng.pick(["both", "both", "outbound", "inbound"] as const));
      return;
    }
    const kind = this.prng.pick(INJECTED_KINDS);
    const healthyLatency = { minDelayMs: HEALTHY_NETWORK.minDelayMs, maxDelayMs: HEALTHY_NETWORK.maxDelayMs };
    switch (kind) {
      case "drop":
        this.#knob("drop", { drop: this.prng.int(5, 40) / 100 }, { drop: 0 });
        break;
      case "duplicate":
        this.#knob("duplicate", { duplicate: this.prng.int(5, 30) / 100 }, { duplicate: 0 });
        break;
      case "reorder": {
        // Sometimes a long tail: messages that arrive after their sender or receiver restarted, or after a new term.
        const spread = this.prng.chance(0.3) ? this.prng.int(300, 1_200) : this.prng.int(20, 300);
        this.#knob("reorder", { minDelayMs: 1, maxDelayMs: spread }, healthyLatency);
        break;
      }
      case "delay": {
        const min = this.prng.int(30, 250);
        this.#knob("delay", { minDelayMs: min, maxDelayMs: min + this.prng.int(0, 20) }, healthyLatency);
        break;
      }
      case "partition":
        this.#partition();
        break;
      case "asymmetric-partition":
        this.#asymmetricPartition();
        break;
      case "heal":
        this.#cuts.clear();
        this.target.network.heal();
        this.#note("heal", "partitions");
        break;
      case "crash": {
        const up = this.target.members.filter((m) => this.target.isUp(m));
        if (up.length > 0) this.#crash(this.#victim(up), "crash");
        break;
      }
      case "slow-disk":
        this.#slowDisk(this.#victim(this.target.members));
        break;
      case "pause": {
        const running = this.target.members.filter((m) => this.target.isUp(m) && !this.#pauses.has(m));
        if (running.length > 0) this.#pause(this.#victim(running));
        break;
      }
    }
  }

  /** Changes network fault settings for a while; reorder and delay share the latency knob. */
  #knob(kind: "drop" | "duplicate" | "reorder" | "delay", set: Partial<NetworkFaults>, undo: Partial<NetworkFaults>) {
    const knob = kind === "reorder" || kind === "delay" ? "latency" : kind;
    const generation = ++this.#generation[knob];
    const duration = this.#duration();
    this.target.network.setFaults(set);
    this.#note(kind, `${JSON.stringify(set)} for ${duration}ms`);
    this.scheduler.after(duration, () => {
      if (this.#generation[knob] === generation) this.target.network.setFaults(undo);
    });
  }

  #addCut(kind: FaultKind, links: [NodeId, NodeId][], detail: string): void {
    const cut: Cut = { links };
    const duration = this.#duration();
    this.#cuts.add(cut);
    for (const [from, to] of links) this.target.network.block(from, to);
    this.#note(kind, `${detail} for ${duration}ms`);
    this.scheduler.after(duration, () => {
      if (!this.#cuts.delete(cut)) return;
      // The network heals all links at once: re-cut the links other partitions still hold.
      this.target.network.heal();
      for (const other of this.#cuts) for (const [from, to] of other.links) this.target.network.block(from, to);
    });
  }

  /**
   * Cuts the leader off together with fewer than half of the others: both ways, or only what
   * the leader's side sends (it hears the others, they elect another leader), or only what it
   * receives (its heartbeats still go out, no acknowledgement comes back).
   */
  #isolateLeader(leader: NodeId, direction: "both" | "outbound" | "inbound", largestMinority = false): void {
    const others = this.#shuffled().filter((m) => m !== leader);
    const minority = Math.floor((this.target.members.length - 1) / 2);
    const count = largestMinority ? minority - 1 : this.prng.int(0, minority - 1);
    const side = [leader, ...others.slice(0, count)];
    const rest = this.target.members.filter((m) => !side.includes(m));
    const links: [NodeId, NodeId][] = [];
    for (const a of side)
      for (const b of rest) {
        if (direction !== "inbound") links.push([a, b]);
        if (direction !== "outbound") links.push([b, a]);
      }
    const arrow = { both: "|", outbound: "-x->", inbound: "<-x-" }[direction];
    this.#addCut("leader-isolation", links, `[${side.join(",")}] ${arrow} [${rest.join(",")}]`);
  }

  /** Cuts every link into `member`, never undone: it goes on sending, and hears nobody. */
  #deafen(member: NodeId): void {
    const others = this.target.members.filter((m) => m !== member);
    for (const other of others) this.target.network.block(other, member);
    this.#note("deaf-leader", `[${others.join(",")}] -x-> ${member} for good`);
  }

  #shuffled(): NodeId[] {
    const members = [...this.target.members];
    for (let i = members.length - 1; i > 0; i--) {
      const j = this.prng.int(0, i);
      [members[i], members[j]] = [members[j] as NodeId, members[i] as NodeId];
    }
    return members;
  }

  #partition(): void {
    const members = this.#shuffled();
    const split = this.prng.int(1, members.length - 1);
    const left = members.slice(0, split);
    const right = members.slice(split);
    const links: [NodeId, NodeId][] = [];
    for (const a of left)
      for (const b of right) {
        links.push([a, b]);
        links.push([b, a]);
      }
    this.#addCut("partition", links, `[${left.join(",")}] | [${right.join(",")}]`);
  }

  /** One member's links to some others cut in one direction only: it hears but is not heard, or the reverse. */
  #asymmetricPartition(): void {
    const [member, ...others] = this.#shuffled() as [NodeId, ...NodeId[]];
    const cutOff = others.slice(0, this.prng.int(1, others.length));
    const outbound = this.prng.chance(0.5);
    const links = cutOff.map((other): [NodeId, NodeId] => (outbound ? [member, other] : [other, member]));
    const arrow = outbound ? `${member} -x-> [${cutOff.join(",")}]` : `[${cutOff.join(",")}] -x-> ${member}`;
    this.#addCut("asymmetric-partition", links, arrow);
  }

  /** Half the time the leader: crashing or slowing the leader is what exercises elections and recovery. */
  #victim(candidates: readonly NodeId[]): NodeId {
    const leaders = candidates.filter((m) => this.target.leads(m));
    return this.prng.pick(leaders.length > 0 && this.prng.chance(0.5) ? leaders : candidates);
  }

  #crash(member: NodeId, kind: "crash" | "leader-crash"): void {
    const [lo, hi] = this.options.downtimeMs;
    // Half the crashes are brief, so members come back while their old messages are still in flight.
    const downtime = this.prng.chance(0.5) ? this.prng.int(lo, Math.min(hi, lo + 100)) : this.prng.int(lo, hi);
    this.target.crash(member);
    this.#note(kind, `${member}, restart in ${downtime}ms`);
    this.#restarts.set(
      member,
      this.scheduler.after(downtime, () => {
        this.#restarts.delete(member);
        if (!this.target.isUp(member)) this.#restart(member);
      }),
    );
  }

  #bounceLeader(leader: NodeId): void {
    const generation = ++this.#generation.latency;
    this.target.network.setFaults({ minDelayMs: 200, maxDelayMs: 500 });
    const crashIn = this.prng.int(20, 60);
    const downtime = this.prng.int(0, 20);
    this.#bounced.set(leader, this.scheduler.now);
    this.#note(
      "leader-bounce",
      `${leader}: its messages delayed up to 500 ms for ${crashIn}ms, then a restart in ${downtime}ms`,
    );
    this.scheduler.after(crashIn, () => {
      if (this.#generation.latency === generation) {
        this.target.network.setFaults({
          minDelayMs: HEALTHY_NETWORK.minDelayMs,
          maxDelayMs: HEALTHY_NETWORK.maxDelayMs,
        });
      }
      if (!this.#active || !this.target.isUp(leader)) return;
      this.target.crash(leader);
      this.#restarts.set(
        leader,
        this.scheduler.after(downtime, () => {
          this.#restarts.delete(leader);
          if (!this.target.isUp(leader)) this.#restart(leader);
        }),
      );
    });
  }

  #restart(member: NodeId): void {
    this.#note("restart", member);
    this.target.restart(member);
  }

  #pause(member: NodeId): void {
    const [lo, hi] = this.options.pauseMs;
    // Half the pauses are brief: over before clients give up on the requests that queued meanwhile.
    const duration = this.prng.chance(0.5) ? this.prng.int(lo, Math.min(hi, lo + 150)) : this.prng.int(lo, hi);
    if (!this.target.pause(member)) return;
    const generation = ++this.#injected;
    this.#pauses.set(member, generation);
    this.#note("pause", `${member} for ${duration}ms`);
    this.scheduler.after(duration, () => {
      if (this.#pauses.get(member) !== generation) return;
      this.#pauses.delete(member);
      this.target.resume(member);
    });
  }

  #slowDisk(member: NodeId): void {
    const duration = this.#duration();
    const generation = ++this.#injected;
    this.#slowDisks.set(member, generation);
    this.target.setSlowDisk(member, true);
    this.#note("slow-disk", `${member} for ${duration}ms`);
    this.scheduler.after(duration, () => {
      if (this.#slowDisks.get(member) !== generation) return;
      this.#slowDisks.delete(member);
      this.target.setSlowDisk(member, false);
    });
  }
}
