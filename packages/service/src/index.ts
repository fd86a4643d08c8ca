export {
  type Attempt,
  checkCallerOptions,
  checkTimeout,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  type Failure,
  MAX_BACKOFF_MS,
  ServiceCaller,
  type ServiceCallerOptions,
} from "./caller.js";
export {
  type ChangePublisher,
  type ChangePublisherOptions,
  type ChangeSignal,
  type ChangeSource,
  ChangeSubscription,
  type ChangeSubscriptionOptions,
  publishChanges,
  type RevisionedChange,
} from "./changes.js";
export { ReplicatedClient, type ReplicatedClientOptions } from "./client.js";
export {
  DEFAULT_PLACEMENT_INTERVAL_MS,
  type GroupServiceOptions,
  type ReplicatedGroups,
  type ServeGroupsOptions,
  serveGroups,
} from "./groups.js";
export { type GroupLeadership, type LeadershipMove, placeLeaders } from "./placement.js";
export {
  MAX_FORWARD_HOPS,
  type OpenRequest,
  openRequest,
  queueGroupOf,
  type ReplicatedRequest,
  replicatedReply,
  replicatedRequest,
  type ServiceFailure,
  type ServiceReply,
  type ServiceReplyCode,
  type ServiceRequest,
  serviceReply,
  serviceReplyCode,
} from "./protocol.js";
export {
  openSession,
  type PaxosServiceOptions,
  proposeInSession,
  type QueryableStateMachine,
  type RaftServiceOptions,
  type ReplicatedMetrics,
  type ReplicatedRoleStatus,
  type ReplicatedService,
  type ReplicatedStatus,
  type ServeReplicatedOptions,
  serveReplicated,
  sessionFailure,
} from "./replicated.js";
export {
  CONTENT_TYPE_HEADER,
  JSON_CONTENT_TYPE,
  type JsonCodec,
  type RequestServer,
  type RequestServerOptions,
  serveRequests,
} from "./server.js";
export * from "./sessions.js";
export { SharedTimers } from "./shared-timers.js";
export { msgpackStateMachine, type TypedStateMachine } from "./typed.js";
