/**
 * Core's internals, for Quorate's own packages, tests and the simulator: the host kit every
 * protocol host is built from, assertions, the seeded PRNG, manual timers and timeline marks.
 * No stability promise: applications use "@quorate/core".
 */
export { invariant } from "./errors.js";
export { asError, type OutboundMessage, Ticker } from "./host.js";
export * from "./host-lifecycle.js";
export * from "./host-options.js";
export * from "./host-outbox.js";
export * from "./host-pipeline.js";
export * from "./host-requests.js";
export * from "./index.js";
export { RateLimiter } from "./log.js";
export * from "./machine-rule.js";
export * from "./manual-timers.js";
export * from "./prng.js";
export * from "./timeline.js";
