import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** The parts of an OTLP/JSON span the telemetry tests read, with its process's resource attributes. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  /** `service.instance.id` of the exporting process. */
  instance: string;
  /** `service.namespace` of the exporting process. */
  namespace: string;
  attributes?: OtlpAttribute[];
}

/** A span attribute's value as OTLP/JSON carries it (64-bit integers as strings). */
export function spanAttribute(span: OtlpSpan, key: string): string | number | boolean | undefined {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  if (value.intValue !== undefined) return Number(value.intValue);
  return value.stringValue ?? value.boolValue ?? value.doubleValue;
}

export interface OtlpReceiver {
  server: Server;
  url: string;
  spans: OtlpSpan[];
  metricNames: Set<string>;
}

type OtlpAttribute = {
  key: string;
  value?: { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
};
const resourceAttribute = (attrs: OtlpAttribute[], key: string) =>
  attrs.find((a) => a.key === key)?.value?.stringValue ?? "?";

/** A minimal OTLP/HTTP receiver (http/json) on loopback, standing in for a collector. */
export function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: OtlpSpan[] = [];
  const metricNames = new Set<string>();
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on("end", () => {
      try {
        const payload = JSON.parse(body);
        if (req.url === "/v1/traces") {
          for (const rs of payload.resourceSpans ?? []) {
            const attrs: OtlpAttribute[] = rs.resource?.attributes ?? [];
            const instance = resourceAttribute(attrs, "service.instance.id");
            const namespace = resourceAttribute(attrs, "service.namespace");
            for (const ss of rs.scopeSpans ?? [])
              for (const s of ss.spans ?? []) spans.push({ ...s, instance, namespace });
          }
        } else if (req.url === "/v1/metrics") {
          for (const rm of payload.resourceMetrics ?? [])
            for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) metricNames.add(m.name);
        }
      } catch {
        // Not JSON: not ours to read.
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}`, spans, metricNames });
    }),
  );
}

/** The OTEL_* environment that points a member process at `receiver`, exporting quickly. */
export function otlpEnv(receiver: Pick<OtlpReceiver, "url">): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_SERVICE_NAME: "quorate-it",
    OTEL_BSP_SCHEDULE_DELAY: "100",
    OTEL_METRIC_EXPORT_INTERVAL: "500",
  };
}
