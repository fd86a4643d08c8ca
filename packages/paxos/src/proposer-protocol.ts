import { compareBallots, type NodeId, type PaxosBallot, type PaxosValue, PaxosValueKind } from "@quorate/core";
import { invariant, nextInt } from "@quorate/core/internal";
import { valueBytes } from "./acceptor-protocol.js";
import { COMMANDER_ID, type CommanderDecided, type CommanderEvent, type CommanderInput } from "./commander.js";
import type { PaxosAccept, PaxosFill, PaxosHeartbeat, PaxosNack, PaxosRequest } from "./messages.js";
import type { PaxosOptions, PaxosTopology } from "./options.js";
import type { PaxosMessage, ProposerMode, ProposerOutbox } from "./outbox.js";
import {
  hearAcceptor,
  hearAlive,
  hearRead,
  heartbeat,
  type ProposerReads,
  phase2QuorumSilent,
} from "./proposer-leadership.js";
import type { ProposerSlots } from "./proposer-slots.js";
import { type ScoutAdopted, type ScoutEvent, sameBallot } from "./scout.js";

/**
 * The proposer (PMMC's Leader) as functions over a draft of its context. Passive, it watches
 * the active proposer's heartbeats and campaigns only when they stop; scouting, its Scout
 * child runs phase 1; active, it assigns slots to requests and runs phase 2 in batches through
 * its Commander child (one per ballot), without phase 1 for new slots. A nack with a higher ballot preempts it, and it
 * steps down by itself when no phase-2 quorum of acceptors answers it for an election timeout.
 */

export const NOOP: PaxosValue = Object.freeze({
  kind: PaxosValueKind.Noop,
  data: new Uint8Array(0),
  origin: "",
  seq: 0,
});

export interface ProposerContext {
  readonly id: NodeId;
  readonly topology: PaxosTopology;
  readonly options: PaxosOptions;
  /** Shared by reference with the host. */
  readonly slots: ProposerSlots;
  /** Reads waiting for a heartbeat round; shared by reference with the host. */
  readonly reads: ProposerReads;
  readonly out: ProposerOutbox;
  /** The highest round this proposer used or saw; a campaign takes the next one. */
  round: number;
  /** Its own ballot while scouting or active. */
  ballot: PaxosBallot;
  /** The proposer believed active, and the highest ballot heard in use. */
  leader: NodeId | null;
  leaderBallot: PaxosBallot;
  /** Ticks since the active proposer was last heard. */
  silentTicks: number;
  /** This period's randomized leader timeout. */
  leaderTimeout: number;
  /** Extra ticks to wait, grown on preemption and shrunk on adoption (AIMD). */
  backoffTicks: number;
  heartbeatElapsed: number;
  /** The round of the latest heartbeat sent; acceptors echo it in `paxos.alive`. */
  heartbeatRound: number;
  /** Active: the highest heartbeat round each acceptor answered at our ballot. */
  acceptorRounds: Readonly<Record<NodeId, number>>;
  /** Active: ticks since a phase-2 quorum of acceptors was last heard at our ballot. */
  ticksSinceQuorumHeard: number;
  /** Active: acceptors heard at our ballot since then; cleared once they form a phase-2 quorum. */
  acceptorsHeard: Readonly<Record<NodeId, true>>;
  prng: number;
  nextSlot: number;
  /** Slots at or below this are decided and dropped by some acceptor. */
  truncated: number;
  /** Numbers the phase-2 batches handed to the commander. */
  nextBatch: number;
}

/** Internal events that move the proposer between modes. */
export type ModeChange = { type: "campaign" } | { type: "follow" };

/** What the rules ask of the machine's children; the machine enqueues it as XState actions. */
export interface Children {
  spawnCommander(id: string, input: CommanderInput): void;
  send(child: string, event: CommanderEvent | ScoutEvent): void;
  stop(child: string): void;
}

