import type { HistoryRecorder } from "@quorate/checker";
import { type ConsensusNode, ErrorCode, isQuorateError, type NodeId } from "@quorate/core";
import { encodeKvCommand, type KvStateMachine } from "@quorate/kv";
import { encodeSessionCommand } from "@quorate/service";
import { errorMessage } from "./protocol.js";
import type { VirtualTimers } from "./scheduler.js";

/** How often the member that leads ticks the lease clock, by its own clock: createKvService's default. */
export const LEASE_TICK_MS = 250;

export interface LeaseTickerDeps {
  readonly member: NodeId;
  /** The history process the ticks are recorded under: one per member incarnation. */
  readonly process: number;
  readonly timers: VirtualTimers;
  readonly store: KvStateMachine;
  /** The member's node once it runs, else null. */
  readonly node: () => ConsensusNode | null;
  /** Whether this incarnation still runs: a crashed one records no completion (its ticks' outcomes are unknown). */
  readonly running: () => boolean;
  /** Whether the member leads now, and its term (0 without terms), as createKvService's `leadership`. */
  readonly leadership: () => { readonly term: number } | null;
  readonly recorder: HistoryRecorder;
  readonly trace: (process: number, detail: string) => void;
}

/**
 * The lease clock of one member incarnation, as createKvService runs it: while the member leads
 * and its store holds leases, every LEASE_TICK_MS (by the member's own, drifting clock) it
 * proposes a tick carrying the ms since its previous tick, the first of a reign carrying 0, one
 * tick in flight at a time. Each tick is recorded in the history (`:f :tick`, `:value [by term
 * elapsed-ms]`), so the linearizability check decides expiry from the ticks as the log ordered
 * them, exactly as the replicated state machine does. A tick refused before it entered the log
 * (not leader, busy, closed) is `:fail`; any other failure `:info`; one still in flight when the
 * incarnation crashes stays without a completion, of unknown outcome (as the service's process
 * would have died with it).
 */
export function startLeaseTicker(deps: LeaseTickerDeps): void {
  const { timers, store, recorder, process } = deps;
  let reignTerm: number | null = null;
  let lastTickAt = 0;
  let ticking = false;
  let tickSeq = 0;
  timers.setInterval(() => {
    const node = deps.node();
    if (ticking || node === null) return;
    const leads = deps.leadership();
    const now = timers.now();
    if (leads === null) {
      reignTerm = null;
      return;
    }
    const elapsedMs = reignTerm === leads.term ? Math.floor(now - lastTickAt) : 0;
    reignTerm = leads.term;
    if (store.leaseCount === 0) {
      lastTickAt = now;
      return;
    }
    lastTickAt = elapsedMs === 0 ? now : lastTickAt + elapsedMs;
    ticking = true;
    const input = [deps.member, leads.term, elapsedMs] as const;
    deps.trace(process, `invoke tick ${JSON.stringify(input)}`);
    const handle = recorder.invoke(process, "tick", "", input);
    tickSeq++;
    const tick = encodeKvCommand({ op: "tick", by: deps.member, term: leads.term, elapsedMs, seq: tickSeq });
    node.propose(encodeSessionCommand(null, tick)).then(
      () => {
        ticking = false;
        if (!deps.running()) return;
        deps.trace(process, `ok tick ${elapsedMs} ms`);
        recorder.ok(handle);
      },
      (error: unknown) => {
        ticking = false;
        if (!deps.running()) return;
        const refused = [ErrorCode.NotLeader, ErrorCode.Busy, ErrorCode.Closed].some((code) =>
          isQuorateError(error, code),
        );
        deps.trace(process, `${refused ? "fail" : "info"} tick: ${errorMessage(error)}`);
        if (refused) recorder.fail(handle);
        else recorder.info(handle);
      },
    );
  }, LEASE_TICK_MS);
}
