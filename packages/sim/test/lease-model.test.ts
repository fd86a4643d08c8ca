import { checkOperations, HistoryRecorder, type Operation } from "@quorate/checker";
import { decodeKvResult, encodeKvCommand, type KvAnyCommand, KvStateMachine } from "@quorate/kv";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/*
 * The checker's lease model against the replicated state machine itself: commands run one at a
 * time on a real KvStateMachine and are recorded as a client would see them, so every history is
 * linearizable by construction, and one whose outcomes are all known fixes every read.
 */

const keys = ["l/a", "l/b"];

const stepArbitrary = fc.record({
  /** Weighted towards what decides expiry: ticks, and reads that see it. */
  f: fc.constantFrom(
    ...(["grant", "grant", "putLeased", "putLeased", "putLeased", "putLeased"] as const),
    ...(["put", "delete", "keepAlive", "revoke"] as const),
    ...(["tick", "tick", "tick", "tick", "tick", "get", "get", "get", "get", "get"] as const),
  ),
  key: fc.constantFrom(...keys),
  ttlMs: fc.constantFrom(500, 800, 1_000),
  /** Which of the leases granted so far a lease operation names: 0 the latest, 1 the one before, 2 the one before that. */
  lease: fc.constantFrom(0, 0, 0, 0, 1, 2),
  /** Whether a tick comes from a new leader (the other member, the next term): rarely, so the clock advances between. */
  newLeader: fc.constantFrom(false, false, false, false, false, false, false, true),
  elapsedMs: fc.constantFrom(0, 100, 300, 600),
  /** For writes: seen completing, or the reply lost after or before the command applied. */
  outcome: fc.constantFrom("ok", "ok", "ok", "ok", "ok", "ok", "applied-then-info", "info-without-effect"),
});

type Step = typeof stepArbitrary extends fc.Arbitrary<infer T> ? T : never;

/** Runs the steps on a KvStateMachine, one log index each, and records the history. */
function runOnStore(steps: readonly Step[]): Operation[] {
  const store = new KvStateMachine();
  const recorder = new HistoryRecorder();
  const leases: number[] = [];
  let leader = { by: "n1", term: 1 };
  let index = 0;
  for (const step of steps) {
    if (step.f === "get") {
      const value = store.read(step.key);
      recorder.ok(recorder.invoke(0, "get", step.key, null), typeof value === "string" ? value : null);
      continue;
    }
    // Mostly the latest lease, which is likeliest to live; sometimes an older one.
    const lease = leases.length === 0 ? null : (leases.at(-1 - (step.lease % Math.min(3, leases.length))) as number);
    const value = `v${index + 1}`;
    let command: KvAnyCommand;
    let handle: number;
    switch (step.f) {
      case "grant":
        command = { op: "grant", ttlMs: step.ttlMs };
        handle = recorder.invoke(0, "grant", "", step.ttlMs);
        break;
      case "putLeased":
      case "keepAlive":
      case "revoke":
        if (lease === null) continue;
        command = step.f === "putLeased" ? { op: "put", key: step.key, value, lease } : { op: step.f, lease };
        handle =
          step.f === "putLeased"
            ? recorder.invoke(0, "put", step.key, value, lease)
            : recorder.invoke(0, step.f, "", lease);
        break;
      case "put":
        command = { op: "put", key: step.key, value };
        handle = recorder.invoke(0, "put", step.key, value);
        break;
      case "delete":
        command = { op: "delete", key: step.key };
        handle = recorder.invoke(0, "delete", step.key, null);
        break;
      default: {
        if (step.newLeader) leader = { by: leader.by === "n1" ? "n2" : "n1", term: leader.term + 1 };
        const { by, term } = leader;
        command = { op: "tick", by, term, elapsedMs: step.elapsedMs };
        handle = recorder.invoke(0, "tick", "", [by, term, step.elapsedMs]);
      }
    }
    if (step.outcome === "info-without-effect") {
      recorder.info(handle);
      continue;
    }
    index++;
    const result = decodeKvResult(store.apply(encodeKvCommand(command), index));
    if (result === null) throw new Error(`undecodable result of ${command.op}`);
    if (step.outcome === "applied-then-info") {
      recorder.info(handle);
      continue;
    }
    if (!result.ok) {
      // A write naming an ended lease changed nothing; a keep-alive found the lease ended.
      if (command.op === "keepAlive") recorder.ok(handle, null, { applied: false });
      else recorder.fail(handle);
      continue;
    }
    switch (command.op) {
      case "grant":
        leases.push(result.value as number);
        recorder.ok(handle, null, { revision: result.value as number });
        break;
      case "put":
        recorder.ok(handle, null, { revision: result.value as number });
        break;
      case "delete":
        recorder.ok(handle, null, { applied: result.value === true, revision: result.revision ?? null });
        break;
      case "keepAlive":
        recorder.ok(handle, null, { applied: true });
        break;
      case "revoke":
        recorder.ok(handle, null, { applied: result.value === true });
        break;
      default:
        recorder.ok(handle);
    }
  }
  return recorder.operations();
}

describe("the checker's lease model agrees with KvStateMachine", () => {
  it("histories of leases, ticks and writes run on the store are linearizable", () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary, { maxLength: 60, size: "max" }), (steps) => {
        expect(checkOperations(runOnStore(steps)).verdict).toBe("linearizable");
      }),
      { numRuns: 500 },
    );
  });

  it("with every outcome known, a read of the other presence than the store's is refused", () => {
    const known = stepArbitrary.map((step): Step => ({ ...step, outcome: "ok" }));
    fc.assert(
      fc.property(fc.array(known, { minLength: 1, maxLength: 60, size: "max" }), fc.nat(), (steps, pick) => {
        const operations = runOnStore(steps);
        const gets = operations.filter((operation) => operation.f === "get");
        fc.pre(gets.length > 0);
        const corrupted = gets[pick % gets.length] as Operation;
        // Present read as absent; absent read as the last value written to the key before it, if any.
        const earlier = operations.filter(
          (operation) => operation.key === corrupted.key && operation.f === "put" && operation.id < corrupted.id,
        );
        const written = earlier.at(-1);
        const output = corrupted.output !== null ? null : written?.f === "put" ? written.input : "never written";
        const history = operations.map((operation) => (operation === corrupted ? { ...operation, output } : operation));
        expect(checkOperations(history).verdict).toBe("not-linearizable");
      }),
      { numRuns: 500 },
    );
  });
});
