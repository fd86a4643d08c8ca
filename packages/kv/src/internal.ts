/**
 * The KV's internals, for Quorate's own tests, the simulator and the fuzzer: everything of
 * "@quorate/kv" and "@quorate/kv/nats", and the validators of commands, requests, replies and
 * changes. No stability promise: applications use "@quorate/kv" and "@quorate/kv/nats".
 */
export { kvCommand, kvKey, kvValue, leaseId, leaseTtl } from "./commands.js";
export * from "./index.js";
export * from "./nats.js";
export { kvChange, kvLeaseInfo, kvReply, kvRequest, kvWatchBatch } from "./protocol.js";
