import type {
  CompletionDetails,
  HistoryRecorder,
  OperationInput,
  OperationKind,
  TxnCompare,
  TxnWrite,
} from "@quorate/checker";
import { type ConsensusNode, ErrorCode, isQuorateError, type NodeId, SessionErrorCode } from "@quorate/core";
import type { Prng } from "@quorate/core/internal";
import {
  decodeKvResult,
  encodeKvCommand,
  type KvCommand,
  type KvCompare,
  type KvLeaseCommand,
  type KvResult,
  type KvRevisionCommand,
  type KvStateMachine,
  type KvTxnOp,
  type KvTxnResult,
  type KvValue,
} from "@quorate/kv";
import { decodeOpenedClient, decodeSessionResult, encodeOpenSession, encodeSessionCommand } from "@quorate/service";
import { errorMessage } from "./protocol.js";
import type { Scheduler } from "./scheduler.js";

/** A running member as clients reach it: its consensus node and the KV store it applies to. */
export interface MemberHandle {
  readonly node: ConsensusNode;
  readonly store: KvStateMachine;
  /** Resolves once the member's process runs: at once, or when its pause ends. */
  readonly whenRunning: () => Promise<void>;
}

export interface ClusterAccess {
  readonly members: readonly NodeId[];
  /** The running incarnation of a member, or null while it is crashed. */
  member(id: NodeId): MemberHandle | null;
}

export interface WorkloadOptions {
  /**
   * The keys clients use. A key's group is its prefix up to its first "/" (a key without one is a
   * group alone): ranges read one group's prefix and transactions touch one group's keys, so the
   * linearizability check ties together only the keys of one group (see @quorate/checker).
   */
  readonly keys: readonly string[];
  /** How long one operation may take, retries included; then a write is recorded as unknown (`:info`). */
  readonly opTimeoutMs: number;
  /** How long one attempt waits for the member before retrying the same (client, seq). */
  readonly requestTimeoutMs: number;
  /** Pause between a client's operations, drawn from [0, maxThinkMs]. */
  readonly maxThinkMs: number;
  /** Share of a client's operations that are reads, one drawn per client: some clients mostly read. */
  readonly readShares: readonly number[];
  /**
   * Chance that a client retries a member that timed out rather than move on: clients keep
   * sending to the member they believe leads, so reads reach a leader that was cut off.
   */
  readonly stayOnTimeoutChance: number;
  /**
   * Share of operations that are the revision-aware ones: reads become `entry` reads; writes
   * become create, update (with the revision last seen) or compare-and-delete.
   */
  readonly revisionShare: number;
  /** Share of reads that are ranges (`keys` or `list`, with a limit and sometimes a fromKey) over the key's group. */
  readonly rangeShare: number;
  /** Share of writes that are transactions: compares, then puts and deletes, on the key's group. */
  readonly txnShare: number;
  /**
   * Share of operations that are about leases, on `leaseKeys`: a client holding no lease grants
   * one; one holding a lease attaches a key to it (put or create), keeps it alive, revokes it or
   * abandons it to expire; and clients read the leased keys (get, entry, list), which shows
   * whether a lease ended. The members that lead tick the lease clock meanwhile (see LeaseTicker).
   * A share of 0 draws nothing and ticks nothing.
   */
  readonly leaseShare: number;
  /**
   * The keys leases are attached to: one group of their own, apart from `keys`, because every
   * lease operation reads the lease clock, so the check ties every leased key and lease together.
   */
  readonly leaseKeys: readonly string[];
}

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  keys: ["a/x", "a/y", "b/z"],
  opTimeoutMs: 3_000,
  requestTimeoutMs: 400,
  maxThinkMs: 20,
  readShares: [0.4, 0.7, 0.9],
  stayOnTimeoutChance: 0.5,
  revisionShare: 0.4,
  rangeShare: 0.25,
  txnShare: 0.25,
  leaseShare: 0.1,
  leaseKeys: ["l/p", "l/q"],
};

/** Lease TTLs the workload grants, ms: from the store's shortest, a few lease-clock ticks long. */
const LEASE_TTL_MS: readonly [number, number] = [500, 1_500];

