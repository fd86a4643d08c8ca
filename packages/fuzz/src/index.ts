export {
  checkDecode,
  DECODER_TARGET,
  emptyCounts,
  type FuzzCounts,
  type FuzzFailure,
  fuzzDecoder,
  toHex,
} from "./decoder.js";
export {
  ALL_TYPES,
  CLASS_WEIGHTS,
  type FrameClass,
  type FuzzFrame,
  type FuzzTarget,
  nextFrame,
  PAXOS_TYPES,
  RAFT_TYPES,
  validBody,
} from "./frames.js";
export { fuzzLive, type LiveOptions, type LiveResult, liveProblems } from "./live.js";
