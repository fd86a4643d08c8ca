import { readFile } from "node:fs/promises";
import { ErrorCode, QuorateError } from "@quorate/core";
import { DEFAULT_MAX_ROUNDS, decodeTraceFile, startViewer } from "@quorate/viewer";
import { type CommandSpec, parse, positiveInt, usageHint } from "../args.js";
import { type CommandIo, Exit } from "../io.js";

export const VIEWER_SPEC = {
  name: "viewer",
  summary:
    "Show each Raft round, election and Paxos phase as a sequence diagram in the browser. The viewer is also an OTLP/HTTP receiver: point OTEL_EXPORTER_OTLP_ENDPOINT (or a Collector's second exporter) at it.",
  options: {
    port: {
      type: "string",
      value: "<port>",
      help: "port for the page and OTLP/HTTP (0: any free port)",
      default: "4318",
      flagOnly: true,
    },
    listen: { type: "string", value: "<address>", help: "address to listen on", default: "127.0.0.1", flagOnly: true },
    file: {
      type: "string",
      value: "<file>",
      help: "open a saved OTLP/JSON trace export (one request, an array, or one per line)",
      flagOnly: true,
    },
    "jaeger-url": { type: "string", value: "<url>", help: "Jaeger UI to link each round's trace to", flagOnly: true },
    "max-rounds": {
      type: "string",
      value: "<n>",
      help: "rounds kept in memory; the oldest leave first",
      default: String(DEFAULT_MAX_ROUNDS),
      flagOnly: true,
    },
  },
  details: "Runs until SIGINT/SIGTERM. Metrics and logs sent to it are accepted and dropped.",
} as const satisfies CommandSpec;

function portNumber(value: string | undefined): number {
  if (value === undefined) return 4318;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new QuorateError(ErrorCode.Config, `--port must be a port number, 0 to 65535 (got '${value}')`);
  return n;
}

function jaegerUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new QuorateError(ErrorCode.Config, `--jaeger-url must be an http(s) URL (got '${value}')`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new QuorateError(ErrorCode.Config, `--jaeger-url must be an http(s) URL (got '${value}')`);
  return value;
}

/** Serves the viewer until the stop signal. */
export async function viewerCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args, VIEWER_SPEC);
  if (positionals.length > 0)
    throw new QuorateError(ErrorCode.Config, `unexpected argument '${positionals[0]}'\n${usageHint(VIEWER_SPEC)}`);
  const port = portNumber(values.port);
  const maxRounds = positiveInt(values["max-rounds"], "max-rounds", DEFAULT_MAX_ROUNDS);
  const jaeger = jaegerUrl(values["jaeger-url"]);
  let spans: ReturnType<typeof decodeTraceFile> = [];
  if (values.file !== undefined) {
    let text: string;
    try {
      text = await readFile(values.file, "utf8");
    } catch (err) {
      throw new QuorateError(ErrorCode.Config, `cannot read --file ${values.file}: ${(err as Error).message}`);
    }
    spans = decodeTraceFile(text);
  }
  const viewer = await startViewer({
    port,
    listen: values.listen ?? "127.0.0.1",
    maxRounds,
    spans,
    ...(jaeger === undefined ? {} : { jaegerUrl: jaeger }),
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "EADDRINUSE" || err.code === "EADDRNOTAVAIL" || err.code === "EACCES")
      throw new QuorateError(ErrorCode.Config, `cannot listen on ${values.listen ?? "127.0.0.1"}:${port}: ${err.code}`);
    throw err;
  });
  if (values.file !== undefined)
    io.stdout(`read ${spans.length} spans from ${values.file}: ${viewer.store.roundCount} rounds\n`);
  io.stdout(`viewer: ${viewer.url}/  (OTLP/HTTP endpoint: OTEL_EXPORTER_OTLP_ENDPOINT=${viewer.url})\n`);
  const signal = await io.stopSignal;
  await viewer.close();
  io.stdout(`viewer stopped (${signal}); ${viewer.counters.spans} spans received\n`);
  return Exit.Ok;
}
