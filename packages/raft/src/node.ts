import {
  asError,
  type ConsensusNode,
  EntryKind,
  ErrorCode,
  type Inbound,
  invariant,
  isQuorateError,
  type Logger,
  type NodeId,
  type OutboundMessage,
  PendingLimit,
  QuorateError,
  realTimers,
  rejectAll,
  type StateMachine,
  silentLogger,
  TakenRequests,
  Ticker,
  type Timers,
  type Transport,
  unpackEntries,
  validateMembers,
} from "@quorate/core";
import type { RaftStorage, StoredSnapshot } from "@quorate/storage";
import { Attr, activeContext, type Context, observeMember, untraced } from "@quorate/telemetry";
import { type Actor, createActor } from "xstate";
import { type ClusterConfig, decodeConfig, EMPTY_CONFIG, encodeConfig, type MembershipChange } from "./config.js";
import { RaftLog } from "./log.js";
import { type RaftMachine, raftMachine } from "./machine.js";
import { type RaftOptions, resolveRaftOptions } from "./options.js";
import { type ChangeOutcome, Outbox, type RaftObservation, type Role, type SnapshotInstall } from "./outbox.js";
import { isRaftMessageType, quorum, type RaftContext, type RaftMessage } from "./protocol.js";
import { SnapshotReceiver, SnapshotSender } from "./snapshots.js";
import { RaftTelemetry } from "./telemetry.js";

export const DEFAULT_SNAPSHOT_THRESHOLD = 8192;

export interface RaftNodeOptions {
  id: NodeId;
  /**
   * The voters a new cluster starts with, this node included. Once the log or a snapshot holds a
   * configuration (after the first membership change), that one is used and this is ignored.
   */
  members: readonly NodeId[];
  /**
   * Start as a member joining a running cluster: with no configuration, so it never campaigns,
   * until the leader adds it (`addMember`) and replicates the log to it. `members` is ignored.
   */
  join?: boolean;
  transport: Transport;
  storage: RaftStorage;
  stateMachine: StateMachine;
  raft?: Partial<RaftOptions>;
  /** Milliseconds per tick; election timeouts are electionTicks × tickMs. */
  tickMs?: number;
  /** A proposal not applied within this time fails as Indeterminate. */
  proposalTimeoutMs?: number;
  logger?: Logger;
  /** Seeds randomized election timeouts; defaults to the member id. */
  seed?: number | string;
  timers?: Timers;
  /** Receives protocol observations (role changes, votes, commits) for telemetry. */
  observe?: (observation: RaftObservation) => void;
  /** The protocol machine; tests substitute deliberately broken variants with `provide()`. */
  machine?: RaftMachine;
  /**
   * Entries applied since the last snapshot that trigger a new one; the log before it is then
   * compacted. Followers behind the compaction point receive the snapshot in chunks.
   */
  snapshotThreshold?: number;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeId | null;
  commitIndex: number;
  appliedIndex: number;
  lastLogIndex: number;
  /** The last index this member's durable snapshot covers (0 without one). */
  snapshotIndex: number;
  voters: readonly NodeId[];
  learners: readonly NodeId[];
}

/** The membership as one member sees it: the latest configuration in its log. */
export interface Membership extends ClusterConfig {
  /** Log index of the configuration entry; 0 for the bootstrap configuration. */
  readonly index: number;
  /** Whether this member knows the configuration to be committed. */
  readonly committed: boolean;
}

export interface AddMemberOptions {
  /** Stop once the member is a learner: it receives the log but never votes. */
  learner?: boolean;
  /** How long the new member may take to catch up before it is promoted. Default 5 minutes. */
  catchUpTimeoutMs?: number;
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (result: Uint8Array) => void;
  readonly reject: (err: Error) => void;
}

interface QueuedProposal {
  readonly command: Uint8Array;
  /** The caller's trace context: the parent (or a link) of the round that replicates it. */
  readonly context: Context;
  readonly resolve: (result: Uint8Array) => void;
  readonly reject: (err: Error) => void;
}

