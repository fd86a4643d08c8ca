import type { NodeId } from "@quorate/core";
import { type Actor, createActor } from "xstate";
import { EMPTY_CONFIG } from "../src/config.js";
import {
  type LogEntry,
  type MembershipChange,
  Outbox,
  RaftLog,
  type RaftOptions,
  raftMachine,
  resolveRaftOptions,
} from "../src/internal.js";
import type { ChangeOutcome, ProposalOutcome, RaftObservation, ReadOutcome, SnapshotInstall } from "../src/outbox.js";
import type { RaftMessage } from "../src/protocol.js";

export interface Envelope {
  from: NodeId;
  to: NodeId;
  message: RaftMessage;
  afterPersist: boolean;
  /** Sent as one broadcast to the whole group, rather than to this member alone. */
  broadcast: boolean;
}

interface Member {
  actor: Actor<typeof raftMachine>;
  log: RaftLog;
  out: Outbox;
}

/**
 * A synchronous, hand-cranked cluster for rule-level tests, in the style of etcd's
 * raft_paper_test: the test decides which messages are delivered and when nodes tick.
 * Storage is instantaneous: every drain persists at once.
 */
export class Driver {
  readonly members = new Map<NodeId, Member>();
  queue: Envelope[] = [];
  readonly proposals: ProposalOutcome[] = [];
  readonly reads: ReadOutcome[] = [];
  readonly changes: ChangeOutcome[] = [];
  readonly snapshotSends: { from: NodeId; to: NodeId }[] = [];
  readonly installs: { at: NodeId; install: SnapshotInstall }[] = [];
  readonly observations: { at: NodeId; observation: RaftObservation }[] = [];
  /** Messages exactly as drained, with the persistence flags of their batch, for ordering tests. */
  readonly batches: { from: NodeId; hardStateChanged: boolean; unstableFrom: number | null; messages: Envelope[] }[] =
    [];
  readonly options: RaftOptions;

  /**
   * Every member in `ids` hears broadcasts; those in `voters` (all by default) start with them as
   * the configuration, the others start empty, as members joining with `join` do.
   */
  constructor(
    readonly ids: NodeId[],
    options: Partial<RaftOptions> = {},
    logs: Partial<Record<NodeId, { term: number; entries: LogEntry[] }>> = {},
    voters: NodeId[] = ids,
  ) {
    this.options = resolveRaftOptions(options);
    for (const id of ids) {
      const init = logs[id];
      const log = new RaftLog({
        snapshotIndex: 0,
        snapshotTerm: 0,
        snapshotConfig: voters.includes(id) ? { voters, learners: [] } : EMPTY_CONFIG,
        entries: init?.entries ?? [],
      });
      this.#boot(id, log, init?.term ?? 0, null, 0);
    }
  }

  #boot(id: NodeId, log: RaftLog, term: number, vote: NodeId | null, commitIndex: number): void {
    const out = new Outbox();
    const actor = createActor(raftMachine, {
      input: { id, options: this.options, log, out, term, vote, commitIndex, seed: id },
    });
    this.members.set(id, { actor, log, out });
    actor.start();
    this.drain(id);
  }

  /**
   * Crashes `id` and starts it again from what it made durable: storage here is instantaneous,
   * so that is its whole log, term, vote and commit index. Everything in memory is gone (the
   * leader's heartbeat round counter, progress, pending reads); messages in flight stay queued.
   */
  restart(id: NodeId): void {
    const { log, actor } = this.member(id);
    const { term, vote, commitIndex } = actor.getSnapshot().context;
    actor.stop();
    this.#boot(id, log, term, vote, commitIndex);
  }

  member(id: NodeId): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  state(id: NodeId) {
    return this.member(id).actor.getSnapshot();
  }

  role(id: NodeId): string {
    return String(this.state(id).value);
  }

  send(id: NodeId, event: Parameters<Member["actor"]["send"]>[0]): void {
    this.member(id).actor.send(event);
    this.drain(id);
  }

  drain(id: NodeId): void {
    const m = this.member(id);
    const taken = m.out.take();
    const envelopes: Envelope[] = [];
    for (const msg of taken.messages) {
      const targets = msg.to === null ? this.ids.filter((x) => x !== id) : [msg.to];
      for (const to of targets) {
        envelopes.push({
          from: id,
          to,
          message: { type: msg.type, body: msg.body } as RaftMessage,
          afterPersist: msg.afterPersist,
          broadcast: msg.to === null,
        });
      }
    }
    this.batches.push({
      from: id,
      hardStateChanged: taken.hardStateChanged,
      unstableFrom: taken.unstableFrom,
      messages: envelopes,
    });
    this.queue.push(...envelopes);
    this.proposals.push(...taken.proposals);
    this.reads.push(...taken.reads);
    this.changes.push(...taken.changes);
    for (const to of taken.snapshotSends) this.snapshotSends.push({ from: id, to });
    if (taken.install !== null) this.installs.push({ at: id, install: taken.install });
    for (const observation of taken.observations) this.observations.push({ at: id, observation });
    if (taken.unstableFrom !== null || taken.hardStateChanged) {
      const durableTerm = m.actor.getSnapshot().context.term;
      m.actor.send({ type: "persisted", index: m.log.lastIndex, term: m.log.lastTerm, durableTerm });
      this.drain(id);
    }
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.send(id, { type: "tick" });
  }

  /** Ticks `id` until its role changes away from follower (or a limit is hit). */
  campaign(id: NodeId): void {
    for (let i = 0; i < 4 * this.options.electionTicks && this.role(id) === "follower"; i++) this.tick(id);
  }

  /** Delivers queued messages (optionally filtered) until none are left. */
  stabilize(filter: (e: Envelope) => boolean = () => true, limit = 10_000): void {
    for (let i = 0; i < limit; i++) {
      const index = this.queue.findIndex(filter);
      if (index < 0) return;
      const [env] = this.queue.splice(index, 1) as [Envelope];
      this.send(env.to, { type: "message", from: env.from, message: env.message });
    }
    throw new Error("cluster did not stabilize");
  }

  /** Ticks `id` `times` times, delivering everything after each tick but what goes to `unreachable`. */
  tickWithout(id: NodeId, unreachable: NodeId, times: number): void {
    for (let i = 0; i < times; i++) {
      this.tick(id);
      this.drop((e) => e.to === unreachable);
      this.stabilize();
    }
  }

  /** Drops queued messages matching `filter`. */
  drop(filter: (e: Envelope) => boolean): void {
    this.queue = this.queue.filter((e) => !filter(e));
  }

  elect(id: NodeId): void {
    this.campaign(id);
    this.stabilize();
    if (this.role(id) !== "leader") throw new Error(`${id} did not become leader (${this.role(id)})`);
  }

  propose(id: NodeId, ...commands: string[]): void {
    this.send(id, {
      type: "propose",
      id: this.proposals.length + 1,
      commands: commands.map((c) => new TextEncoder().encode(c)),
    });
  }

  reconfigure(id: NodeId, change: MembershipChange): ChangeOutcome | undefined {
    const request = this.changes.length + 1000;
    this.send(id, { type: "reconfigure", id: request, change });
    return this.changes.find((c) => c.id === request);
  }

  ctx(id: NodeId) {
    return this.state(id).context;
  }
}
