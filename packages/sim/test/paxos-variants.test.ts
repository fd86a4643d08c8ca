import { NO_BALLOT } from "@quorate/core";
import {
  type AcceptorMachine,
  type AcceptorStorage,
  acceptorMachine,
  type LearnerGuardParams,
  type LearnerMachine,
  learnerMachine,
  learnerRules,
  type ProposerMachine,
  type ProposerStorage,
  proposerMachine,
} from "@quorate/paxos/internal";
import { describe, expect, test } from "vitest";
import {
  DEFAULT_NEMESIS,
  formatFailure,
  type NemesisOptions,
  type PaxosAdapterOptions,
  paxosAdapter,
  type SimulationMode,
  type SimulationResult,
  simulate,
} from "../src/index.js";

/*
 * Deliberately broken variants of the real Paxos roles: storage that forgets, and machines with
 * one of their named rules replaced with `provide()`: a guard (rules that decide), or an action
 * where the rule is a step of its own (refusing requests, handing the host a read index). The
 * variant list reads like the rule list.
 */

/** (1) A restarted acceptor comes back without the promise it had made durable. */
function forgetPromiseOnRestart(storage: AcceptorStorage): AcceptorStorage {
  return {
    load: async () => ({ ...(await storage.load()), promised: NO_BALLOT }),
    write: (write) => storage.write(write),
    close: () => storage.close(),
  };
}

/** (2) An acceptor that votes on every p2a, whatever it promised; everything else as the real one. */
const acceptBelowPromiseMachine: AcceptorMachine = acceptorMachine.provide({
  guards: { acceptsBallot: () => true },
});

/**
 * (3) An acceptor that promises without reporting its votes, so a new leader may take a chosen
 * slot for a hole. Nothing local looks wrong: only the chosen values tell.
 */
const hideVotesMachine: AcceptorMachine = acceptorMachine.provide({
  guards: { reportsVotes: () => false },
});

/** (4) A restarted proposer comes back without its durable round, so it may start a round it used. */
function forgetRoundOnRestart(storage: ProposerStorage): ProposerStorage {
  return {
    loadRound: async () => {
      await storage.loadRound();
      return 0;
    },
    writeRound: (round) => storage.writeRound(round),
  };
}

/** (5) A learner that takes a value as chosen on the first vote it hears for it. */
const learnOnOneVoteMachine: LearnerMachine = learnerMachine.provide({
  guards: { chosenByQuorum: (_, { voters }: LearnerGuardParams["chosenByQuorum"]) => voters >= 1 },
});

/** (6) Learners that refuse every client request as if no proposer were active: safe, but nothing is ever committed. */
const refuseRequestsMachine: LearnerMachine = learnerMachine.provide({
  actions: {
    propose: ({ context, event }) => {
      if (event.type !== "propose") return;
      context.out.proposals.push({ id: event.id, ok: false, leader: null });
    },
  },
});

/**
 * (7) An active proposer that never steps down: its quorum check is switched off, so once it
 * hears no acceptor it goes on heartbeating, the other proposers stay passive, and nothing is
 * chosen again.
 */
const neverStepDownMachine: ProposerMachine = proposerMachine.provide({
  guards: { phase2QuorumSilent: () => false },
});

/**
 * (8) An active proposer that answers a read at once with its read index, without a heartbeat
 * round: one deposed without knowing it (partitioned, paused) serves reads that miss writes
 * the new leader already had acknowledged.
 */
const readWithoutConfirmationMachine: ProposerMachine = proposerMachine.provide({
  guards: { readConfirmed: () => true },
});

/**
 * (9) A learner that answers its reads as soon as the proposer gives their read index, without
 * waiting to apply through it: a learner behind the others serves what it has. Waiting for the
 * applier is the host's part, so the variant replaces the machine's one named action that hands
 * the host a read index, `hearReadIndex`, rather than a guard.
 */
const readBeforeApplyMachine: LearnerMachine = learnerMachine.provide({
  actions: {
    hearReadIndex: ({ context, event }) => {
      if (event.type !== "message" || event.message.type !== "paxos.read.index") return;
      learnerRules.hearReadIndex(context, { ...event.message.body, slot: 0 });
    },
  },
});