interface PendingChange {
  readonly resolve: (outcome: Extract<ChangeOutcome, { ok: true }>) => void;
  readonly reject: (err: Error) => void;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

const ROLE_OF_STATE: Record<string, Role> = {
  follower: "follower",
  preCandidate: "pre-candidate",
  candidate: "candidate",
  leader: "leader",
};

/**
 * Hosts the Raft machine: the Ready loop of etcd-raft. After every event it drains the
 * machine's outbox: leader appends go out at once, every other message waits until the
 * state it depends on is durable, the log is written in batches (one fsync for everything
 * that accumulated while the previous write was in flight), and committed entries are
 * applied in order.
 */
export class RaftNode implements ConsensusNode {
  readonly id: NodeId;
  readonly #actor: Actor<RaftMachine>;
  readonly #log: RaftLog;
  readonly #out: Outbox;
  readonly #options: Required<Pick<RaftNodeOptions, "tickMs" | "proposalTimeoutMs">> & RaftNodeOptions;
  readonly #timers: Timers;
  readonly #logger: Logger;
  #applied: number;
  readonly #ticker: Ticker;
  #stopped = false;
  #failure: Error | null = null;

  // Persistence: at most one write in flight; the next batch accumulates meanwhile.
  #writing: Promise<void> | null = null;
  #pendingFrom: number | null = null;
  #pendingHardState = false;
  #pendingMessages: OutboundMessage[] = [];

  // Snapshots: the latest durable one (sent to laggards), one being written, streaming both ways.
  #snapshot: StoredSnapshot | null;
  #storedSnapshotIndex: number;
  /** The last index storage holds once every write issued so far applies. */
  #storedLastIndex: number;
  /** The commit index of the last write issued: storage refuses to truncate at or below it. */
  #storedCommit: number;
  #pendingSnapshot: { snapshot: StoredSnapshot; discardLog: boolean } | null = null;
  #snapshotting = false;
  readonly #snapshotSender: SnapshotSender;
  readonly #snapshotReceiver = new SnapshotReceiver();
  #transferWaiters: { resolve(leader: NodeId): void; reject(err: Error): void }[] = [];
  readonly #changeRequests = new Map<number, PendingChange>();

  // Proposals and reads, batched per microtask into one machine event.
  #proposalQueue: QueuedProposal[] = [];
  #readQueue: Waiter[] = [];
  #flushScheduled = false;
  #nextBatchId = 1;
  readonly #proposalBatches = new Map<number, QueuedProposal[]>();
  readonly #readBatches = new Map<number, Waiter[]>();
  /** Appended proposals by log index, waiting to be applied. */
  readonly #pendingByIndex: TakenRequests<number, PendingProposal>;
  /** Reads confirmed by the leader, waiting for the state machine to reach their index. */
  #appliedWaiters: { index: number; waiters: Waiter[] }[] = [];
  readonly #telemetry: RaftTelemetry;
  readonly #admit = new PendingLimit("raft node", "requests", "none", Number.MAX_SAFE_INTEGER);
  #unobserve: () => void = () => {};

  private constructor(
    options: RaftNodeOptions,
    log: RaftLog,
    actor: Actor<RaftMachine>,
    out: Outbox,
    snapshot: StoredSnapshot | null,
    commitIndex: number,
  ) {
    this.id = options.id;
    this.#options = { tickMs: 50, proposalTimeoutMs: 10_000, ...options };
    this.#snapshot = snapshot;
    this.#storedSnapshotIndex = snapshot?.index ?? 0;
    this.#storedLastIndex = log.lastIndex;
    this.#storedCommit = commitIndex;
    this.#snapshotSender = new SnapshotSender(options.transport);
    this.#timers = options.timers ?? realTimers;
    this.#pendingByIndex = new TakenRequests(this.#timers, this.#options.proposalTimeoutMs, Number.MAX_SAFE_INTEGER);
    // Every deadline the machine keeps in ticks is at most two election timeouts (a lease under
    // one, a randomized election timeout under two, CheckQuorum's step-down within two): after a
    // longer pause, four election timeouts of ticks expire them all, and further ticks would
    // change nothing but the snapshot-stall count, which only decides when to resend.
    const maxCatchUpTicks = 4 * resolveRaftOptions(options.raft).electionTicks;
    // A tick caught up on while handling a message or a request runs outside that one's trace.
    this.#ticker = new Ticker(this.#timers, this.#options.tickMs, maxCatchUpTicks, () =>
      untraced(() => {
        this.#snapshotSender.tick();
        this.#event({ type: "tick" });
      }),
    );
    this.#logger = options.logger ?? silentLogger;
    this.#log = log;
    this.#actor = actor;
    this.#out = out;
    this.#applied = snapshot?.index ?? 0;
    this.#telemetry = new RaftTelemetry(
      options.id,
      options.transport.cluster,
      options.transport.group,
      () => quorum(this.#context()),
      () => performance.now(),
    );
  }

