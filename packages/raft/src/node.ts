import {
  type ConsensusNode,
  type Inbound,
  type Logger,
  type NodeId,
  type QuorateError,
  type ReceivedFrame,
  realTimers,
  silentLogger,
  type Timers,
  validateMembers,
} from "@quorate/core";
import { asError, HostLifecycle, markTimeline, Ticker } from "@quorate/core/internal";
import type { StoredSnapshot } from "@quorate/storage";
import { untraced } from "@quorate/telemetry";
import { type Actor, createActor } from "xstate";
import { RaftApplier } from "./applier.js";
import { type ClusterConfig, configEntriesValid, decodeConfig, EMPTY_CONFIG, type MembershipChange } from "./config.js";
import { RaftLog } from "./log.js";
import { type RaftEvent, type RaftMachine, raftMachine } from "./machine.js";
import { RaftMembership } from "./membership.js";
import {
  type AddMemberOptions,
  DEFAULT_MAX_PENDING_PROPOSALS,
  DEFAULT_MAX_PENDING_READS,
  DEFAULT_SNAPSHOT_THRESHOLD,
  type Membership,
  type RaftNodeOptions,
  type RaftStatus,
} from "./node-options.js";
import { resolveRaftOptions } from "./options.js";
import { Outbox, type RaftObservation, type Role, roleOfState } from "./outbox.js";
import { isRaftMessageType, type RaftContext, type RaftMessage } from "./protocol.js";
import { RaftRequests } from "./requests.js";
import { SnapshotReceiver, SnapshotSender } from "./snapshots.js";
import { RaftTelemetry } from "./telemetry.js";
import { RaftWrites } from "./writes.js";

/**
 * Hosts the Raft machine: the Ready loop of etcd-raft. After every event it drains the
 * machine's outbox into the parts it is built from: the durable writes (leader appends go out
 * at once, every other message waits until the state it depends on is durable, one write in
 * flight), the applier (committed entries in order, snapshots), the client requests waiting
 * for them, and the membership API.
 */
export class RaftNode implements ConsensusNode {
  readonly id: NodeId;
  readonly #actor: Actor<RaftMachine>;
  readonly #log: RaftLog;
  readonly #out: Outbox;
  readonly #options: RaftNodeOptions;
  readonly #logger: Logger;
  readonly #ticker: Ticker;
  readonly #lifecycle: HostLifecycle;
  readonly #writes: RaftWrites;
  readonly #applier: RaftApplier;
  readonly #requests: RaftRequests;
  readonly #membership: RaftMembership;
  readonly #snapshotSender: SnapshotSender;
  readonly #snapshotReceiver = new SnapshotReceiver();
  readonly #telemetry: RaftTelemetry;
  /** Ids of the batches and changes handed to the machine, which answers under them. */
  #nextRequestId = 1;