/** The prefix that names a key's group: up to and including its first "/", or the key itself. */
export function keyGroup(key: string): string {
  const slash = key.indexOf("/");
  return slash === -1 ? key : key.slice(0, slash + 1);
}

/** A read a member answers: at which applied index, and the stale-read floor when it was invoked. */
export interface AnsweredRead {
  readonly process: number;
  /** The read's kind: get, entry, or a range (`key` is then its prefix). */
  readonly f: OperationKind;
  readonly key: string;
  readonly member: NodeId;
  readonly appliedIndex: number;
  readonly floor: number;
  readonly invokedAt: number;
  /**
   * The highest term a leader had been elected in when the read reached the member that answered
   * it (0 without terms): a correct leader checks its leadership after that (a heartbeat round,
   * or a lease read on a clock that counted every pause), so no later term can precede it.
   */
  readonly electedTermFloor: number;
  /** The term the answering member leads in as it answers, or null (not leading, or no terms). */
  readonly servedTerm: number | null;
  /** What the read-quorum check found missing as the member answered (`ProtocolRun.leadership`), or null. */
  readonly quorumMissing: string | null;
}

interface ClientDeps {
  readonly scheduler: Scheduler;
  readonly prng: Prng;
  readonly recorder: HistoryRecorder;
  readonly cluster: ClusterAccess;
  readonly options: WorkloadOptions;
  readonly trace: (process: number, detail: string) => void;
  /** An operation completed; the liveness check looks for acknowledged writes. */
  readonly onComplete: (outcome: "ok" | "fail" | "info", f: OperationKind, invokedAt: number) => void;
  /** The stale-read floor as a read is invoked (`ProtocolRun.highestCommitted`). */
  readonly readFloor: () => number;
  /** Raft's terms (`ProtocolRun.leadership`): the highest elected term, the term a member leads in. */
  readonly electedTermFloor: () => number;
  readonly leadingTerm: (member: NodeId) => number | null;
  /** A read reaches a member: the read-quorum check to run as it answers, or null. */
  readonly readTaken: (member: NodeId) => (() => string | null) | null;
  /**
   * A member is answering a read from its store, at its applied index; `floor` was the floor
   * when the read was invoked. Reported for every read a member answers, also one the client
   * no longer waits for.
   */
  readonly readAnswered: (read: AnsweredRead) => void;
}

type Outcome<T> = { readonly kind: "ok"; readonly value: T } | { readonly kind: "error"; readonly error: unknown };

type WriteCommand = Exclude<KvCommand, { op: "get" }> | KvRevisionCommand | Exclude<KvLeaseCommand, { op: "tick" }>;

/** An operation in flight: its handle in the history, its kind, and when it was invoked. */
interface Invocation {
  readonly handle: number;
  readonly f: OperationKind;
  readonly at: number;
}

interface Session {
  readonly client: string;
  nextSeq: number;
}

/** Why an attempt failed, and whether it may have taken effect. */
interface AttemptFailure {
  readonly uncertain: boolean;
  readonly leader: NodeId | null;
  readonly reason: string;
}

const TIMED_OUT = "timed out";

function describeFailure(error: unknown): AttemptFailure {
  if (error === "timeout") return { uncertain: true, leader: null, reason: TIMED_OUT };
  if (isQuorateError(error, ErrorCode.NotLeader))
    return { uncertain: false, leader: error.leader, reason: "not leader" };
  // Busy and Closed are refusals before the command entered the log; Indeterminate (a killed
  // leader with the entry appended, a proposal timeout) and anything unexpected may have applied.
  if (isQuorateError(error, ErrorCode.Busy) || isQuorateError(error, ErrorCode.Closed)) {
    return { uncertain: false, leader: null, reason: error.code };
  }
  return { uncertain: true, leader: null, reason: errorMessage(error) };
}

function text(value: KvValue | null): string | null {
  return value === null || typeof value === "string" ? value : new TextDecoder().decode(value);
}

/**
 * One client process, as the KV service and KvClient behave: writes run in a session and a
 * retry repeats the same (client, seq), so a write applies at most once; on NotLeader the
 * client follows the leader hint; reads go through a read barrier on the member that answers.
 * Every operation is recorded for the linearizability check.
 */
