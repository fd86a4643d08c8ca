import type { NodeId, PaxosBallot } from "@quorate/core";
import { ruleFor } from "@quorate/core/internal";
import { setup } from "xstate";
import {
  type AcceptorContext,
  type AcceptorGuardParams,
  type AcceptorLog,
  acceptsBallot,
  reportsVotes,
  stepAcceptor,
} from "./acceptor-protocol.js";
import type { AcceptorOutbox, PaxosMessage } from "./outbox.js";
import { contextFromInput, type RoleInput } from "./role-input.js";

export type AcceptorEvent = { type: "message"; from: NodeId; message: PaxosMessage };

export interface AcceptorInput extends RoleInput<AcceptorLog, AcceptorOutbox> {
  /** The durable promise recovered from storage. */
  promised: PaxosBallot;
}

const rule = ruleFor<AcceptorContext, AcceptorEvent>();

/**
 * The acceptor: one state, because its whole behaviour is the promise and the votes. The
 * `step` action is the rule set; its rules that a broken variant may drop are named guards,
 * which the simulator replaces with `provide({ guards })`.
 */
export const acceptorMachine = setup({
  types: {
    context: {} as AcceptorContext,
    events: {} as AcceptorEvent,
    input: {} as AcceptorInput,
  },
  actions: {
    step: rule((d, e) => stepAcceptor(d, e.from, e.message)),
  },
  guards: {
    acceptsBallot: (_, params: AcceptorGuardParams["acceptsBallot"]) => acceptsBallot(params),
    reportsVotes: (_, params: AcceptorGuardParams["reportsVotes"]) => reportsVotes(params),
  },
}).createMachine({
  id: "acceptor",
  context: ({ input }) => ({
    ...contextFromInput(input),
    promised: input.promised,
    checkpoints: {},
  }),
  initial: "serving",
  states: {
    serving: {
      on: { message: { actions: "step" } },
    },
  },
});

export type AcceptorMachine = typeof acceptorMachine;
