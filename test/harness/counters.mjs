// The application state machine of the service tests: named counters. Plain JavaScript, taking
// msgpackStateMachine as an argument, so that tests (importing sources) and member processes
// the tests start (importing the built packages) run one and the same definition.

/** @param {typeof import("../../packages/service/src/index.js").msgpackStateMachine} msgpackStateMachine */
export function countersWith(msgpackStateMachine) {
  /** @type {Map<string, number>} */
  let values = new Map();
  return msgpackStateMachine({
    isCommand: (v) => typeof v === "object" && v !== null && typeof v.add === "string" && Number.isSafeInteger(v.by),
    isQuery: (v) => typeof v === "object" && v !== null && typeof v.get === "string",
    apply(command) {
      const value = (values.get(command.add) ?? 0) + command.by;
      values.set(command.add, value);
      return value;
    },
    query: (query) => values.get(query.get) ?? 0,
    snapshot: () => [...values].sort(([a], [b]) => a.localeCompare(b)),
    restore(state) {
      values = new Map(state);
    },
  });
}