export function resetLeaderTimer(d: ProposerContext): void {
  d.silentTicks = 0;
  const [timeout, prng] = nextInt(d.prng, d.options.leaderTimeoutTicks, 2 * d.options.leaderTimeoutTicks - 1);
  d.leaderTimeout = timeout;
  d.prng = prng;
}

export function observeMode(d: ProposerContext, mode: ProposerMode): void {
  d.out.observe({ kind: "mode", proposer: d.id, mode, ballot: mode === "passive" ? d.leaderBallot : d.ballot });
}

// ---------------------------------------------------------------------------------------------
// Passive

export function tickPassive(d: ProposerContext): ModeChange | null {
  d.silentTicks++;
  if (d.silentTicks >= d.leaderTimeout + d.backoffTicks) return { type: "campaign" };
  return null;
}

/**
 * A heartbeat at or above the highest ballot heard names the active proposer. One above our
 * own ballot means we are no longer it.
 */
export function hearHeartbeat(
  d: ProposerContext,
  from: NodeId,
  m: PaxosHeartbeat,
  mode: ProposerMode,
): ModeChange | null {
  if (from === d.id || compareBallots(m.ballot, d.leaderBallot) < 0) return null;
  d.leader = from;
  d.leaderBallot = m.ballot;
  if (m.ballot[0] > d.round) d.round = m.ballot[0];
  resetLeaderTimer(d);
  if (mode !== "passive" && compareBallots(m.ballot, d.ballot) > 0) return { type: "follow" };
  return null;
}

// ---------------------------------------------------------------------------------------------
// Campaign

/** Takes a fresh round; the host makes it durable before the scout's p1a leaves. */
export function startCampaign(d: ProposerContext): void {
  const previous = d.ballot;
  d.round = Math.max(d.round, d.leaderBallot[0]) + 1;
  d.ballot = [d.round, d.id];
  // Ballots only grow: a round used before could carry a second value for a slot.
  invariant(
    compareBallots(d.ballot, previous) > 0 && compareBallots(d.ballot, d.leaderBallot) > 0,
    `proposer ${d.id} campaigns at round ${d.round}, not above [${previous[0]},${previous[1]}] and [${d.leaderBallot[0]},${d.leaderBallot[1]}]`,
  );
  d.out.round = d.round;
  d.leader = null;
  resetLeaderTimer(d);
  observeMode(d, "scouting");
}

/** A nack above our ballot: someone else leads (or tries to). Back off and follow. */
export function hearNack(d: ProposerContext, m: PaxosNack, mode: ProposerMode): ModeChange | null {
  learnTruncation(d, m.truncated);
  if (mode === "passive" || compareBallots(m.promised, d.ballot) <= 0) return null;
  d.out.observe({ kind: "preempted", proposer: d.id, ballot: d.ballot, by: m.promised });
  if (compareBallots(m.promised, d.leaderBallot) > 0) {
    d.leaderBallot = m.promised;
    d.leader = m.promised[1] === "" ? null : m.promised[1];
  }
  if (m.promised[0] > d.round) d.round = m.promised[0];
  d.backoffTicks = Math.min(d.options.maxBackoffTicks, Math.max(d.options.heartbeatTicks, d.backoffTicks * 2));
  resetLeaderTimer(d);
  return { type: "follow" };
}

export function learnTruncation(d: ProposerContext, truncated: number, children?: Children): void {
  if (truncated <= d.truncated) return;
  d.truncated = truncated;
  if (d.nextSlot <= truncated) d.nextSlot = truncated + 1;
  d.slots.prune(truncated);
  if (children !== undefined && d.slots.inflight > 0) {
    children.send(COMMANDER_ID, { type: "truncated", through: truncated });
  }
}

// ---------------------------------------------------------------------------------------------
// Active

/**
 * Phase 1 succeeded. Every open slot above the truncation point is proposed again under our
 * ballot: the highest-ballot value reported for it, or a no-op for a hole, so that later
 * slots can be applied.
 */