export class Client {
  #target: NodeId;
  #session: Session | null = null;
  #counter = 0;
  readonly #readShare: number;
  /** Last value this client saw per key, so some compare-and-sets expect the current value. */
  readonly #known = new Map<string, string | null>();
  /** Last revision this client saw per key (an entry read, its own write), for updates and compare-and-deletes. */
  readonly #revisions = new Map<string, number>();
  /** The lease this client holds (as far as it knows it lives), or null. */
  #lease: number | null = null;

  constructor(
    readonly process: number,
    private readonly deps: ClientDeps,
  ) {
    this.#target = deps.prng.pick(deps.cluster.members);
    this.#readShare = deps.prng.pick(deps.options.readShares);
  }

  /** Runs operations one after another while `active()` holds. */
  async run(active: () => boolean): Promise<void> {
    const { scheduler, prng, options } = this.deps;
    while (active()) {
      await scheduler.sleep(prng.int(0, options.maxThinkMs));
      if (!active()) return;
      await this.#operation();
    }
  }

  async #operation(): Promise<void> {
    const { prng, options } = this.deps;
    const key = prng.pick(options.keys);
    // With no revision share, no draw for it: the runs are those of the workload before revisions
    // (the named regression seeds replay with it, so each still reproduces its original schedule).
    const revisionAware = () => options.revisionShare > 0 && prng.chance(options.revisionShare);
    // The same for ranges and transactions: a share of 0 draws nothing.
    const share = (chance: number) => chance > 0 && prng.chance(chance);
    if (share(options.leaseShare)) return this.#leaseOperation();
    if (prng.chance(this.#readShare)) {
      if (share(options.rangeShare)) return this.#range(keyGroup(key));
      return this.#read(key, revisionAware());
    }
    if (share(options.txnShare)) return this.#txn(keyGroup(key));
    if (revisionAware()) return this.#revisionWrite(key);
    // Writes: half puts, a third compare-and-sets, the rest deletes.
    const roll = prng.float();
    if (roll < 0.5) {
      const value = this.#uniqueValue();
      return this.#write({ op: "put", key, value }, key, value, value);
    }
    if (roll < 0.83) {
      const known = this.#known.get(key) ?? null;
      const expected = prng.chance(0.7) ? known : prng.chance(0.5) ? null : `${this.process}.${this.#counter}`;
      const value = this.#uniqueValue();
      return this.#write({ op: "cas", key, expected, value }, key, [expected, value], value);
    }
    return this.#write({ op: "delete", key }, key, null, null);
  }

