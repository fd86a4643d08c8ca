import { NO_BALLOT, type NodeId } from "@quorate/core";
import { seedPrng, withGuards } from "@quorate/core/internal";
import { setup } from "xstate";
import { type CommanderDecided, commanderMachine } from "./commander.js";
import type { PaxosOptions, PaxosTopology } from "./options.js";
import type { PaxosMessage, ProposerMode, ProposerOutbox } from "./outbox.js";
import {
  hearRead,
  type ProposerGuardParams,
  type ProposerReads,
  phase2QuorumSilent,
  readConfirmed,
} from "./proposer-leadership.js";
import {
  adopt,
  type Children,
  commanderDecided,
  type ModeChange,
  observeMode,
  type ProposerContext,
  resetLeaderTimer,
  resign,
  startCampaign,
  stepDown,
  stepProposer,
  tickActive,
  tickPassive,
} from "./proposer-protocol.js";
import type { ProposerSlots } from "./proposer-slots.js";
import { type ScoutAdopted, scoutMachine } from "./scout.js";

/** Events the host sends (time arrives only as `tick`), child reports, and mode changes. */
export type ProposerEvent =
  | { type: "tick" }
  | { type: "message"; from: NodeId; message: PaxosMessage }
  | ScoutAdopted
  | CommanderDecided
  | ModeChange;

export interface ProposerInput {
  id: NodeId;
  topology: PaxosTopology;
  options: PaxosOptions;
  slots: ProposerSlots;
  reads: ProposerReads;
  out: ProposerOutbox;
  /** The highest round made durable by an earlier incarnation: never reused. */
  round: number;
  /** Seeds the randomized leader timeout; the simulator derives it from the run's seed. */
  seed: number | string;
}

/** A child effect, recorded while a rule runs and enqueued after it as an XState action. */
type ChildEffect =
  | { kind: "spawn"; id: string; input: Parameters<Children["spawnCommander"]>[1] }
  | { kind: "send"; child: string; event: Parameters<Children["send"]>[1] }
  | { kind: "stop"; child: string };

function recorder(): { children: Children; effects: ChildEffect[] } {
  const effects: ChildEffect[] = [];
  return {
    effects,
    children: {
      spawnCommander: (id, input) => effects.push({ kind: "spawn", id, input }),
      send: (child, event) => effects.push({ kind: "send", child, event }),
      stop: (child) => effects.push({ kind: "stop", child }),
    },
  };
}

// biome-ignore lint/suspicious/noConfusingVoidType: rules that change no mode return nothing
type Rule = (draft: ProposerContext, event: ProposerEvent, children: Children) => ModeChange | null | void;

const machineSetup = setup({
  types: {
    context: {} as ProposerContext,
    events: {} as ProposerEvent,
    input: {} as ProposerInput,
  },
  actors: { scout: scoutMachine, commander: commanderMachine },
});

/**
 * Runs a rule against a shallow draft of the context, commits the draft with one assign, then
 * enqueues what the rule asked of the children (spawn, send, stop) and any mode change.
 */
function rule(fn: Rule) {
  return machineSetup.enqueueActions(({ context, event, enqueue, check }) => {
    const draft: ProposerContext = { ...context };
    const { children, effects } = recorder();
    const change = withGuards(
      (type, params) => check({ type, params } as never),
      () => fn(draft, event, children),
    );
    enqueue.assign(draft);
    for (const effect of effects) {
      if (effect.kind === "spawn") {
        enqueue.spawnChild("commander", { id: effect.id, input: effect.input });
      } else if (effect.kind === "send") {
        enqueue.sendTo(effect.child, effect.event);
      } else {
        enqueue.stopChild(effect.child);
      }
    }
    if (change) enqueue.raise(change);
  });
}

function stepAs(mode: ProposerMode) {
  return rule((d, e, children) => (e.type === "message" ? stepProposer(d, mode, e.from, e.message, children) : null));
}

/**
 * The proposer: passive (watching the active proposer), scouting (a Scout child runs phase 1
 * for a fresh ballot) or active (its Commander child runs phase 2 for batches of slots). Actions
 * and child logic are named, so `provide()` can swap them for broken variants.
 */