export function adopt(d: ProposerContext, e: ScoutAdopted, children: Children): void {
  learnTruncation(d, e.truncated);
  let high = Math.max(d.truncated, d.nextSlot - 1);
  for (const slot of e.pvalues.keys()) if (slot > high) high = slot;
  const proposals: PaxosAccept["proposals"] = [];
  let noops = 0;
  for (let slot = d.truncated + 1; slot <= high; slot++) {
    const value = e.pvalues.get(slot)?.value;
    if (value === undefined) noops++;
    proposals.push({ slot, value: value ?? NOOP });
  }
  d.nextSlot = high + 1;
  d.leader = d.id;
  d.leaderBallot = d.ballot;
  d.backoffTicks = Math.max(0, d.backoffTicks - d.options.leaderTimeoutTicks);
  // A phase-1 quorum just promised: the quorum check starts from here.
  d.ticksSinceQuorumHeard = 0;
  d.acceptorsHeard = {};
  d.acceptorRounds = {};
  d.out.observe({
    kind: "adopted",
    proposer: d.id,
    ballot: d.ballot,
    reproposed: proposals.length - noops,
    noops,
  });
  observeMode(d, "active");
  children.spawnCommander(COMMANDER_ID, {
    ballot: d.ballot,
    acceptors: d.topology.acceptors,
    q2: d.topology.q2,
    options: d.options,
    out: d.out,
  });
  startBatches(d, proposals, children);
  heartbeat(d);
}

/** Splits proposals into batches of at most maxMessageBytes each and hands them to the commander. */
function startBatches(d: ProposerContext, proposals: PaxosAccept["proposals"], children: Children): void {
  for (const { slot } of proposals) {
    // Slots at or below the truncation point are decided and dropped; ours lie below nextSlot.
    invariant(
      slot > d.truncated && slot < d.nextSlot,
      `proposer ${d.id} proposes slot ${slot} outside (${d.truncated}, ${d.nextSlot})`,
    );
  }
  let batch: PaxosAccept["proposals"] = [];
  let bytes = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const id = `batch-${d.nextBatch++}`;
    for (const p of batch) d.slots.propose(p.slot, p.value, id);
    d.slots.addBatch(
      id,
      batch.map((p) => p.slot),
    );
    children.send(COMMANDER_ID, { type: "accept", batch: id, proposals: batch });
    batch = [];
    bytes = 0;
  };
  for (const p of proposals) {
    const size = valueBytes(p.value);
    if (batch.length > 0 && bytes + size > d.options.maxMessageBytes) flush();
    batch.push(p);
    bytes += size;
  }
  flush();
}

/**
 * New requests get the next free slots; a retransmitted request keeps the slot it has. They
 * leave in one phase-2 batch at once, or, while `maxInflightAccepts` batches are in flight,
 * with everything else that arrives meanwhile in the batch sent when one of those is decided.
 */
export function proposeRequests(d: ProposerContext, from: NodeId, m: PaxosRequest, children: Children): void {
  if (!d.topology.learners.includes(from)) return;
  for (const request of m.requests) {
    if (d.slots.hasRequest(from, request.seq)) continue;
    // Refused requests are retransmitted by their learner: backpressure without a reply.
    if (d.slots.undecided >= d.options.maxPendingSlots) break;
    const value: PaxosValue = { kind: request.kind, data: request.data, origin: from, seq: request.seq };
    d.slots.queue(d.nextSlot++, value);
  }
  sendQueued(d, children);
}

/** Starts the next batch of queued slots, unless the pipeline is full. */
export function sendQueued(d: ProposerContext, children: Children): void {
  if (d.slots.queued === 0 || d.slots.inflight >= d.options.maxInflightAccepts) return;
  startBatches(d, d.slots.takeQueued(), children);
}