  /** Recovers durable state from storage, replays committed entries, and starts ticking. */
  static async start(options: RaftNodeOptions): Promise<RaftNode> {
    const raftOptions = resolveRaftOptions(options.raft);
    const state = await options.storage.load();
    const snapshot = state.snapshot;
    if (options.join !== true) validateMembers(options.members, options.id);
    const bootstrap: ClusterConfig = options.join === true ? EMPTY_CONFIG : { voters: options.members, learners: [] };
    const log = new RaftLog({
      snapshotIndex: snapshot?.index ?? 0,
      snapshotTerm: snapshot?.term ?? 0,
      snapshotConfig: snapshot === null ? bootstrap : decodeConfig(snapshot.config),
      entries: state.entries,
    });
    if (snapshot !== null) options.stateMachine.restore(snapshot.data);
    const out = new Outbox();
    const actor = createActor(options.machine ?? raftMachine, {
      input: {
        id: options.id,
        options: raftOptions,
        log,
        out,
        term: state.hardState.term,
        vote: state.hardState.vote,
        commitIndex: state.hardState.commit,
        seed: options.seed ?? options.id,
      },
    });
    const node = new RaftNode(options, log, actor, out, snapshot, state.hardState.commit);
    // A throwing action (an invariant) must stop this member loudly, not leave it deaf.
    actor.subscribe({ error: (err) => node.#fail(asError(err)) });
    actor.start();
    node.#drain();
    options.transport.listen((message) => node.#receive(message));
    node.#ticker.start();
    node.#unobserve = observeMember({ [Attr.cluster]: options.transport.cluster, [Attr.member]: options.id }, () => {
      const ctx = node.#context();
      return {
        term: ctx.term,
        applyLag: ctx.commitIndex - node.#applied,
        inflight: node.#pendingByIndex.size,
        dropped: options.transport.stats.dropped,
      };
    });
    return node;
  }

  leader(): NodeId | null {
    return this.#context().leader;
  }

  role(): Role {
    return ROLE_OF_STATE[String(this.#actor.getSnapshot().value)] ?? "follower";
  }

  status(): RaftStatus {
    const ctx = this.#context();
    return {
      id: this.id,
      role: this.role(),
      term: ctx.term,
      leader: ctx.leader,
      commitIndex: ctx.commitIndex,
      appliedIndex: this.#applied,
      lastLogIndex: this.#log.lastIndex,
      snapshotIndex: this.#storedSnapshotIndex,
      voters: this.#log.config.voters,
      learners: this.#log.config.learners,
    };
  }

  /** The latest configuration in this member's log. */
  membership(): Membership {
    const config = this.#log.config;
    return { ...config, committed: config.index <= this.#context().commitIndex };
  }

  /** The in-memory log, read-only, for status and invariant checks. */
  get log(): Pick<RaftLog, "lastIndex" | "term" | "entry" | "firstIndex" | "snapshotIndex" | "config" | "configAt"> {
    return this.#log;
  }

  get appliedIndex(): number {
    return this.#applied;
  }

  propose(command: Uint8Array): Promise<Uint8Array> {
    return this.#admit.admit(this.#closedError(), (resolve, reject) => {
      this.#proposalQueue.push({ command, context: activeContext(), resolve, reject });
      this.#scheduleFlush();
    });
  }

  readBarrier(): Promise<void> {
    return this.#admit.admit(this.#closedError(), (resolve, reject) => {
      this.#readQueue.push({ resolve, reject });
      this.#scheduleFlush();
    });
  }

