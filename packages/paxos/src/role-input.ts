import type { NodeId } from "@quorate/core";
import type { RoleHostOptions } from "./host.js";
import { type PaxosOptions, type PaxosTopology, resolvePaxosOptions } from "./options.js";

/**
 * What the acceptor and learner machines start from: who they are, the cluster, the protocol's
 * timing, and the log and outbox they share by reference with their host.
 */
export interface RoleInput<Log, Out> {
  id: NodeId;
  topology: PaxosTopology;
  options: PaxosOptions;
  log: Log;
  out: Out;
}

/** The part of a role machine's context taken as it is from its input. */
export function contextFromInput<Log, Out>(input: RoleInput<Log, Out>): RoleInput<Log, Out> {
  return { id: input.id, topology: input.topology, options: input.options, log: input.log, out: input.out };
}

/** A host's machine input from its options and the log and outbox it shares with the machine. */
export function roleInput<Log, Out>(options: RoleHostOptions<unknown>, log: Log, out: Out): RoleInput<Log, Out> {
  return { id: options.id, topology: options.topology, options: resolvePaxosOptions(options.paxos), log, out };
}
