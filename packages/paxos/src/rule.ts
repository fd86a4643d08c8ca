import { type EventObject, enqueueActions } from "xstate";

/**
 * Builds actions that run a rule against a shallow draft of the context and commit the draft
 * with one assign, as Raft's machine does. Logs and values live in host-owned structures the
 * context references, so they never pass through context copies. A rule may return an event
 * to raise (a mode change).
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
