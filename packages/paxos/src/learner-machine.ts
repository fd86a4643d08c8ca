import { NO_BALLOT, type NodeId } from "@quorate/core";
import { ruleFor } from "@quorate/core/internal";
import { setup } from "xstate";
import type { LearnerLog } from "./learner-log.js";
import {
  chosenByQuorum,
  forgetReads,
  hearReadIndex,
  type LearnerContext,
  type LearnerGuardParams,
  propose,
  read,
  stepLearner,
  tick,
} from "./learner-protocol.js";
import type { LearnerOutbox, LearnerRequest, PaxosMessage } from "./outbox.js";
import { contextFromInput, type RoleInput } from "./role-input.js";

/** Events the host sends. Time arrives only as `tick`. */
export type LearnerEvent =
  | { type: "tick" }
  | { type: "message"; from: NodeId; message: PaxosMessage }
  | { type: "propose"; id: number; requests: readonly LearnerRequest[] }
  | { type: "read"; batch: number }
  | { type: "forgetReads"; batches: readonly number[] };

export type LearnerInput = RoleInput<LearnerLog, LearnerOutbox>;

const rule = ruleFor<LearnerContext, LearnerEvent>();

type MessageEvent = Extract<LearnerEvent, { type: "message" }>;

/**
 * The learner: one state; its rules are named actions and guards, so `provide()` can swap one.
 * A proposer's read index has an action of its own (`hearReadIndex`): a broken variant answers
 * reads without waiting to apply through their index.
 */
export const learnerMachine = setup({
  types: {
    context: {} as LearnerContext,
    events: {} as LearnerEvent,
    input: {} as LearnerInput,
  },
  actions: {
    step: rule<MessageEvent>((d, e) => stepLearner(d, e.from, e.message)),
    hearReadIndex: rule<MessageEvent>((d, e) => {
      if (e.message.type === "paxos.read.index") hearReadIndex(d, e.message.body);
    }),
    tick: rule((d) => tick(d)),
    propose: rule<Extract<LearnerEvent, { type: "propose" }>>((d, e) => propose(d, e.id, e.requests)),
    read: rule<Extract<LearnerEvent, { type: "read" }>>((d, e) => read(d, e.batch)),
    forgetReads: rule<Extract<LearnerEvent, { type: "forgetReads" }>>((d, e) => forgetReads(d, e.batches)),
  },
  guards: {
    chosenByQuorum: (_, params: LearnerGuardParams["chosenByQuorum"]) => chosenByQuorum(params),
    readIndexFromProposer: ({ context, event }) =>
      event.type === "message" &&
      event.message.type === "paxos.read.index" &&
      context.topology.proposers.includes(event.from),
  },
}).createMachine({
  id: "learner",
  context: ({ input }) => ({
    ...contextFromInput(input),
    leader: null,
    leaderBallot: NO_BALLOT,
    leaderSilentTicks: 0,
    heartbeatElapsed: 0,
    retransmitElapsed: 0,
    stallTicks: 0,
    catchupRounds: 0,
    lastApplied: input.log.applied,
    peerCheckpoints: {},
    needSnapshotThrough: 0,
  }),
  initial: "learning",
  states: {
    learning: {
      on: {
        tick: { actions: "tick" },
        message: [{ guard: "readIndexFromProposer", actions: "hearReadIndex" }, { actions: "step" }],
        propose: { actions: "propose" },
        read: { actions: "read" },
        forgetReads: { actions: "forgetReads" },
      },
    },
  },
});

export type LearnerMachine = typeof learnerMachine;