export const proposerMachine = machineSetup
  .extend({
    actions: {
      tickPassive: rule((d) => tickPassive(d)),
      stepPassive: stepAs("passive"),
      stepScouting: stepAs("scouting"),
      stepActive: stepAs("active"),
      /** A learner's reads, while active: answered once a heartbeat round confirms them (guard `readConfirmed`). */
      read: rule((d, e) => {
        if (e.type === "message" && e.message.type === "paxos.read") hearRead(d, e.from, e.message.body);
      }),
      campaign: rule((d) => startCampaign(d)),
      tickScout: machineSetup.enqueueActions(({ enqueue }) => enqueue.sendTo("scout", { type: "tick" })),
      adopt: rule((d, e, children) => (e.type === "scout.adopted" ? adopt(d, e, children) : null)),
      decided: rule((d, e, children) => (e.type === "commander.decided" ? commanderDecided(d, e, children) : null)),
      tickActive: rule((d, _e, children) => tickActive(d, children)),
      resign: rule((d, _e, children) => resign(d, children)),
      enterPassive: rule((d) => observeMode(d, "passive")),
      stepDown: rule((d) => stepDown(d)),
    },
    guards: {
      /** The quorum check; a broken variant that never steps down replaces it with `() => false`. */
      phase2QuorumSilent: ({ context }) => phase2QuorumSilent(context),
      readConfirmed: (_, params: ProposerGuardParams["readConfirmed"]) => readConfirmed(params),
      readFromLearner: ({ context, event }) =>
        event.type === "message" &&
        event.message.type === "paxos.read" &&
        context.topology.learners.includes(event.from),
    },
  })
  .createMachine({
    id: "proposer",
    context: ({ input }) => {
      const context: ProposerContext = {
        id: input.id,
        topology: input.topology,
        options: input.options,
        slots: input.slots,
        reads: input.reads,
        out: input.out,
        round: input.round,
        ballot: NO_BALLOT,
        leader: null,
        leaderBallot: NO_BALLOT,
        silentTicks: 0,
        leaderTimeout: input.options.leaderTimeoutTicks,
        backoffTicks: 0,
        heartbeatElapsed: 0,
        heartbeatRound: 0,
        acceptorRounds: {},
        ticksSinceQuorumHeard: 0,
        acceptorsHeard: {},
        prng: seedPrng(input.seed),
        nextSlot: 1,
        truncated: 0,
        nextBatch: 1,
      };
      resetLeaderTimer(context);
      return context;
    },
    initial: "passive",
    states: {
      passive: {
        on: {
          tick: { actions: "tickPassive" },
          message: { actions: "stepPassive" },
          campaign: { target: "scouting" },
        },
      },
      scouting: {
        entry: "campaign",
        invoke: {
          id: "scout",
          src: "scout",
          input: ({ context }) => ({
            ballot: context.ballot,
            fromSlot: context.truncated + 1,
            acceptors: context.topology.acceptors,
            q1: context.topology.q1,
            options: context.options,
            out: context.out,
          }),
        },
        on: {
          tick: { actions: "tickScout" },
          message: { actions: "stepScouting" },
          "scout.adopted": { target: "active", actions: "adopt" },
          follow: { target: "passive", actions: "enterPassive" },
        },
      },
      active: {
        exit: "resign",
        on: {
          // Checked before the tick counts, so silence steps it down on the tick after an election timeout.
          tick: [{ guard: "phase2QuorumSilent", target: "passive", actions: "stepDown" }, { actions: "tickActive" }],
          message: [{ guard: "readFromLearner", actions: "read" }, { actions: "stepActive" }],
          "commander.decided": { actions: "decided" },
          follow: { target: "passive" },
        },
      },
    },
  });

export type ProposerMachine = typeof proposerMachine;

/** The mode of a proposer machine snapshot. */
export function proposerMode(value: unknown): ProposerMode {
  return value === "active" || value === "scouting" ? value : "passive";
}
