import { describe, expect, it } from "vitest";
import * as paxos from "../src/index.js";
import * as internal from "../src/internal.js";

describe("@quorate/paxos's surfaces", () => {
  it("the public entry point exports the roles, their options, topology and storage, and no internals", () => {
    expect(Object.keys(paxos).sort()).toEqual([
      "Acceptor",
      "DEFAULT_PAXOS_OPTIONS",
      "Learner",
      "Proposer",
      "learnerStorageIn",
      "paxosRoleId",
      "proposerStorageIn",
      "resolveTopology",
    ]);
  });

  it("the internal entry point adds each role's machine, rules and log", () => {
    for (const name of Object.keys(paxos)) expect(internal).toHaveProperty(name);
    for (const rules of [internal.acceptorRules, internal.proposerRules, internal.learnerRules]) {
      expect(Object.keys(rules).length).toBeGreaterThan(0);
    }
    for (const machine of [internal.acceptorMachine, internal.proposerMachine, internal.learnerMachine]) {
      expect(machine.id).toBeTypeOf("string");
    }
    expect(typeof internal.AcceptorLog).toBe("function");
    expect(typeof internal.LearnerLog).toBe("function");
  });
});
