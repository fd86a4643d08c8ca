/**
 * The interpreter of the golden trace files (testdata/*.txt), in the spirit of etcd-io/raft's
 * datadriven interaction tests: each command drives the hand-cranked Driver one step at a time
 * and describes, in a stable text form, what every member did in response: its state changes,
 * what it made durable, the messages it sent and the answers it gave its clients.
 */
import { EntryKind } from "@quorate/core";
import type { LogEntry, RaftMessage, RaftOptions } from "../src/internal.js";
import { unpackEntries } from "../src/messages.js";
import type { RaftObservation } from "../src/outbox.js";
import { Driver, type Envelope } from "./driver.js";

/** One command line of a trace file: `name positional... key=value...`. */
export interface Command {
  readonly name: string;
  readonly positional: readonly string[];
  readonly named: ReadonlyMap<string, string>;
}

export function parseCommand(line: string): Command {
  const [name = "", ...words] = line.trim().split(/\s+/);
  const positional: string[] = [];
  const named = new Map<string, string>();
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq > 0) named.set(word.slice(0, eq), word.slice(eq + 1));
    else positional.push(word);
  }
  return { name, positional, named };
}

const none = (value: string | null) => value ?? "none";

export function formatMessage(message: RaftMessage): string {
  switch (message.type) {
    case "raft.vote": {
      const b = message.body;
      const flags = `${b.preVote ? " pre-vote" : ""}${b.transfer === true ? " transfer" : ""}`;
      return `raft.vote term=${b.term} last=${b.lastLogIndex}/${b.lastLogTerm}${flags}`;
    }
    case "raft.vote.resp": {
      const b = message.body;
      return `raft.vote.resp term=${b.term} ${b.granted ? "granted" : "rejected"}${b.preVote ? " pre-vote" : ""}`;
    }
    case "raft.append": {
      const b = message.body;
      const entries = unpackEntries(b.entries).map(formatEntry).join(" ");
      return `raft.append term=${b.term} prev=${b.prevLogIndex}/${b.prevLogTerm} entries=[${entries}] commit=${b.leaderCommit} round=${b.seq}`;
    }
    case "raft.append.resp": {
      const b = message.body;
      const outcome = b.success ? "ok" : `rejected hint=${b.conflictIndex}/${b.conflictTerm}`;
      return `raft.append.resp term=${b.term} ${outcome} index=${b.index} last=${b.lastIndex} round=${b.seq}`;
    }
    case "raft.timeout-now":
      return `raft.timeout-now term=${message.body.term}`;
  }
}

/** An entry as `term`, or `term:command` for a command with a payload. */
function formatEntry(entry: { term: number; kind: number; data: Uint8Array }): string {
  if (entry.kind === EntryKind.Command && entry.data.length > 0) {
    return `${entry.term}:${new TextDecoder().decode(entry.data)}`;
  }
  return String(entry.term);
}

function formatEnvelope(e: Envelope): string {
  return `${e.from}->${e.to} ${formatMessage(e.message)}`;
}

/** What a reader of the paper needs of one member; the trace prints what changes. */
function memberState(driver: Driver, id: string): Record<string, string> {
  const ctx = driver.ctx(id);
  const log = driver.member(id).log;
  const entries: string[] = [];
  for (let i = log.firstIndex; i <= log.lastIndex; i++) {
    const entry = log.entry(i);
    if (entry !== undefined) entries.push(formatEntry(entry));
  }
  return {
    role: driver.role(id),
    term: String(ctx.term),
    vote: none(ctx.vote),
    leader: none(ctx.leader),
    commit: String(ctx.commitIndex),
    log: `[${entries.join(" ")}]`,
    "pending-reads": String(ctx.pendingReads.length),
    transferring: none(ctx.transferee),
    /** The leader's lease holds while its tick count since election is below this (§6.4.1). */
    "lease-expires": String(ctx.leaseExpiresAtTick),
  };
}

function formatStatus(driver: Driver, id: string): string {
  const s = memberState(driver, id);
  const ctx = driver.ctx(id);
  const reads = ctx.pendingReads.length === 0 ? "" : ` pending-reads=${ctx.pendingReads.length}`;
  const leaseLeft = Math.max(0, ctx.leaseExpiresAtTick - ctx.leaderTicks);
  const timeoutNowSent = ctx.timeoutNowSent ? " timeout-now-sent" : "";
  const lease = ctx.options.leaseReads && s.role === "leader" ? ` lease-ticks-left=${leaseLeft}${timeoutNowSent}` : "";
  return `${id}: ${s.role} term=${s.term} vote=${s.vote} leader=${s.leader} commit=${s.commit} log=${s.log}${reads}${lease}`;
}