const VARIANTS = {
  "forget-promise": { wrapAcceptorStorage: forgetPromiseOnRestart },
  "accept-below-promise": { acceptorMachine: acceptBelowPromiseMachine },
  "hide-votes": { acceptorMachine: hideVotesMachine },
  "forget-round": { wrapProposerStorage: forgetRoundOnRestart },
  "learn-on-one-vote": { learnerMachine: learnOnOneVoteMachine },
  "refuse-requests": { learnerMachine: refuseRequestsMachine },
  "never-step-down": { proposerMachine: neverStepDownMachine },
  "read-without-confirmation": { proposerMachine: readWithoutConfirmationMachine },
  "read-before-apply": { learnerMachine: readBeforeApplyMachine },
} satisfies Record<string, PaxosAdapterOptions>;

/** The net must catch each broken variant within this many seeds. */
const MAX_SEEDS = 200;

/**
 * Liveness with the leader left deaf by the heal (it sends, it hears nobody): the one-way cut a
 * proposer without a quorum check never recovers from, while a majority still talks both ways.
 */
const DEAF_LEADER_NEMESIS: NemesisOptions = { ...DEFAULT_NEMESIS, deafLeaderAfterHeal: true };

/** Runs seeds from 1 until one fails; returns that run, or null if none did within MAX_SEEDS. */
async function firstCaught(
  variant: keyof typeof VARIANTS,
  mode: SimulationMode,
  nemesis: NemesisOptions = DEFAULT_NEMESIS,
): Promise<SimulationResult | null> {
  for (let seed = 1; seed <= MAX_SEEDS; seed++) {
    const result = await simulate({ seed, mode, nemesis, protocol: paxosAdapter(VARIANTS[variant]) });
    if (result.violation !== null) return result;
  }
  return null;
}

describe("broken variants of the Paxos roles are caught", () => {
  const cases: { variant: keyof typeof VARIANTS; caughtBy: string }[] = [
    { variant: "forget-promise", caughtBy: "promise-regression" },
    { variant: "accept-below-promise", caughtBy: "accept-below-promise" },
    { variant: "hide-votes", caughtBy: "at-most-one-chosen" },
    { variant: "forget-round", caughtBy: "ballot-reuse" },
    { variant: "learn-on-one-vote", caughtBy: "learned-unchosen" },
    // Stale-read alone caught it once in about 300 seeds: the read-quorum check sees it at once.
    { variant: "read-without-confirmation", caughtBy: "read-quorum" },
    { variant: "read-before-apply", caughtBy: "stale-read" },
  ];
  for (const { variant, caughtBy } of cases) {
    test(`${variant}: caught by ${caughtBy} within ${MAX_SEEDS} seeds`, async () => {
      const caught = await firstCaught(variant, "safety");
      expect(caught, `${variant} was not caught in ${MAX_SEEDS} seeds`).not.toBeNull();
      const result = caught as SimulationResult;
      console.info(
        `${variant}: caught at seed ${result.seed} by ${result.violation?.kind}: ${result.violation?.message}`,
      );
      expect(result.violation?.kind, formatFailure(result)).toBe(caughtBy);
    }, 300_000);
  }

  test(`never-step-down: caught by liveness within ${MAX_SEEDS} seeds once the leader turns deaf`, async () => {
    const caught = await firstCaught("never-step-down", "liveness", DEAF_LEADER_NEMESIS);
    expect(caught, `never-step-down was not caught in ${MAX_SEEDS} seeds`).not.toBeNull();
    const result = caught as SimulationResult;
    console.info(`never-step-down: caught at seed ${result.seed}: ${result.violation?.message}`);
    expect(result.violation?.kind, formatFailure(result)).toBe("liveness");
    expect(result.faults["deaf-leader"]).toBe(1);
    // The real proposer steps down and the cluster recovers on the same seeds.
    for (let seed = 1; seed <= result.seed; seed++) {
      const real = await simulate({ seed, mode: "liveness", nemesis: DEAF_LEADER_NEMESIS, protocol: paxosAdapter() });
      expect(real.violation, formatFailure(real)).toBeNull();
    }
  }, 300_000);

  test("a cluster that never commits a client write fails liveness mode", async () => {
    const result = await simulate({ seed: 1, mode: "liveness", protocol: paxosAdapter(VARIANTS["refuse-requests"]) });
    expect(result.violation?.kind, formatFailure(result)).toBe("liveness");
  });
});
