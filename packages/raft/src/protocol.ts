/**
 * The Raft rules as functions over a draft of the machine's context. The machine (machine.ts)
 * decides which rule runs in which role; these functions change the draft, append to the
 * in-memory log and queue effects in the outbox. No IO, no clock, no global randomness.
 *
 * One module per part of the paper, under rules/: the context and its primitives, quorums,
 * each follower's progress, sending AppendEntries, reads (ReadIndex and leases), the follower,
 * elections, the leader, transfer, membership, the paper's rules as named guards, and the message
 * dispatch: the term rules and one step function per role (step).
 */
export * from "./rules/append.js";
export * from "./rules/context.js";
export * from "./rules/election.js";
export * from "./rules/follower.js";
export * from "./rules/guards.js";
export * from "./rules/leader.js";
export * from "./rules/membership.js";
export * from "./rules/progress.js";
export * from "./rules/quorum.js";
export * from "./rules/read.js";
export * from "./rules/step.js";
export * from "./rules/transfer.js";