/** A learner saw these slots stay undecided: drive them again. */
export function fill(d: ProposerContext, m: PaxosFill, children: Children): void {
  const redrive: PaxosAccept["proposals"] = [];
  const poked = new Set<string>();
  for (const slot of m.slots) {
    const entry = d.slots.get(slot);
    if (entry === undefined) continue;
    if (entry.batch !== null) {
      if (!poked.has(entry.batch)) children.send(COMMANDER_ID, { type: "retransmit", batch: entry.batch });
      poked.add(entry.batch);
    } else if (entry.chosen) {
      // Chosen, but the learner missed the votes: the same value at our ballot is safe.
      redrive.push({ slot, value: entry.value });
    }
  }
  startBatches(d, redrive, children);
}

export function commanderDecided(d: ProposerContext, e: CommanderDecided, children: Children): void {
  if (!sameBallot(e.ballot, d.ballot)) return;
  for (const batch of e.batches) {
    const slots = d.slots.decided(batch);
    d.out.observe({ kind: "decided", proposer: d.id, ballot: d.ballot, slots });
  }
  sendQueued(d, children);
}

/** Steps down after the quorum check failed: no leader known, a fresh timeout before campaigning. */
export function stepDown(d: ProposerContext): void {
  invariant(phase2QuorumSilent(d), `proposer ${d.id} stepped down while it hears a phase-2 quorum`);
  d.leader = null;
  resetLeaderTimer(d);
}

export function tickActive(d: ProposerContext, children: Children): void {
  d.ticksSinceQuorumHeard++;
  d.heartbeatElapsed++;
  if (d.heartbeatElapsed >= d.options.heartbeatTicks) heartbeat(d);
  if (d.slots.inflight > 0) children.send(COMMANDER_ID, { type: "tick" });
}

/**
 * Leaving active mode: the commander stops, and requests not yet chosen are left to the next
 * leader; so are reads not yet confirmed (their learners send them there).
 */
export function resign(d: ProposerContext, children: Children): void {
  children.stop(COMMANDER_ID);
  d.slots.clear();
  d.reads.clear();
  observeMode(d, "passive");
}

// ---------------------------------------------------------------------------------------------
// Dispatch

export function stepProposer(
  d: ProposerContext,
  mode: ProposerMode,
  from: NodeId,
  message: PaxosMessage,
  children: Children,
): ModeChange | null {
  switch (message.type) {
    case "paxos.heartbeat":
      return d.topology.proposers.includes(from) ? hearHeartbeat(d, from, message.body, mode) : null;
    case "paxos.nack":
      return d.topology.acceptors.includes(from) ? hearNack(d, message.body, mode) : null;
    case "paxos.p1b":
      if (!d.topology.acceptors.includes(from)) return null;
      if (mode === "scouting") children.send("scout", { type: "p1b", from, body: message.body });
      return null;
    case "paxos.p2b": {
      if (!d.topology.acceptors.includes(from)) return null;
      learnTruncation(d, message.body.truncated, mode === "active" ? children : undefined);
      if (mode !== "active" || compareBallots(message.body.ballot, d.ballot) !== 0) return null;
      hearAcceptor(d, from);
      // Only votes for slots still in flight: the third acceptor's vote for a decided batch is not news.
      if (message.body.slots.some((slot) => (d.slots.get(slot)?.batch ?? null) !== null)) {
        children.send(COMMANDER_ID, { type: "p2b", from, body: message.body });
      }
      return null;
    }
    case "paxos.alive":
      if (mode === "active" && d.topology.acceptors.includes(from)) hearAlive(d, from, message.body);
      return null;
    case "paxos.request":
      if (mode === "active") proposeRequests(d, from, message.body, children);
      return null;
    case "paxos.read":
      // The machine routes reads to its own `read` action; the rules take them as well.
      if (mode === "active" && d.topology.learners.includes(from)) hearRead(d, from, message.body);
      return null;
    case "paxos.fill":
      if (mode === "active" && d.topology.learners.includes(from)) fill(d, message.body, children);
      return null;
    default:
      return null;
  }
}
