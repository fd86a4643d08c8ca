export * from "./check.js";
export * from "./cli.js";
export * from "./errors.js";
export { HistoryRecorder, parseHistory } from "./history.js";
export type * from "./operation.js";
export type { RevisionOrderFailure } from "./revision-order.js";
