import { type EventObject, enqueueActions } from "xstate";

/**
 * Evaluates one of the machine's named guards (`setup({ guards })`) with `params`, so that a
 * guard replaced with `machine.provide({ guards })` takes effect inside the rules as well.
 */
export type RuleCheck = (guard: string, params?: object) => boolean;

/**
 * Builds XState actions that run a protocol rule against a shallow draft of the machine's
 * context and commit the draft with one assign. Logs, outboxes and values live in host-owned
 * structures the context references, so they never pass through context copies. A rule may
 * return an event to raise (a role or mode change). Raft and every Paxos role build their
 * actions with it.
 *
 * The rule gets XState's `check` for the machine's named guards. XState evaluates a guard
 * against the context as it was before the action, not against the draft the rule is changing,
 * so a rule passes whatever the guard must judge (the draft included) in `params`.
 */
export function ruleFor<C extends object, E extends EventObject>() {
  // biome-ignore lint/suspicious/noConfusingVoidType: most rules raise nothing and return nothing
  return <EE extends E>(fn: (draft: C, event: EE, check: RuleCheck) => E | null | void) =>
    enqueueActions<C, E, undefined, E, never, never, never, never, never>(({ context, event, enqueue, check }) => {
      const draft = { ...context };
      const raised = fn(draft, event as EE, (type, params) => check({ type, params } as never));
      enqueue.assign(draft);
      if (raised) enqueue.raise(raised);
    });
}