  /**
   * Moves leadership to `to`, or to the most up-to-date follower (thesis §3.10). Resolves with
   * the new leader once this member has seen it take over.
   */
  transferLeadership(to?: NodeId): Promise<NodeId> {
    const closed = this.#closedError();
    if (closed !== null) return Promise.reject(closed);
    if (this.role() !== "leader") return Promise.reject(notLeader(this.id, this.leader()));
    const { voters } = this.#log.config;
    if (to !== undefined && !voters.includes(to)) {
      return Promise.reject(new QuorateError(ErrorCode.Config, `'${to}' is not a voter (${voters.join(",")})`));
    }
    return new Promise((resolve, reject) => {
      // Bounded: the machine aborts after an election timeout, but a member that stepped down
      // and has not yet heard the new leader would otherwise wait without end.
      const limit = 2 * resolveRaftOptions(this.#options.raft).electionTicks * this.#options.tickMs;
      const timer = this.#timers.setTimeout(() => {
        const i = this.#transferWaiters.indexOf(waiter);
        if (i >= 0) this.#transferWaiters.splice(i, 1);
        reject(new QuorateError(ErrorCode.Rejected, `leadership transfer did not complete within ${limit} ms`));
      }, limit);
      const waiter = {
        resolve: (leader: NodeId) => {
          this.#timers.clearTimeout(timer);
          resolve(leader);
        },
        reject: (err: Error) => {
          this.#timers.clearTimeout(timer);
          reject(err);
        },
      };
      this.#transferWaiters.push(waiter);
      this.#event({ type: "transfer", to: to ?? null });
    });
  }

  /**
   * Applies one membership change through the leader's log (thesis §4.1: one server at a time).
   * Resolves with the new configuration once it is committed. Fails with Membership for an
   * impossible change, ChangeInProgress while another change or a leadership transfer is under
   * way (retry), and NotLeader on a follower.
   */
  changeMembership(change: MembershipChange): Promise<Membership> {
    const closed = this.#closedError();
    if (closed !== null) return Promise.reject(closed);
    return new Promise<Extract<ChangeOutcome, { ok: true }>>((resolve, reject) => {
      const id = this.#nextBatchId++;
      this.#changeRequests.set(id, { resolve, reject });
      this.#event({ type: "reconfigure", id, change });
    }).then(
      (outcome) =>
        new Promise<Membership>((resolve, reject) => {
          this.#awaitApplied(
            outcome.index,
            {
              term: outcome.term,
              resolve: () => resolve({ ...outcome.config, index: outcome.index, committed: true }),
              reject,
            },
            `membership change at index ${outcome.index} was not committed in time; it may still commit`,
          );
        }),
    );
  }

  /**
   * Adds `member`: first as a learner, which receives the log (by snapshot if it is far behind)
   * without voting, then, once it has caught up, as a voter (thesis §4.2.1). With `learner` it
   * stays a learner. The member itself starts with `join`.
   */
  async addMember(member: NodeId, options: AddMemberOptions = {}): Promise<Membership> {
    const config = this.#log.config;
    let membership: Membership;
    if (config.learners.includes(member) && options.learner !== true) {
      membership = this.membership();
    } else {
      membership = await this.changeMembership({ type: "add-learner", member });
    }
    if (options.learner === true) return membership;
    return this.promoteMember(member, options.catchUpTimeoutMs);
  }

  /** Makes learner `member` a voter once it has caught up, retrying until `catchUpTimeoutMs`. */
  async promoteMember(member: NodeId, catchUpTimeoutMs = 300_000): Promise<Membership> {
    // Catching up and the previous change committing both take replication rounds: retry every two ticks.
    const retryMs = this.#options.tickMs * 2;
    for (let waited = 0; ; waited += retryMs) {
      try {
        return await this.changeMembership({ type: "promote", member });
      } catch (err) {
        if (!isQuorateError(err, ErrorCode.ChangeInProgress) || waited >= catchUpTimeoutMs) throw err;
      }
      await new Promise<void>((resolve) => this.#timers.setTimeout(resolve, retryMs));
    }
  }

  /** Removes voter or learner `member`. A leader removing itself steps down once that commits. */
  removeMember(member: NodeId): Promise<Membership> {
    return this.changeMembership({ type: "remove", member });
  }

  /**
   * Stops ticking and receiving, waits for the write in flight, fails what is pending. A leader
   * hands leadership to another member first, so the cluster does not wait out an election.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    if (this.role() === "leader" && this.#log.config.voters.length > 1) {
      await this.transferLeadership().catch((err: unknown) =>
        this.#logger.warn("leadership transfer before shutdown failed", { member: this.id, error: String(err) }),
      );
    }
    if (this.#stopped) return;
    this.#stopped = true;
    this.#ticker.stop();
    this.#options.transport.listen(() => {});
    await this.#writing;
    this.#actor.stop();
    this.#failAll(new QuorateError(ErrorCode.Closed, `raft node ${this.id} stopped`));
  }

  #closeTelemetry(): void {
    this.#unobserve();
    this.#telemetry.close();
  }

  /**
   * Halts at once, as a crash would: no waiting for the write in flight, whose outcome is
   * left to the storage. The simulator uses it to crash members.
   */
  kill(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#ticker.stop();
    this.#options.transport.listen(() => {});
    this.#actor.stop();
    this.#failAll(new QuorateError(ErrorCode.Closed, `raft node ${this.id} was killed`));
  }

  // -------------------------------------------------------------------------------------------

  #context(): RaftContext {
    return this.#actor.getSnapshot().context;
  }

  #closedError(): QuorateError | null {
    if (this.#failure !== null) {
      return new QuorateError(ErrorCode.Closed, `raft node ${this.id} failed: ${this.#failure.message}`, {
        cause: this.#failure,
      });
    }
    return this.#stopped ? new QuorateError(ErrorCode.Closed, `raft node ${this.id} stopped`) : null;
  }

  #receive(message: Inbound): void {
    // Time passed while the message waited (a paused process): the machine learns of it first.
    this.#ticker.catchUp();
    if (message.type === "raft.snapshot") {
      this.#receiveSnapshotChunk(message.sender, message.body as Inbound<"raft.snapshot">["body"]);
      return;
    }
    if (message.type === "raft.snapshot.resp") {
      this.#snapshotSender.onResponse(message.sender, message.body as Inbound<"raft.snapshot.resp">["body"]);
      return;
    }
    if (!isRaftMessageType(message.type)) return;
    if (message.type === "raft.append" && !configEntriesValid(message.body as Inbound<"raft.append">["body"])) {
      this.#logger.warn("dropped an AppendEntries with a malformed configuration entry", { from: message.sender });
      return;
    }
    this.#telemetry.received(message);
    this.#event({
      type: "message",
      from: message.sender,
      message: { type: message.type, body: message.body } as RaftMessage,
    });
  }

  #receiveSnapshotChunk(from: NodeId, chunk: Inbound<"raft.snapshot">["body"]): void {
    if (this.#stopped || chunk.term < this.#context().term) return;
    const { response, complete } = this.#snapshotReceiver.onChunk(from, chunk);
    this.#options.transport.send(from, "raft.snapshot.resp", response);
    if (complete !== null) this.#event({ type: "snapshot", from, ...complete });
  }

  #event(event: Parameters<Actor<RaftMachine>["send"]>[0]): void {
    if (this.#stopped) return;
    this.#actor.send(event);
    this.#drain();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      if (this.#stopped) return;
      this.#ticker.catchUp();
      if (this.#proposalQueue.length > 0) {
        const batch = this.#proposalQueue;
        this.#proposalQueue = [];
        const id = this.#nextBatchId++;
        this.#proposalBatches.set(id, batch);
        this.#event({ type: "propose", id, commands: batch.map((p) => p.command) });
      }
      if (this.#readQueue.length > 0) {
        const batch = this.#readQueue;
        this.#readQueue = [];
        const id = this.#nextBatchId++;
        this.#readBatches.set(id, batch);
        this.#event({ type: "read", id });
      }
    });
  }

  #drain(): void {
    const taken = this.#out.take();
    for (const observation of taken.observations) this.#observe(observation);
    for (const outcome of taken.proposals) this.#settleProposals(outcome);
    for (const outcome of taken.changes) this.#settleChange(outcome);
    for (const outcome of taken.reads) {
      const waiters = this.#readBatches.get(outcome.id) ?? [];
      this.#readBatches.delete(outcome.id);
      if (outcome.ok) this.#waitForApplied(outcome.index, waiters);
      else for (const w of waiters) w.reject(notLeader(this.id, outcome.leader));
    }
    if (taken.install !== null) this.#install(taken.install);
    for (const peer of taken.snapshotSends) {
      if (this.#snapshot !== null) this.#snapshotSender.start(peer, this.#snapshot, this.#context().term);
    }
    for (const message of taken.messages) {
      if (message.afterPersist) this.#pendingMessages.push(message);
      else this.#transmit(message);
    }
    if (taken.unstableFrom !== null) {
      this.#pendingFrom =
        this.#pendingFrom === null ? taken.unstableFrom : Math.min(this.#pendingFrom, taken.unstableFrom);
    }
    this.#pendingHardState ||= taken.hardStateChanged;
    if (this.#writing === null) this.#startWrite();
    this.#apply();
    const leader = this.#context().leader;
    if (this.#transferWaiters.length > 0 && leader !== null && leader !== this.id) {
      for (const w of this.#transferWaiters.splice(0)) w.resolve(leader);
    }
  }

  /** Starts the next durable write, or sends waiting messages at once when nothing needs writing. */
  #startWrite(): void {
    const messages = this.#pendingMessages;
    this.#pendingMessages = [];
    if (this.#pendingFrom === null && !this.#pendingHardState && this.#pendingSnapshot === null) {
      for (const m of messages) this.#transmit(m);
      return;
    }
    const snapshot = this.#pendingSnapshot;
    const lastIndex = this.#log.lastIndex;
    const lastTerm = this.#log.lastTerm;
    // Entries a snapshot covers are not written: storage drops them with the snapshot, and the
    // snapshot may cover entries that were not durable yet (applied as soon as committed).
    const floor = (snapshot?.snapshot.index ?? this.#log.snapshotIndex) + 1;
    const from = this.#pendingFrom === null ? null : Math.max(this.#pendingFrom, floor);
    // Storage truncates before it installs a snapshot, and only within what it holds. The
    // truncation starts where the log changed even below the snapshot: entries that a new
    // leader replaced may have committed (and been snapshotted) before this write started.
    let truncateFrom = this.#pendingFrom === null ? null : Math.min(this.#pendingFrom, this.#storedLastIndex + 1);
    // A snapshot that does not match our log replaces it: drop what storage holds past the
    // commit point (entries up to it match the leader's and the snapshot covers them anyway).
    if (snapshot?.discardLog) {
      truncateFrom = Math.min(this.#storedLastIndex + 1, Math.max(this.#storedCommit, this.#storedSnapshotIndex) + 1);
    }
    this.#pendingFrom = null;
    this.#pendingHardState = false;
    this.#pendingSnapshot = null;
    const ctx = this.#context();
    const entries =
      from === null || from > lastIndex
        ? []
        : this.#log
            .slice(from, lastIndex)
            .map((e, i) => ({ index: from + i, term: e.term, kind: e.kind, data: e.data }));
    // What storage will hold once this write applies (writes apply in order).
    let storedLast = truncateFrom === null ? this.#storedLastIndex : Math.min(this.#storedLastIndex, truncateFrom - 1);
    if (snapshot !== null) {
      this.#storedSnapshotIndex = snapshot.snapshot.index;
      storedLast = Math.max(storedLast, snapshot.snapshot.index);
    }
    this.#storedLastIndex = entries.at(-1)?.index ?? storedLast;
    this.#storedCommit = ctx.commitIndex;
    const durableTerm = ctx.term;
    const write = this.#options.storage.write({
      hardState: { term: ctx.term, vote: ctx.vote, commit: ctx.commitIndex },
      ...(truncateFrom === null ? {} : { truncateFrom, entries }),
      ...(snapshot === null ? {} : { snapshot: snapshot.snapshot }),
    });
    this.#writing = write.then(
      () => {
        this.#writing = null;
        if (this.#stopped) return;
        if (snapshot !== null) {
          this.#snapshot = snapshot.snapshot;
          this.#snapshotting = false;
          this.#actor.send({ type: "compacted", index: snapshot.snapshot.index });
        }
        // Durable now: the messages that depended on this state may leave.
        for (const m of messages) this.#transmit(m);
        this.#event({ type: "persisted", index: lastIndex, term: lastTerm, durableTerm });
      },
      (err: unknown) => {
        this.#writing = null;
        this.#fail(asError(err));
      },
    );
  }

  /** A snapshot from the leader replaces our state; it is written with the next write. */
  #install(install: SnapshotInstall): void {
    try {
      this.#options.stateMachine.restore(install.data);
    } catch (err) {
      this.#fail(asError(err));
      return;
    }
    this.#applied = install.index;
    this.#logger.info("installed a snapshot from the leader", {
      member: this.id,
      index: install.index,
      bytes: install.data.length,
      keptLog: !install.discardLog,
    });
    this.#pendingSnapshot = {
      snapshot: { index: install.index, term: install.term, config: encodeConfig(install.config), data: install.data },
      discardLog: install.discardLog,
    };
  }

  /** Takes a snapshot of the state machine once enough entries were applied since the last. */
  #maybeSnapshot(): void {
    const threshold = this.#options.snapshotThreshold ?? DEFAULT_SNAPSHOT_THRESHOLD;
    if (this.#snapshotting || this.#pendingSnapshot !== null || this.#applied - this.#storedSnapshotIndex < threshold)
      return;
    const index = this.#applied;
    const term = this.#log.term(index);
    if (term === undefined) return;
    this.#snapshotting = true;
    this.#pendingSnapshot = {
      snapshot: {
        index,
        term,
        config: encodeConfig(this.#log.configAt(index)),
        data: this.#options.stateMachine.snapshot(),
      },
      discardLog: false,
    };
    if (this.#writing === null) this.#startWrite();
  }

  #transmit(message: OutboundMessage): void {
    const transport = this.#options.transport;
    const headers = this.#telemetry.headersFor(message);
    if (message.to === null) transport.broadcast(message.type, message.body, headers);
    else transport.send(message.to, message.type, message.body, headers);
  }

  #apply(): void {
    const commit = this.#context().commitIndex;
    while (this.#applied < commit) {
      const index = this.#applied + 1;
      const entry = this.#log.entry(index);
      if (entry === undefined) {
        this.#fail(new QuorateError(ErrorCode.Invariant, `committed entry ${index} is missing from the log`));
        return;
      }
      // A configuration entry's result is the configuration: what a waiting change resolves with.
      let result: Uint8Array | null = entry.kind === EntryKind.Config ? entry.data : null;
      if (entry.kind === EntryKind.Command) {
        try {
          result = this.#options.stateMachine.apply(entry.data, index);
        } catch (err) {
          // Replicas must not diverge: a state machine that throws stops this node.
          this.#fail(asError(err));
          return;
        }
      }
      this.#applied = index;
      const pending = this.#pendingByIndex.take(index);
      if (pending !== undefined) {
        if (pending.term === entry.term && result !== null) pending.resolve(result);
        // Another leader's entry took this index: ours can never commit; a retry is safe.
        else pending.reject(notLeader(this.id, this.#context().leader));
      }
    }
    this.#telemetry.applied(this.#applied, (i) => this.#log.term(i));
    this.#maybeSnapshot();
    if (this.#appliedWaiters.length > 0) {
      const ready = this.#appliedWaiters.filter((w) => w.index <= this.#applied);
      this.#appliedWaiters = this.#appliedWaiters.filter((w) => w.index > this.#applied);
      for (const r of ready) for (const w of r.waiters) w.resolve();
    }
  }

  #waitForApplied(index: number, waiters: Waiter[]): void {
    if (index <= this.#applied) {
      for (const w of waiters) w.resolve();
      return;
    }
    this.#appliedWaiters.push({ index, waiters });
  }

  #settleProposals(outcome: Outbox["proposals"][number]): void {
    const batch = this.#proposalBatches.get(outcome.id) ?? [];
    this.#proposalBatches.delete(outcome.id);
    if (!outcome.ok) {
      const err =
        outcome.reason === "busy"
          ? new QuorateError(ErrorCode.Busy, "too many uncommitted proposals; retry later")
          : notLeader(this.id, outcome.leader);
      for (const p of batch) p.reject(err);
      return;
    }
    this.#telemetry.proposed(
      outcome.firstIndex,
      outcome.term,
      batch.map((p) => p.context),
    );
    batch.forEach((p, i) => {
      const index = outcome.firstIndex + i;
      this.#awaitApplied(
        index,
        { term: outcome.term, resolve: p.resolve, reject: p.reject },
        `proposal at index ${index} was not applied in time; it may still commit`,
      );
    });
  }

  /**
   * Waits for the entry appended at `index` in `pending.term` to be applied. A waiter still at
   * that index is for an entry of an earlier term that was replaced there: it can never commit
   * (a leader of a later term holds another entry at its index), so its caller may safely retry.
   */
  #awaitApplied(index: number, pending: PendingProposal, timeoutMessage: string): void {
    const replaced = this.#pendingByIndex.take(index);
    if (replaced !== undefined) {
      invariant(
        replaced.term < pending.term,
        `index ${index} appended in term ${pending.term} is awaited from term ${replaced.term}`,
      );
      replaced.reject(notLeader(this.id, this.#context().leader));
    }
    this.#pendingByIndex.add(index, pending, timeoutMessage);
  }

  #settleChange(outcome: ChangeOutcome): void {
    const request = this.#changeRequests.get(outcome.id);
    if (request === undefined) return;
    this.#changeRequests.delete(outcome.id);
    if (outcome.ok) {
      request.resolve(outcome);
      return;
    }
    const code =
      outcome.reason === "invalid"
        ? ErrorCode.Membership
        : outcome.reason === "not-leader"
          ? ErrorCode.NotLeader
          : ErrorCode.ChangeInProgress;
    request.reject(new QuorateError(code, outcome.message, { leader: outcome.leader }));
  }

  #observe(observation: RaftObservation): void {
    if (observation.kind === "role" || observation.kind === "step-down" || observation.kind === "transfer") {
      this.#logger.info(`raft ${observation.kind}`, { member: this.id, ...observation });
    }
    if (observation.kind === "refused") {
      this.#logger.warn("raft refused a message no correct member sends", { member: this.id, ...observation });
    }
    if (observation.kind === "role" && observation.role !== "leader") this.#snapshotSender.clear();
    if (this.#transferWaiters.length > 0) {
      if (observation.kind === "transfer" && observation.status !== "started") {
        const err = new QuorateError(ErrorCode.Rejected, `leadership transfer ${observation.status}`);
        for (const w of this.#transferWaiters.splice(0)) w.reject(err);
      }
    }
    this.#telemetry.observe(observation);
    this.#options.observe?.(observation);
  }

  #fail(err: Error): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.#logger.error("raft node failed; stopping", { member: this.id, error: err.message });
    this.#stopped = true;
    this.#ticker.stop();
    this.#actor.stop();
    this.#failAll(new QuorateError(ErrorCode.Closed, `raft node ${this.id} failed: ${err.message}`, { cause: err }));
  }

  #failAll(err: Error): void {
    this.#closeTelemetry();
    rejectAll(this.#transferWaiters.splice(0), err);
    rejectAll([...this.#changeRequests.values()], err);
    this.#changeRequests.clear();
    // Already appended: the outcome is unknown, the entry may still commit elsewhere.
    this.#pendingByIndex.failAll(err);
    for (const batch of this.#proposalBatches.values()) rejectAll(batch, err);
    this.#proposalBatches.clear();
    rejectAll(this.#proposalQueue, err);
    this.#proposalQueue = [];
    for (const batch of this.#readBatches.values()) rejectAll(batch, err);
    this.#readBatches.clear();
    rejectAll(this.#readQueue, err);
    this.#readQueue = [];
    for (const r of this.#appliedWaiters) rejectAll(r.waiters, err);
    this.#appliedWaiters = [];
  }

  /** Why the node stopped on its own, if it did. */
  get failure(): Error | null {
    return this.#failure;
  }
}

/** The codec validated the frame's shape; a configuration entry's payload is checked here, before the log decodes it. */
function configEntriesValid(body: Inbound<"raft.append">["body"]): boolean {
  if (!body.entries.kinds.includes(EntryKind.Config)) return true;
  try {
    for (const entry of unpackEntries(body.entries)) if (entry.kind === EntryKind.Config) decodeConfig(entry.data);
    return true;
  } catch {
    return false;
  }
}

function notLeader(self: NodeId, leader: NodeId | null): QuorateError {
  return new QuorateError(
    ErrorCode.NotLeader,
    leader === null ? `${self} is not the leader and knows no leader` : `${self} is not the leader; ${leader} is`,
    { leader },
  );
}
