export { MinHeap } from "./heap.js";
export type { MemoryNetworkOptions, NetworkFaults } from "./network.js";
export { MemoryNetwork, MemoryTransport, NO_FAULTS } from "./network.js";
