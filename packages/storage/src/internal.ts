/**
 * Storage's internals, for Quorate's own tests, the simulator and the fuzzer: memory disks that
 * outlive a store (a crash loses what was not yet durable) and the schedule that decides when a
 * write becomes durable. No stability promise: applications use "@quorate/storage".
 */
export { MemoryAcceptorDisk } from "./acceptor-memory.js";
export * from "./index.js";
export { type DurabilitySchedule, MemoryDisk, type MemoryStorageOptions } from "./memory.js";
