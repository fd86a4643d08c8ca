import { serviceInstanceId } from "./service/discovery.js";

/** Any of these means the operator asked for telemetry; without them the SDK is not started. */
const CONFIGURING_VARIABLES = [
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
  "OTEL_TRACES_EXPORTER",
  "OTEL_METRICS_EXPORTER",
];

export interface TelemetryHandle {
  readonly enabled: boolean;
  /** Flushes what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK for a service process from the standard OTEL_* variables
 * (endpoint, protocol http/protobuf or http/json, service name, resource attributes, sampler,
 * batch processor). Libraries only use the API; this is the one place an SDK is configured, for
 * every role. `service.namespace` defaults to the cluster and `service.instance.id` to
 * `<cluster>-<member>` (as in service discovery), so two clusters in one backend do not collide;
 * OTEL_RESOURCE_ATTRIBUTES overrides both.
 */
export async function startTelemetry(
  env: Readonly<Record<string, string | undefined>>,
  member: { cluster: string; id: string },
): Promise<TelemetryHandle> {
  const requested = CONFIGURING_VARIABLES.some((name) => (env[name] ?? "") !== "");
  if (!requested || env.OTEL_SDK_DISABLED === "true") return { enabled: false, shutdown: async () => {} };
  // Loaded only when asked for: the SDK and its exporters take a noticeable part of a second to import.
  const { NodeSDK, resources } = await import("@opentelemetry/sdk-node");
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME === undefined ? { serviceName: "quorate" } : {}),
    resource: resources.resourceFromAttributes({
      "service.namespace": member.cluster,
      "service.instance.id": serviceInstanceId(member.cluster, member.id),
    }),
  });
  sdk.start();
  return { enabled: true, shutdown: () => sdk.shutdown() };
}
