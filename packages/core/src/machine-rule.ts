import { type EventObject, enqueueActions } from "xstate";

/**
 * Builds XState actions that run a protocol rule against a shallow draft of the machine's
 * context and commit the draft with one assign. Logs, outboxes and values live in host-owned
 * structures the context references, so they never pass through context copies. A rule may
 * return an event to raise (a role or mode change). Raft and every Paxos role build their
 * actions with it.
 */
export function ruleFor<C extends object, E extends EventObject>() {
  // biome-ignore lint/suspicious/noConfusingVoidType: most rules raise nothing and return nothing
  return <EE extends E>(fn: (draft: C, event: EE) => E | null | void) =>
    enqueueActions<C, E, undefined, E, never, never, never, never, never>(({ context, event, enqueue }) => {
      const draft = { ...context };
      const raised = fn(draft, event as EE);
      enqueue.assign(draft);
      if (raised) enqueue.raise(raised);
    });
}