/** Observations that explain a step (roles, terms and commits show in the state changes). */
function formatObservation(o: RaftObservation): string | null {
  switch (o.kind) {
    case "campaign-end":
      // Without the term: rules report a pre-vote's end under the term asked for or the current one.
      return `${o.preVote ? "pre-vote" : "campaign"} ${o.outcome}`;
    case "step-down":
      return `steps down from term ${o.term}: ${o.reason}`;
    case "transfer":
      return `transfer to ${none(o.to)} ${o.status}`;
    case "refused":
      return `refused a message from ${o.from}: ${o.reason}`;
    default:
      return null;
  }
}

type Filter = (e: Envelope) => boolean;

function envelopeFilter(command: Command): Filter {
  const from = command.named.get("from");
  const to = command.named.get("to");
  const type = command.named.get("type");
  return (e) =>
    (from === undefined || e.from === from) &&
    (to === undefined || e.to === to) &&
    (type === undefined || e.message.type === type);
}

const BOOLEAN_OPTIONS = { prevote: "preVote", lease: "leaseReads" } as const;
const NUMBER_OPTIONS = { heartbeat: "heartbeatTicks" } as const;

/** Runs the commands of one trace file against one cluster, which the file's first command builds. */
export class Trace {
  #driver: Driver | null = null;
  /** Messages taken out of the network by `hold`, to arrive late on `release`. */
  #held: Envelope[] = [];

  get driver(): Driver {
    if (this.#driver === null) throw new Error("no cluster yet: start the file with `cluster`");
    return this.#driver;
  }

  run(command: Command): string {
    const lines = this.#dispatch(command);
    return lines.length === 0 ? "ok" : lines.join("\n");
  }

  #dispatch(command: Command): string[] {
    const [first, ...rest] = command.positional;
    switch (command.name) {
      case "cluster":
        return this.#cluster(command);
      case "status":
        return (command.positional.length > 0 ? command.positional : this.driver.ids).map((id) =>
          formatStatus(this.driver, id),
        );
      case "tick":
        return this.#tick(this.#member(first), Number(rest[0] ?? 1));
      case "campaign":
        return this.#campaign(this.#member(first));
      case "deliver":
        return this.#deliver(envelopeFilter(command), false);
      case "stabilize":
        return this.#deliver(envelopeFilter(command), true);
      case "drop":
        return this.#take(envelopeFilter(command)).map((e) => `dropped ${formatEnvelope(e)}`);
      case "hold": {
        const taken = this.#take(envelopeFilter(command));
        this.#held.push(...taken);
        return taken.map((e) => `held ${formatEnvelope(e)}`);
      }
      case "release": {
        const released = this.#held;
        this.#held = [];
        this.driver.queue.push(...released);
        return released.map((e) => `released ${formatEnvelope(e)}`);
      }
      case "propose": {
        const id = this.#member(first);
        return this.#step(`${id}: propose ${rest.join(" ")}`, () => this.driver.propose(id, ...rest));
      }
      case "read": {
        const id = this.#member(first);
        const request = Number(rest[0]);
        return this.#step(`${id}: read #${request}`, () => this.driver.send(id, { type: "read", id: request }));
      }
      case "transfer": {
        const id = this.#member(first);
        const to = rest[0] ?? null;
        return this.#step(`${id}: transfer to ${none(to)}`, () => this.driver.send(id, { type: "transfer", to }));
      }
      case "restart": {
        const id = this.#member(first);
        return this.#step(`${id}: crash and restart from its durable state`, () => this.driver.restart(id));
      }
      default:
        throw new Error(`unknown command ${command.name}`);
    }
  }

