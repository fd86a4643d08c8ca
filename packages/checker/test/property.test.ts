import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkOperations, HistoryRecorder, type Operation } from "../src/index.js";

const values = ["x", "y", "xy", ""];

const commandArbitrary = fc.record({
  key: fc.constantFrom("a", "b"),
  f: fc.constantFrom("get", "put", "append", "cas", "delete"),
  value: fc.constantFrom(...values),
  expected: fc.option(fc.constantFrom(...values), { nil: null }),
  /** For writes: whether the client saw it complete, fail, or lost the reply (info) after or before it applied. */
  outcome: fc.constantFrom("ok", "fail", "applied-then-info", "info-without-effect"),
  /** Whether a get of a never-written key returns "" (Porcupine's convention) rather than nil. */
  readsNeverWrittenAsEmpty: fc.boolean(),
});

type Command = typeof commandArbitrary extends fc.Arbitrary<infer T> ? T : never;

/** Runs the commands one at a time against a plain map (undefined: never written) and records what clients see. */
function runSequentially(commands: readonly Command[]): Operation[] {
  const store = new Map<string, string | null>();
  const recorder = new HistoryRecorder();
  for (const command of commands) {
    const current = store.get(command.key);
    if (command.f === "get") {
      const handle = recorder.invoke(0, "get", command.key, null);
      const neverWritten = command.readsNeverWrittenAsEmpty ? "" : null;
      recorder.ok(handle, current === undefined ? neverWritten : current);
      continue;
    }
    let next: string | null;
    let handle: number;
    if (command.f === "cas") {
      handle = recorder.invoke(0, "cas", command.key, [command.expected, command.value]);
      const holds =
        current === command.expected ||
        (current === undefined && (command.expected === null || command.expected === ""));
      if (!holds) {
        recorder.fail(handle);
        continue;
      }
      next = command.value;
    } else if (command.f === "delete") {
      handle = recorder.invoke(0, "delete", command.key, null);
      next = null;
    } else {
      handle = recorder.invoke(0, command.f, command.key, command.value);
      next = command.f === "put" ? command.value : (current ?? "") + command.value;
    }
    if (command.outcome === "ok" || command.outcome === "applied-then-info") store.set(command.key, next);
    if (command.outcome === "ok") recorder.ok(handle);
    else if (command.outcome === "fail") recorder.fail(handle);
    else recorder.info(handle);
  }
  return recorder.operations();
}

describe("sequential histories", () => {
  it("are linearizable when they come from running the model", () => {
    fc.assert(
      fc.property(fc.array(commandArbitrary, { maxLength: 40 }), (commands) => {
        expect(checkOperations(runSequentially(commands)).verdict).toBe("linearizable");
      }),
    );
  });

  it("are not linearizable once a get returns a value never written", () => {
    fc.assert(
      fc.property(fc.array(commandArbitrary, { minLength: 1, maxLength: 40 }), fc.nat(), (commands, pick) => {
        const operations = runSequentially(commands);
        const gets = operations.filter((operation) => operation.f === "get");
        fc.pre(gets.length > 0);
        const corrupted = gets[pick % gets.length] as Operation;
        const history = operations.map((operation) =>
          operation === corrupted ? { ...operation, output: "never written" } : operation,
        );
        const result = checkOperations(history);
        expect(result.verdict).toBe("not-linearizable");
        expect(result.witness?.map((operation) => operation.key)).toContain(corrupted.key);
      }),
    );
  });
});