  /**
   * An operation about leases: without a lease, a grant or a read of a leased key; with one, a
   * put or create attaching a key to it, a keep-alive, a revoke, abandoning it to expire (nothing
   * sent), a plain put or delete (which detaches the key), or a read.
   */
  #leaseOperation(): Promise<void> {
    const { prng, options } = this.deps;
    const key = prng.pick(options.leaseKeys);
    const roll = prng.float();
    const lease = this.#lease;
    if (roll < 0.35) {
      if (roll < 0.1) return this.#range(keyGroup(key));
      return this.#read(key, roll < 0.2);
    }
    if (lease === null) {
      const ttlMs = prng.int(LEASE_TTL_MS[0], LEASE_TTL_MS[1]);
      return this.#write({ op: "grant", ttlMs }, "", ttlMs, null);
    }
    const value = this.#uniqueValue();
    if (roll < 0.6) return this.#write({ op: "put", key, value, lease }, key, value, value, lease);
    if (roll < 0.68) return this.#write({ op: "create", key, value, lease }, key, value, value, lease);
    if (roll < 0.82) return this.#write({ op: "keepAlive", lease }, "", lease, null);
    if (roll < 0.88) return this.#write({ op: "revoke", lease }, "", lease, null);
    if (roll < 0.92) {
      this.deps.trace(this.process, `abandon lease ${lease}`);
      this.#lease = null;
      return Promise.resolve();
    }
    if (roll < 0.96) return this.#write({ op: "put", key, value }, key, value, value);
    return this.#write({ op: "delete", key }, key, null, null);
  }

  /** Create, update or compare-and-delete, conditioned on the revision last seen (sometimes a made-up one). */
  #revisionWrite(key: string): Promise<void> {
    const { prng } = this.deps;
    const value = this.#uniqueValue();
    const roll = prng.float();
    if (roll < 0.3) return this.#write({ op: "create", key, value }, key, value, value);
    const seen = this.#revisions.get(key) ?? 0;
    const revision = prng.chance(0.8) ? seen : prng.int(0, seen + 5);
    if (roll < 0.8) return this.#write({ op: "update", key, value, revision }, key, [revision, value], value);
    return this.#write({ op: "delete", key, revision }, key, revision, null);
  }

  /**
   * A transaction on the keys of `group`: up to two compares (a value last seen or made up, a
   * revision last seen, absence), then one or two writes if they hold, else up to one.
   */
  #txn(group: string): Promise<void> {
    const { prng, options } = this.deps;
    const keys = options.keys.filter((key) => keyGroup(key) === group);
    const compare: TxnCompare[] = [];
    for (let count = prng.int(0, 2); compare.length < count; ) {
      const key = prng.pick(keys);
      const roll = prng.float();
      const known = this.#known.get(key);
      const seen = this.#revisions.get(key);
      if (roll < 0.4 && typeof known === "string") compare.push({ key, value: known });
      else if (roll < 0.8 && seen !== undefined) compare.push({ key, revision: seen });
      else compare.push({ key, absent: true });
    }
    const branch = (most: number): TxnWrite[] => {
      const writes: TxnWrite[] = [];
      for (const key of keys) {
        if (writes.length === most || !prng.chance(0.6)) continue;
        writes.push(prng.chance(0.75) ? { key, put: this.#uniqueValue() } : { key, delete: true });
      }
      return writes;
    };
    const success = branch(2);
    const failure = branch(1);
    const toKv = (write: TxnWrite): KvTxnOp =>
      "put" in write ? { op: "put", key: write.key, value: write.put } : { op: "delete", key: write.key };
    const command: WriteCommand = {
      op: "txn",
      compare: compare.map((c): KvCompare => ({ ...c })),
      success: success.map(toKv),
      failure: failure.map(toKv),
    };
    return this.#write(command, group, { compare, success, failure }, null);
  }

  /** A range over `prefix` (`keys` or `list`) with a limit and sometimes a fromKey, through a read barrier. */
  async #range(prefix: string): Promise<void> {
    const { prng, options } = this.deps;
    const f: "keys" | "list" = prng.chance(0.5) ? "keys" : "list";
    const groupKeys = [...options.keys, ...options.leaseKeys].filter((key) => key.startsWith(prefix));
    const limit = prng.int(1, groupKeys.length + 1);
    const fromKey = prng.chance(0.3) ? prng.pick(groupKeys) : null;
    const op = this.#invoke(f, prefix, { fromKey, limit });
    const floor = this.deps.readFloor();
    const deadline = op.at + options.opTimeoutMs;
    const read = await this.#attempts(deadline, async (member) => {
      await member.whenRunning();
      const electedTermFloor = this.deps.electedTermFloor();
      const quorumCheck = this.deps.readTaken(member.node.id);
      return member.node.readBarrier().then(() => {
        const { id, appliedIndex } = member.node;
        const servedTerm = this.deps.leadingTerm(id);
        const quorumMissing = quorumCheck?.() ?? null;
        const answered = { process: this.process, f, key: prefix, member: id, appliedIndex, floor, invokedAt: op.at };
        this.deps.readAnswered({ ...answered, electedTermFloor, servedTerm, quorumMissing });
        const entries = [];
        for (const [key, entry] of member.store.range(prefix, fromKey ?? undefined)) {
          if (entries.length === limit) break;
          const value = f === "list" ? text(entry.value) : null;
          entries.push({ key, value, revision: entry.revision, createRevision: entry.createRevision });
        }
        return entries;
      });
    });
    if (read.kind !== "ok") return this.#complete(op, "fail", `${f} ${prefix}: ${read.reason}`);
    const shown = read.value.map((entry) => `${entry.key}@${entry.revision}`).join(" ");
    this.#complete(op, "ok", `${f} ${prefix} = [${shown}]`, null, { entries: read.value });
  }

  #uniqueValue(): string {
    return `${this.process}.${++this.#counter}`;
  }

  #invoke(f: OperationKind, key: string, input: OperationInput, lease?: number): Invocation {
    const shown = `${input === null ? "" : ` ${JSON.stringify(input)}`}${lease === undefined ? "" : ` lease ${lease}`}`;
    this.deps.trace(this.process, `invoke ${f} ${key}${shown}`);
    const handle = this.deps.recorder.invoke(this.process, f, key, input, lease);
    return { handle, f, at: this.deps.scheduler.now };
  }

  #complete(
    op: Invocation,
    outcome: "ok" | "fail" | "info",
    detail: string,
    value: string | null = null,
    details?: CompletionDetails,
  ): void {
    this.deps.trace(this.process, `${outcome} ${detail}`);
    if (outcome === "ok") this.deps.recorder.ok(op.handle, value, details);
    else if (outcome === "fail") this.deps.recorder.fail(op.handle);
    else this.deps.recorder.info(op.handle);
    this.deps.onComplete(outcome, op.f, op.at);
  }

  /** A get, or with `withRevisions` an entry read, which remembers the revision for later updates. */
  async #read(key: string, withRevisions: boolean): Promise<void> {
    const op = this.#invoke(withRevisions ? "entry" : "get", key, null);
    const floor = this.deps.readFloor();
    const deadline = op.at + this.deps.options.opTimeoutMs;
    const read = await this.#attempts(deadline, async (member) => {
      // Taken as the member takes the request up (a paused one, when it resumes): a correct
      // leader checks its leadership after that.
      await member.whenRunning();
      const electedTermFloor = this.deps.electedTermFloor();
      const quorumCheck = this.deps.readTaken(member.node.id);
      return member.node.readBarrier().then(() => {
        const { id, appliedIndex } = member.node;
        const servedTerm = this.deps.leadingTerm(id);
        const quorumMissing = quorumCheck?.() ?? null;
        const answered = { process: this.process, f: op.f, key, member: id, appliedIndex, floor, invokedAt: op.at };
        this.deps.readAnswered({ ...answered, electedTermFloor, servedTerm, quorumMissing });
        return member.store.entry(key);
      });
    });
    // A read changes nothing, so one that never completed is simply a failed read.
    if (read.kind !== "ok") return this.#complete(op, "fail", `${op.f} ${key}: ${read.reason}`);
    const entry = read.value;
    const value = entry === null ? null : text(entry.value);
    if (!withRevisions) return this.#complete(op, "ok", `${key} = ${JSON.stringify(value)}`, value);
    if (entry === null) this.#revisions.delete(key);
    else this.#revisions.set(key, entry.revision);
    const details = { revision: entry?.revision ?? null, createRevision: entry?.createRevision ?? null };
    this.#complete(op, "ok", `${key} = ${JSON.stringify(value)} @${details.revision ?? "-"}`, value, details);
  }

  /**
   * `key`, `input` and `lease` are the operation as the history records it (a transaction: its
   * group; a lease operation: ""); `written` the key's value if it takes effect.
   */
  async #write(
    command: WriteCommand,
    key: string,
    input: OperationInput,
    written: string | null,
    lease?: number,
  ): Promise<void> {
    const op = this.#invoke(command.op, key, input, lease);
    const deadline = op.at + this.deps.options.opTimeoutMs;
    let uncertain = false;
    for (;;) {
      const session = await this.#openSession(deadline);
      if (session === null) {
        // Nothing was proposed: the write definitely did not happen.
        this.#complete(op, uncertain ? "info" : "fail", `${command.op} ${key}: no session`);
        return;
      }
      const seq = session.nextSeq++;
      const tag = { client: session.client, seq, firstUnacked: seq };
      const bytes = encodeSessionCommand(tag, encodeKvCommand(command));
      const attempt = await this.#attempts(deadline, (member) => member.node.propose(bytes));
      uncertain ||= attempt.uncertain;
      if (attempt.kind !== "ok") {
        this.#complete(op, uncertain ? "info" : "fail", `${command.op} ${key}: ${attempt.reason}`);
        return;
      }
      const result = decodeSessionResult(attempt.value);
      if (!result.ok) {
        if (result.code === SessionErrorCode.SessionExpired && !uncertain) {
          // No attempt can have applied: the write moves to a new session as a new command.
          this.#session = null;
          continue;
        }
        // A malformed command applied nothing; a discarded result means an attempt may have applied.
        const applied = uncertain || result.code === SessionErrorCode.ResultDiscarded;
        this.#complete(op, applied ? "info" : "fail", `${command.op} ${key}: ${result.code}`);
        return;
      }
      const outcome = decodeKvResult(result.result);
      if (outcome === null) throw new Error(`undecodable KV result for ${command.op} ${key}`);
      if (command.op === "grant" || command.op === "keepAlive" || command.op === "revoke") {
        this.#leaseDone(op, command, outcome, seq);
        return;
      }
      if (!outcome.ok) {
        // A write naming a lease that ended (or past a limit) changed nothing.
        if (lease !== undefined && outcome.code === ErrorCode.LeaseNotFound) this.#lease = null;
        this.#complete(op, "fail", `${command.op} ${key}: rejected`);
        return;
      }
      if (command.op === "cas" && outcome.value !== true) {
        // A compare-and-set that did not match changed nothing.
        this.#known.delete(key);
        this.#complete(op, "fail", `cas ${key}: no match`);
        return;
      }
      if (command.op === "txn") {
        this.#txnDone(command, outcome.value as KvTxnResult);
        const { succeeded, revision } = outcome.value as KvTxnResult;
        this.#complete(op, "ok", `txn ${key} (seq ${seq}) ${succeeded ? "succeeded" : "failed"} @${revision}`, null, {
          succeeded,
          revision,
        });
        return;
      }
      const details = this.#writeDetails(command, outcome);
      if (details.applied === false) {
        this.#revisions.delete(key);
        this.#complete(op, "ok", `${command.op} ${key} (seq ${seq}): not applied`, null, details);
        return;
      }
      this.#known.set(key, written);
      if (typeof details.revision === "number") this.#revisions.set(key, details.revision);
      else this.#revisions.delete(key);
      this.#complete(op, "ok", `${command.op} ${key} (seq ${seq}) @${details.revision ?? "-"}`, null, details);
      return;
    }
  }

  /**
   * Records a completed lease operation: a grant's lease id (its revision); whether a keep-alive
   * or revoke found the lease live (a keep-alive that found it ended fails with LeaseNotFound,
   * which the history records as an observation, not as an operation that did not happen).
   */
  #leaseDone(
    op: Invocation,
    command: WriteCommand & { op: "grant" | "keepAlive" | "revoke" },
    outcome: KvResult,
    seq: number,
  ): void {
    const done = `${command.op} (seq ${seq})`;
    if (command.op === "grant") {
      if (!outcome.ok || typeof outcome.value !== "number") {
        this.#complete(op, "fail", `${done}: ${outcome.ok ? "no lease id" : outcome.code}`);
        return;
      }
      this.#lease = outcome.value;
      this.#complete(op, "ok", `${done} = lease ${outcome.value}`, null, { revision: outcome.value });
      return;
    }
    const notFound = !outcome.ok && outcome.code === ErrorCode.LeaseNotFound;
    if (!outcome.ok && !notFound) {
      this.#complete(op, "fail", `${done}: ${outcome.code}`);
      return;
    }
    const applied = command.op === "keepAlive" ? outcome.ok : outcome.ok && outcome.value === true;
    if (!applied || command.op === "revoke") this.#lease = null;
    this.#complete(op, "ok", `${done}: lease ${command.lease} ${applied ? "was live" : "not found"}`, null, {
      applied,
    });
  }

  /** Remembers what a completed transaction wrote, for later compares and conditional writes. */
  #txnDone(command: WriteCommand & { op: "txn" }, result: KvTxnResult): void {
    for (const write of result.succeeded ? command.success : (command.failure ?? [])) {
      if (write.op === "put") {
        this.#known.set(write.key, text(write.value));
        this.#revisions.set(write.key, result.revision);
      } else {
        this.#known.set(write.key, null);
        this.#revisions.delete(write.key);
      }
    }
  }

  /**
   * What a completed write's result says: the revision of a put, create or update (null when
   * one did not apply), whether a create, update or delete applied, and the revision of a
   * delete that deleted.
   */
  #writeDetails(command: WriteCommand, outcome: KvResult & { ok: true }): CompletionDetails {
    const result = outcome.value;
    switch (command.op) {
      case "put":
        return { revision: result as number };
      case "create":
      case "update":
        return typeof result === "number" ? { revision: result, applied: true } : { applied: false };
      case "delete":
        return result === true && outcome.revision !== undefined
          ? { applied: true, revision: outcome.revision }
          : { applied: result === true };
      default:
        return {};
    }
  }

  /** The open session, or a new one; null if none could be opened before the deadline. */
  async #openSession(deadline: number): Promise<Session | null> {
    if (this.#session !== null) return this.#session;
    const opened = await this.#attempts(deadline, (member) =>
      member.node.propose(encodeOpenSession(`c${this.process}`)),
    );
    if (opened.kind !== "ok") return null;
    const result = decodeSessionResult(opened.value);
    if (!result.ok) return null;
    this.#session = { client: decodeOpenedClient(result.result), nextSeq: 1 };
    return this.#session;
  }

  /**
   * Runs `call` against the current target until it succeeds or the deadline passes: follows
   * leader hints, moves on from crashed or silent members, and backs off between attempts.
   * `uncertain` reports whether any failed attempt may have taken effect.
   */
  async #attempts<T>(
    deadline: number,
    call: (member: MemberHandle) => Promise<T>,
  ): Promise<
    | { readonly kind: "ok"; readonly value: T; readonly uncertain: boolean }
    | { readonly kind: "gave-up"; readonly reason: string; readonly uncertain: boolean }
  > {
    const { scheduler, prng, cluster, options } = this.deps;
    let uncertain = false;
    let reason = "no attempt";
    for (let attempt = 0; scheduler.now < deadline; attempt++) {
      const member = cluster.member(this.#target);
      let failure: AttemptFailure;
      if (member === null) {
        failure = { uncertain: false, leader: null, reason: `${this.#target} is down` };
      } else {
        const outcome = await this.#within(call(member), Math.min(options.requestTimeoutMs, deadline - scheduler.now));
        if (outcome.kind === "ok") return { kind: "ok", value: outcome.value, uncertain };
        failure = describeFailure(outcome.error);
      }
      uncertain ||= failure.uncertain;
      reason = `${failure.reason} at ${this.#target}`;
      this.deps.trace(this.process, `retry: ${reason}`);
      const hint = failure.leader;
      if (hint !== null && hint !== this.#target && cluster.members.includes(hint)) {
        this.#target = hint;
        // Always let virtual time pass: two members with stale hints must not ping-pong forever in one step.
        await scheduler.sleep(1);
      } else if (failure.reason === TIMED_OUT && prng.chance(options.stayOnTimeoutChance)) {
        await scheduler.sleep(prng.int(1, 20));
      } else {
        const others = cluster.members.filter((m) => m !== this.#target);
        this.#target = prng.pick(others.length > 0 ? others : cluster.members);
        await scheduler.sleep(prng.int(1, Math.min(200, 5 * 2 ** Math.min(attempt, 6))));
      }
    }
    return { kind: "gave-up", reason, uncertain };
  }

  /** Settles with the call's outcome, or with "timeout" after `ms` virtual milliseconds. */
  #within<T>(promise: Promise<T>, ms: number): Promise<Outcome<T>> {
    return new Promise((resolve) => {
      const timer = this.deps.scheduler.after(ms, () => resolve({ kind: "error", error: "timeout" }));
      promise.then(
        (value) => {
          timer.cancelled = true;
          resolve({ kind: "ok", value });
        },
        (error: unknown) => {
          timer.cancelled = true;
          resolve({ kind: "error", error });
        },
      );
    });
  }
}
