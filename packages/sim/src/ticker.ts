import type { HistoryRecorder } from "@quorate/checker";
import { type ConsensusNode, ErrorCode, isQuorateError, type NodeId } from "@quorate/core";
import { encodeKvCommand, type KvStateMachine, startLeaseTicker } from "@quorate/kv";
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
 * The lease clock of one member incarnation: createKvService's own ticker (startLeaseTicker, every
 * LEASE_TICK_MS by the member's own, drifting clock), proposing through the member. Each tick is recorded in the history (`:f :tick`, `:value [by term
 * elapsed-ms]`), so the linearizability check decides expiry from the ticks as the log ordered
 * them, exactly as the replicated state machine does. A tick refused before it entered the log
 * (not leader, busy, closed) is `:fail`; any other failure `:info`; one still in flight when the
 * incarnation crashes stays without a completion, of unknown outcome (as the service's process
 * would have died with it).
 */
export function startMemberLeaseTicker(deps: LeaseTickerDeps): void {
  const { recorder, process } = deps;
  startLeaseTicker({
    by: deps.member,
    timers: deps.timers,
    tickMs: LEASE_TICK_MS,
    store: deps.store,
    // A member not started yet does not tick.
    leadership: () => (deps.node() === null ? null : deps.leadership()),
    propose: async (tick) => {
      const node = deps.node();
      if (node === null) return;
      const input = [tick.by, tick.term, tick.elapsedMs] as const;
      deps.trace(process, `invoke tick ${JSON.stringify(input)}`);
      const handle = recorder.invoke(process, "tick", "", input);
      try {
        await node.propose(encodeSessionCommand(null, encodeKvCommand({ op: "tick", ...tick })));
        if (!deps.running()) return;
        deps.trace(process, `ok tick ${tick.elapsedMs} ms`);
        recorder.ok(handle);
      } catch (error) {
        if (!deps.running()) return;
        const refused = [ErrorCode.NotLeader, ErrorCode.Busy, ErrorCode.Closed].some((code) =>
          isQuorateError(error, code),
        );
        deps.trace(process, `${refused ? "fail" : "info"} tick: ${errorMessage(error)}`);
        if (refused) recorder.fail(handle);
        else recorder.info(handle);
      }
    },
  });
}