  private constructor(
    options: RaftNodeOptions,
    log: RaftLog,
    actor: Actor<RaftMachine>,
    out: Outbox,
    snapshot: StoredSnapshot | null,
    commitIndex: number,
  ) {
    this.id = options.id;
    this.#options = options;
    this.#log = log;
    this.#actor = actor;
    this.#out = out;
    this.#logger = options.logger ?? silentLogger;
    const timers: Timers = options.timers ?? realTimers;
    const tickMs = options.tickMs ?? 50;
    const { electionTicks } = resolveRaftOptions(options.raft);
    this.#lifecycle = new HostLifecycle("raft node", options.id, this.#logger, (reason) => this.#halt(reason));
    this.#snapshotSender = new SnapshotSender(options.transport);
    // Every deadline the machine keeps in ticks is at most two election timeouts (a lease under
    // one, a randomized election timeout under two, CheckQuorum's step-down within two): after a
    // longer pause, four election timeouts of ticks expire them all, and further ticks would
    // change nothing but the snapshot-stall count, which only decides when to resend.
    // A tick caught up on while handling a message or a request runs outside that one's trace.
    this.#ticker = new Ticker(timers, tickMs, 4 * electionTicks, () =>
      untraced(() => {
        this.#snapshotSender.tick();
        this.#event({ type: "tick" });
      }),
    );
    this.#telemetry = new RaftTelemetry(options.transport, {
      context: () => this.#context(),
      applied: () => this.#applier.applied,
      inflight: () => this.#requests.inflight,
    });
    const nextId = () => this.#nextRequestId++;
    this.#requests = new RaftRequests({
      id: options.id,
      timers,
      proposalTimeoutMs: options.proposalTimeoutMs ?? 10_000,
      maxPendingProposals: options.maxPendingProposals ?? DEFAULT_MAX_PENDING_PROPOSALS,
      maxPendingReads: options.maxPendingReads ?? DEFAULT_MAX_PENDING_READS,
      telemetry: this.#telemetry,
      lifecycle: this.#lifecycle,
      leader: () => this.leader(),
      nextId,
      catchUp: () => this.#ticker.catchUp(),
      event: (event) => this.#event(event),
    });
    this.#membership = new RaftMembership({
      ...{ id: options.id, timers, tickMs, electionTicks, nextId },
      node: this,
      requests: this.#requests,
      event: (event) => this.#event(event),
    });
    this.#writes = new RaftWrites({
      storage: options.storage,
      transport: options.transport,
      log,
      context: () => this.#context(),
      snapshot,
      commitIndex,
      sending: (message) => this.#telemetry.headersFor(message),
      persisted: ({ index, term, durableTerm, snapshotIndex }) => {
        if (snapshotIndex !== null) this.#actor.send({ type: "compacted", index: snapshotIndex });
        this.#event({ type: "persisted", index, term, durableTerm });
      },
      failed: (err) => this.#lifecycle.fail(err),
    });
    this.#applier = new RaftApplier({
      id: options.id,
      log,
      stateMachine: options.stateMachine,
      applied: snapshot?.index ?? 0,
      snapshotThreshold: options.snapshotThreshold ?? DEFAULT_SNAPSHOT_THRESHOLD,
      commitIndex: () => this.#context().commitIndex,
      requests: this.#requests,
      writes: this.#writes,
      telemetry: this.#telemetry,
      logger: this.#logger,
      fail: (err) => this.#lifecycle.fail(err),
    });
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
    actor.subscribe({ error: (err) => node.#lifecycle.fail(asError(err)) });
    actor.start();
    node.#drain();
    options.transport.listen((message, frame) => node.#receive(message, frame));
    node.#ticker.start();
    return node;
  }

  leader(): NodeId | null {
    return this.#context().leader;
  }

  role(): Role {
    return roleOfState(this.#actor.getSnapshot().value);
  }

  status(): RaftStatus {
    const ctx = this.#context();
    return {
      id: this.id,
      role: this.role(),
      term: ctx.term,
      leader: ctx.leader,
      commitIndex: ctx.commitIndex,
      appliedIndex: this.#applier.applied,
      lastLogIndex: this.#log.lastIndex,
      snapshotIndex: this.#writes.snapshotIndex,
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
    return this.#applier.applied;
  }

  /** Fails with Busy, at once, while `maxPendingProposals` proposals are pending here. */
  propose(command: Uint8Array): Promise<Uint8Array> {
    return this.#requests.propose(command);
  }

  /** Fails with Busy, at once, while `maxPendingReads` read barriers are pending here. */
  readBarrier(): Promise<void> {
    return this.#requests.readBarrier();
  }

  /**
   * A consistent copy of the replicated state, for a backup: after a read barrier on the leader,
   * so it holds every write acknowledged before the call, the state machine's snapshot at the
   * applied index with that index's term and the configuration in force there. Fails with
   * NotLeader on a follower.
   */
  async backupSnapshot(): Promise<StoredSnapshot> {
    await this.readBarrier();
    const closed = this.#lifecycle.closedError();
    if (closed !== null) throw closed;
    return this.#applier.snapshotAtApplied();
  }

  /**
   * Moves leadership to `to`, or to the most up-to-date follower (thesis §3.10). Resolves with
   * the new leader once this member has seen it take over.
   */
  transferLeadership(to?: NodeId): Promise<NodeId> {
    return this.#membership.transferLeadership(to);
  }

  /**
   * Applies one membership change through the leader's log (thesis §4.1: one server at a time).
   * Resolves with the new configuration once it is committed. Fails with Membership for an
   * impossible change, ChangeInProgress while another change or a leadership transfer is under
   * way (retry), and NotLeader on a follower.
   */
  changeMembership(change: MembershipChange): Promise<Membership> {
    return this.#membership.changeMembership(change);
  }

  /**
   * Adds `member`: first as a learner, which receives the log (by snapshot if it is far behind)
   * without voting, then, once it has caught up, as a voter (thesis §4.2.1). With `learner` it
   * stays a learner. The member itself starts with `join`.
   */
  addMember(member: NodeId, options: AddMemberOptions = {}): Promise<Membership> {
    return this.#membership.addMember(member, options.learner === true, options.catchUpTimeoutMs);
  }

  /** Makes learner `member` a voter once it has caught up, retrying until `catchUpTimeoutMs`. */
  promoteMember(member: NodeId, catchUpTimeoutMs?: number): Promise<Membership> {
    return this.#membership.promoteMember(member, catchUpTimeoutMs);
  }

  /** Removes voter or learner `member`. A leader removing itself steps down once that commits. */
  removeMember(member: NodeId): Promise<Membership> {
    return this.#membership.changeMembership({ type: "remove", member });
  }

  /**
   * Stops ticking and receiving, fails what is pending, and waits for the write in flight. A
   * leader hands leadership to another member first, so the cluster does not wait out an election.
   */
  async stop(): Promise<void> {
    if (this.#lifecycle.stopped) return;
    if (this.role() === "leader" && this.#log.config.voters.length > 1) {
      await this.transferLeadership().catch((err: unknown) =>
        this.#logger.warn("leadership transfer before shutdown failed", { member: this.id, error: String(err) }),
      );
    }
    if (!this.#lifecycle.stop("stopped")) return;
    await this.#writes.settled();
  }

  /**
   * Halts at once, as a crash would: no waiting for the write in flight, whose outcome is
   * left to the storage. The simulator uses it to crash members.
   */
  kill(): void {
    this.#lifecycle.stop("was killed");
  }

  /** Why the node stopped on its own, if it did. */
  get failure(): Error | null {
    return this.#lifecycle.failure;
  }

  #context(): RaftContext {
    return this.#actor.getSnapshot().context;
  }

  #receive(message: Inbound, frame: ReceivedFrame | undefined): void {
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
    this.#telemetry.received(message, frame);
    this.#event({
      type: "message",
      from: message.sender,
      message: { type: message.type, body: message.body } as RaftMessage,
    });
  }

  #receiveSnapshotChunk(from: NodeId, chunk: Inbound<"raft.snapshot">["body"]): void {
    if (this.#lifecycle.stopped || chunk.term < this.#context().term) return;
    const { response, complete } = this.#snapshotReceiver.onChunk(from, chunk);
    this.#options.transport.send(from, "raft.snapshot.resp", response);
    if (complete !== null) this.#event({ type: "snapshot", from, ...complete });
  }

  #event(event: RaftEvent): void {
    this.#lifecycle.step(
      () => this.#actor.send(event),
      () => this.#drain(),
    );
  }

  /** Hands what the machine asked for to the parts that do it: etcd-raft's Ready, processed. */
  #drain(): void {
    const taken = this.#out.take();
    for (const observation of taken.observations) this.#observe(observation);
    for (const outcome of taken.proposals) this.#requests.proposalsAnswered(outcome);
    for (const outcome of taken.changes) this.#membership.changeAnswered(outcome);
    for (const outcome of taken.reads) this.#requests.readsAnswered(outcome, this.#applier.applied);
    if (taken.install !== null) this.#applier.install(taken.install);
    this.#snapshotSender.startAll(taken.snapshotSends, this.#writes.snapshot, this.#context().term);
    this.#writes.add(taken);
    this.#writes.flush();
    const appliedBefore = this.#applier.applied;
    this.#applier.apply();
    if (this.#applier.applied !== appliedBefore) markTimeline(this.id, "apply", this.#applier.applied);
    this.#membership.leaderSeen(this.#context().leader);
  }

  #observe(observation: RaftObservation): void {
    if (observation.kind === "role" || observation.kind === "step-down" || observation.kind === "transfer") {
      this.#logger.info(`raft ${observation.kind}`, { member: this.id, ...observation });
    }
    if (observation.kind === "refused") {
      this.#logger.warn("raft refused a message no correct member sends", { member: this.id, ...observation });
    }
    if (observation.kind === "role" && observation.role !== "leader") this.#snapshotSender.clear();
    if (observation.kind === "commit") markTimeline(this.id, "commit", observation.index);
    this.#membership.observe(observation);
    this.#telemetry.observe(observation);
    this.#options.observe?.(observation);
  }

  /** Stops ticking, receiving, writing and the machine, and fails every caller still waiting. */
  #halt(reason: QuorateError): void {
    this.#ticker.stop();
    this.#options.transport.listen(() => {});
    this.#writes.close();
    this.#actor.stop();
    this.#telemetry.close();
    this.#membership.failAll(reason);
    this.#requests.failAll(reason);
  }
}
