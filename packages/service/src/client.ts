import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { bytes, packValue, unpackValue } from "@quorate/core";
import { ServiceCaller } from "./caller.js";
import { type ReplicatedRequest, replicatedReply, type ServiceReply } from "./protocol.js";

export interface ReplicatedClientOptions {
  /** A connection the application already has; the client never closes it. */
  readonly nats: NatsConnection;
  readonly cluster: string;
  /** The service's group (its `service`, when serveReplicated was given one). */
  readonly group: string;
  /** First subject token(s); default "quorate". */
  readonly prefix?: string;
  /** The name this client's sessions are opened with (made unique by the cluster). Default: a UUID. */
  readonly clientId?: string;
  /** How long a call may take, retries included. Default 10000 ms. */
  readonly timeoutMs?: number;
  /** How long one attempt waits for its reply. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  /** Fail at once with Unreachable when no member serves the group, instead of retrying until the timeout. */
  readonly failWithoutResponders?: boolean;
}

/**
 * A client of a state machine served by serveReplicated. Commands and queries are the
 * application's own types, msgpack-encoded. A command runs in a session: however often it is
 * retried, it is applied at most once, and a call that fails with a definite error (anything
 * but QUORATE_INDETERMINATE) was not applied at all. A query is linearizable: it sees every
 * command acknowledged before it was sent (ReadIndex on Raft, a read marker in the log on Paxos).
 */
export class ReplicatedClient<Command, Result, Query = never, Answer = never> {
  readonly #caller: ServiceCaller<ReplicatedRequest, ServiceReply<string | Uint8Array>>;

  private constructor(caller: ServiceCaller<ReplicatedRequest, ServiceReply<string | Uint8Array>>) {
    this.#caller = caller;
  }

  static async connect<Command, Result, Query = never, Answer = never>(
    options: ReplicatedClientOptions,
  ): Promise<ReplicatedClient<Command, Result, Query, Answer>> {
    const caller = new ServiceCaller<ReplicatedRequest, ServiceReply<string | Uint8Array>>({
      nc: options.nats,
      cluster: options.cluster,
      prefix: options.prefix,
      service: options.group,
      name: options.clientId ?? randomUUID(),
      reply: replicatedReply,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
      ...(options.failWithoutResponders === undefined ? {} : { failWithoutResponders: options.failWithoutResponders }),
    });
    return new ReplicatedClient(caller);
  }

  /** Applies a command exactly once and returns the state machine's result. */
  command(command: Command): Promise<Result> {
    const encoded = packValue(command);
    return this.#caller.traced("command", {}, async () => {
      const result = await this.#caller.write(
        "command",
        (session) => ({ op: "command", command: encoded, session }),
        bytes,
      );
      return unpackValue(result) as Result;
    });
  }

  /** Answers a query from state that reflects every command acknowledged before the call. */
  query(query: Query): Promise<Answer> {
    const encoded = packValue(query);
    return this.#caller.traced("query", {}, async () => {
      const answer = await this.#caller.idempotent({ op: "query", query: encoded }, this.#caller.deadline(), bytes);
      return unpackValue(answer) as Answer;
    });
  }

  /** Fails calls still retrying and refuses new ones. Does not close the NATS connection. */
  async close(): Promise<void> {
    this.#caller.close();
  }
}
