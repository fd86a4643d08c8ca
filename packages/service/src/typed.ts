import { ErrorCode, packValue, QuorateError, unpackValue, type Validator } from "@quorate/core";
import type { QueryableStateMachine } from "./replicated.js";

/**
 * A state machine in the application's own types. Every method must be deterministic and must
 * not throw (apply runs on every replica at the same log position); the validators keep
 * malformed commands out of the log and malformed queries away from `query`.
 */
export interface TypedStateMachine<Command, Result, Query, Answer, State> {
  readonly isCommand: Validator<Command>;
  readonly isQuery: Validator<Query>;
  /** Applies a committed command; `index` is its log position. */
  apply(command: Command, index: number): Result;
  query(query: Query): Answer;
  /** The whole state, msgpack-encodable. */
  snapshot(): State;
  /** Replaces the whole state with one `snapshot` returned (decoded, unvalidated: check it). */
  restore(state: unknown): void;
}

function decode(data: Uint8Array): unknown {
  try {
    return unpackValue(data);
  } catch {
    return undefined;
  }
}

/**
 * Encodes a typed state machine's commands, results, queries and answers with msgpack, for
 * serveReplicated; ReplicatedClient encodes its side alike. A command that reaches the log
 * without passing `isCommand` (only a writer that bypasses the service could put one there)
 * yields null and changes nothing.
 */
export function msgpackStateMachine<Command, Result, Query, Answer, State>(
  typed: TypedStateMachine<Command, Result, Query, Answer, State>,
): QueryableStateMachine {
  return {
    accepts: (command) => typed.isCommand(decode(command)),
    apply(command, index) {
      const decoded = decode(command);
      return packValue(typed.isCommand(decoded) ? typed.apply(decoded, index) : null);
    },
    query(query) {
      const decoded = decode(query);
      if (!typed.isQuery(decoded)) throw new QuorateError(ErrorCode.Rejected, "not a query this service answers");
      return packValue(typed.query(decoded));
    },
    snapshot: () => packValue(typed.snapshot()),
    restore: (snapshot) => typed.restore(unpackValue(snapshot)),
  };
}
