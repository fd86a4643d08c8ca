import type { msgpackStateMachine, QueryableStateMachine } from "../../packages/service/src/index.js";

/** Adds `by` to counter `add`; answers the counter after it. */
export type CounterCommand = { readonly add: string; readonly by: number };
/** Reads counter `get`. */
export type CounterQuery = { readonly get: string };

export function countersWith(factory: typeof msgpackStateMachine): QueryableStateMachine;
