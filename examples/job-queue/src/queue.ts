import { msgpackStateMachine } from "@quorate/service";

/** Enqueue a job under an id the producer picks (a retry adds nothing), or take the oldest job. */
export type JobCommand = { readonly enqueue: string; readonly job: string } | { readonly take: string };
export type Job = { readonly job: string; readonly payload: string };
/** enqueue: whether the job was new; take: the job, or null when the queue is empty. */
export type JobResult = boolean | Job | null;

const isText = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= 256;
const fields = (v: unknown): Record<string, unknown> => (typeof v === "object" && v !== null ? { ...v } : {});

/**
 * The replicated job queue. A take names itself (the taker's request id): taking again under
 * the same name returns the same job, so a taker that lost a reply retries without losing the
 * job or taking a second one. Deterministic, as every replica applies it alike.
 */
export function jobQueue() {
  let pending = new Map<string, string>();
  let seen = new Set<string>();
  let taken = new Map<string, Job>();
  return msgpackStateMachine({
    isCommand: (v): v is JobCommand => {
      const c = fields(v);
      return (isText(c.enqueue) && isText(c.job)) || isText(c.take);
    },
    isQuery: (v): v is "pending" => v === "pending",
    apply(command: JobCommand): JobResult {
      if ("take" in command) {
        const earlier = taken.get(command.take);
        if (earlier !== undefined) return earlier;
        const [oldest] = pending;
        if (oldest === undefined) return null;
        pending.delete(oldest[0]);
        const job = { job: oldest[0], payload: oldest[1] };
        taken.set(command.take, job);
        return job;
      }
      if (seen.has(command.job)) return false;
      seen.add(command.job);
      pending.set(command.job, command.enqueue);
      return true;
    },
    query: () => pending.size,
    snapshot: () => ({ pending: [...pending], seen: [...seen], taken: [...taken] }),
    restore(state) {
      const s = state as { pending: [string, string][]; seen: string[]; taken: [string, Job][] };
      pending = new Map(s.pending);
      seen = new Set(s.seen);
      taken = new Map(s.taken);
    },
  });
}
