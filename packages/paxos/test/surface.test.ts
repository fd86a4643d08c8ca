import { messageSchema } from "@quorate/core";
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

  it("loading the package registers every Paxos message schema with the codec", () => {
    for (const [type, schema] of Object.entries(internal.paxosMessageSchemas)) {
      expect(messageSchema(type), type).toBe(schema);
    }
  });

  it("the internal entry point adds each role's machine, rules and log, and the wire messages", () => {
    for (const name of Object.keys(paxos)) expect(internal).toHaveProperty(name);
    for (const rules of [internal.acceptorRules, internal.proposerRules, internal.learnerRules]) {
      expect(Object.keys(rules).length).toBeGreaterThan(0);
    }
    for (const machine of [internal.acceptorMachine, internal.proposerMachine, internal.learnerMachine]) {
      expect(machine.id).toBeTypeOf("string");
    }
    expect(typeof internal.AcceptorLog).toBe("function");
    expect(typeof internal.LearnerLog).toBe("function");
    expect(Object.keys(internal.paxosMessageSchemas).sort()).toEqual([
      "paxos.alive",
      "paxos.fill",
      "paxos.heartbeat",
      "paxos.learned",
      "paxos.nack",
      "paxos.p1a",
      "paxos.p1b",
      "paxos.p2a",
      "paxos.p2b",
      "paxos.read",
      "paxos.read.index",
      "paxos.repeat",
      "paxos.repeated",
      "paxos.request",
      "paxos.snapshot.chunk",
      "paxos.snapshot.req",
    ]);
  });
});
