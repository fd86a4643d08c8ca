import { type EventObject, enqueueActions } from "xstate";
import { invariant } from "./errors.js";

/**
 * Evaluates one of the machine's named guards (`setup({ guards })`) with `params`, so that a
 * guard replaced with `machine.provide({ guards })` takes effect inside the rules as well.
 */
export type RuleCheck = (guard: string, params?: object) => boolean;

/**
 * The machine's guard evaluation for the rule running now. It is held here for the length of one
 * rule, not attached to the draft: defining a property on every draft moved drafts off V8's fast
 * object shapes and made a Raft ReadIndex read 30–60% dearer in CPU (`pnpm bench:host`).
 */
let runningCheck: RuleCheck | null = null;

/** Runs one rule with `check` as the machine's evaluation of its named guards (see `checkRule`). */
export function withGuards<T>(check: RuleCheck, rule: () => T): T {
  invariant(runningCheck === null, "rules do not nest");
  runningCheck = check;
  try {
    return rule();
  } finally {
    runningCheck = null;
  }
}

/**
 * Evaluates one of the running machine's named guards, as `provide()` may have replaced it.
 * Protocols wrap it with their guards' names and parameter types (Raft's `check`, each Paxos
 * role's `checkAcceptor`, `checkLearner`, `checkProposer`).
 */
export function checkRule(guard: string, params: object): boolean {
  invariant(runningCheck !== null, `the rule ${guard} was asked for outside a machine action`);
  return runningCheck(guard, params);
}

/**
 * Builds XState actions that run a protocol rule against a shallow draft of the machine's
 * context and commit the draft with one assign. Logs, outboxes and values live in host-owned
 * structures the context references, so they never pass through context copies. A rule may
 * return an event to raise (a role or mode change). Raft and every Paxos role build their
 * actions with it.
 *
 * While the rule runs, `checkRule` reaches XState's `check` for the machine's named guards.
 * XState evaluates a guard against the context as it was before the action, not against the
 * draft the rule is changing, so a rule passes whatever the guard must judge (the draft
 * included) in `params`.
 */
export function ruleFor<C extends object, E extends EventObject>() {
  // biome-ignore lint/suspicious/noConfusingVoidType: most rules raise nothing and return nothing
  return <EE extends E>(fn: (draft: C, event: EE) => E | null | void) =>
    enqueueActions<C, E, undefined, E, never, never, never, never, never>(({ context, event, enqueue, check }) => {
      const draft = { ...context };
      const raised = withGuards(
        (type, params) => check({ type, params } as never),
        () => fn(draft, event as EE),
      );
      enqueue.assign(draft);
      if (raised) enqueue.raise(raised);
    });
}