  #member(id: string | undefined): string {
    if (id === undefined || !this.driver.members.has(id)) throw new Error(`no member ${id}`);
    return id;
  }

  /**
   * `cluster a b c [prevote=false] [lease=true] [heartbeat=1] [log-a=1,2,2] [term-a=3]`: members
   * with logs given as the term of each entry; a member's term defaults to its last entry's.
   */
  #cluster(command: Command): string[] {
    const options: Partial<RaftOptions> = {};
    const logs: Record<string, { term: number; entries: LogEntry[] }> = {};
    for (const [key, value] of command.named) {
      if (key in BOOLEAN_OPTIONS) {
        options[BOOLEAN_OPTIONS[key as keyof typeof BOOLEAN_OPTIONS]] = value === "true";
      } else if (key in NUMBER_OPTIONS) {
        options[NUMBER_OPTIONS[key as keyof typeof NUMBER_OPTIONS]] = Number(value);
      } else if (!key.startsWith("log-") && !key.startsWith("term-")) {
        throw new Error(`unknown cluster option ${key}`);
      }
    }
    for (const id of command.positional) {
      const terms = (command.named.get(`log-${id}`) ?? "")
        .split(",")
        .filter((t) => t !== "")
        .map(Number);
      const entries = terms.map((term) => ({ term, kind: EntryKind.Command, data: new Uint8Array(0) }));
      logs[id] = { term: Number(command.named.get(`term-${id}`) ?? terms.at(-1) ?? 0), entries };
    }
    this.#driver = new Driver([...command.positional], options, logs);
    return command.positional.map((id) => formatStatus(this.driver, id));
  }

  #tick(id: string, times: number): string[] {
    const lines: string[] = [];
    for (let i = 1; i <= times; i++) {
      lines.push(...this.#step(`${id}: tick ${i}/${times}`, () => this.driver.tick(id), true));
    }
    return lines;
  }

  /** Ticks until the election timeout fires; the trace says how many ticks that took. */
  #campaign(id: string): string[] {
    let ticks = 0;
    return this.#step(
      () => `${id}: election timeout after ${ticks} ticks`,
      () => {
        const limit = 4 * this.driver.options.electionTicks;
        while (this.driver.role(id) === "follower" && ticks < limit) {
          this.driver.tick(id);
          ticks++;
        }
      },
    );
  }

  #take(filter: Filter): Envelope[] {
    const taken = this.driver.queue.filter(filter);
    this.driver.queue = this.driver.queue.filter((e) => !filter(e));
    return taken;
  }

  /**
   * Delivers the queued messages that match, one at a time in the order they were sent; with
   * `untilQuiet`, also those the deliveries produce, until none matches.
   */
  #deliver(filter: Filter, untilQuiet: boolean): string[] {
    const lines: string[] = [];
    let batch = this.#take(filter);
    for (let round = 0; batch.length > 0; round++) {
      if (round > 1000) throw new Error("the cluster did not stabilize");
      for (const e of batch) {
        lines.push(
          ...this.#step(formatEnvelope(e), () =>
            this.driver.send(e.to, { type: "message", from: e.from, message: e.message }),
          ),
        );
      }
      batch = untilQuiet ? this.#take(filter) : [];
    }
    return lines;
  }

  /**
   * Runs one step and describes its effects under a `> header` line: every member's state that
   * changed, each write the member made durable, the messages it sent (marked when they waited
   * for that write), and the answers it gave. A step that did nothing says so, unless `quiet`.
   */
  #step(header: string | (() => string), act: () => void, quiet = false): string[] {
    const d = this.driver;
    const before = new Map(d.ids.map((id) => [id, memberState(d, id)]));
    const marks = {
      batches: d.batches.length,
      proposals: d.proposals.length,
      reads: d.reads.length,
      observations: d.observations.length,
      snapshotSends: d.snapshotSends.length,
    };
    act();
    const effects: string[] = [];
    for (const id of d.ids) {
      const was = before.get(id) as Record<string, string>;
      const now = memberState(d, id);
      const changed = Object.keys(now).filter((key) => now[key] !== was[key]);
      if (changed.length > 0) effects.push(`${id}: ${changed.map((k) => `${k} ${was[k]}→${now[k]}`).join(", ")}`);
    }
    for (const { at, observation } of d.observations.slice(marks.observations)) {
      const text = formatObservation(observation);
      if (text !== null) effects.push(`${at}: ${text}`);
    }
    for (const batch of d.batches.slice(marks.batches)) {
      const writes = [
        ...(batch.hardStateChanged ? ["term and vote"] : []),
        ...(batch.unstableFrom !== null ? [`log from index ${batch.unstableFrom}`] : []),
      ];
      if (writes.length > 0) effects.push(`${batch.from}: fsync ${writes.join(", ")}`);
      for (const e of batch.messages) effects.push(`${formatEnvelope(e)}${e.afterPersist ? " (after fsync)" : ""}`);
    }
    for (const p of d.proposals.slice(marks.proposals)) {
      effects.push(
        p.ok
          ? `proposal #${p.id}: ok index=${p.firstIndex} term=${p.term}`
          : `proposal #${p.id}: ${p.reason} leader=${none(p.leader)}`,
      );
    }
    for (const r of d.reads.slice(marks.reads)) {
      effects.push(r.ok ? `read #${r.id}: ok index=${r.index}` : `read #${r.id}: refused leader=${none(r.leader)}`);
    }
    for (const s of d.snapshotSends.slice(marks.snapshotSends)) effects.push(`${s.from}: send snapshot to ${s.to}`);
    if (effects.length === 0) {
      if (quiet) return [];
      effects.push("(no change)");
    }
    const title = typeof header === "string" ? header : header();
    return [`> ${title}`, ...effects.map((line) => `  ${line}`)];
  }
}
