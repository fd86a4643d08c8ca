import type { NodeId, Timers } from "@quorate/core";

/** A tick of the lease clock as the member that leads proposes it (the `tick` command's fields). */
export interface LeaseTick {
  readonly by: NodeId;
  readonly term: number;
  readonly elapsedMs: number;
  readonly seq: number;
}

export interface LeaseTickerOptions {
  /** The member proposing the ticks. */
  readonly by: NodeId;
  readonly timers: Timers;
  /** How often the member that leads ticks, by `timers`. */
  readonly tickMs: number;
  /** The store: there is nothing to time while it holds no lease. */
  readonly store: { readonly leaseCount: number };
  /** Whether this member leads now, and its term (Raft term, Paxos ballot round); null when it does not. */
  readonly leadership: () => { readonly term: number } | null;
  /** Proposes the tick; settles once it is applied or failed. Failures are the caller's to log. */
  readonly propose: (tick: LeaseTick) => Promise<unknown>;
}

/**
 * The lease clock of one member: while it leads and leases exist, a tick every `tickMs` carrying
 * the ms since its previous tick on the monotonic clock of `timers`. One tick in flight at a time,
 * so the intervals of the ticks never overlap and a slow round's time is counted by the next tick.
 * A tick that fails loses its interval (leases then live longer, never shorter). The first tick of
 * a reign carries 0: the state machine would count it as 0 anyway when another proposer ticked
 * last, and this also covers this member's own earlier reign, whose end it saw (a new term). Each
 * tick is numbered (`seq`), so that one chosen twice counts once. createKvService runs it, and the
 * simulator runs the same code on its virtual clock.
 */
export function startLeaseTicker(options: LeaseTickerOptions): { stop(): void } {
  const { timers, store, by } = options;
  let reignTerm: number | null = null;
  let lastTickAt = 0;
  let ticking = false;
  let seq = 0;
  const handle = timers.setInterval(() => {
    if (ticking) return;
    const leads = options.leadership();
    const now = timers.now();
    if (leads === null) {
      reignTerm = null;
      return;
    }
    const elapsedMs = reignTerm === leads.term ? Math.floor(now - lastTickAt) : 0;
    reignTerm = leads.term;
    if (store.leaseCount === 0) {
      // Nothing to time; a lease granted from now on counts from the next tick.
      lastTickAt = now;
      return;
    }
    // The fraction of a ms left over is counted by the next tick.
    lastTickAt = elapsedMs === 0 ? now : lastTickAt + elapsedMs;
    ticking = true;
    seq++;
    options
      .propose({ by, term: leads.term, elapsedMs, seq })
      .catch(() => {})
      .finally(() => {
        ticking = false;
      });
  }, options.tickMs);
  return { stop: () => timers.clearInterval(handle) };
}
