import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync, inflateSync } from "node:zlib";
import { ErrorCode, QuorateError } from "@quorate/core";
import { decodeTraceJson, decodeTraceProtobuf, type SpanRecord } from "./otlp.js";
import { type RoundQuery, RoundStore, type RoundStoreOptions } from "./store.js";

/** An export larger than this (after decompression too) is refused with 413. */
export const MAX_EXPORT_BYTES = 32 * 1024 * 1024;

export interface ViewerOptions extends RoundStoreOptions {
  /** Port to listen on; 0 picks a free one. Default 4318, OTLP/HTTP's port. */
  readonly port?: number;
  /** Address to listen on. Default 127.0.0.1. */
  readonly listen?: string;
  /** Jaeger UI base URL: each round links to its trace there. */
  readonly jaegerUrl?: string;
  /** Spans to start with (a saved export). */
  readonly spans?: readonly SpanRecord[];
}

export interface Viewer {
  readonly store: RoundStore;
  readonly server: Server;
  /** `http://<listen>:<port>`: the page, and the OTLP endpoint (`<url>/v1/traces`). */
  readonly url: string;
  /** Exports received and spans decoded so far; rejected exports (malformed, too large). */
  readonly counters: { exports: number; spans: number; rejected: number };
  close(): Promise<void>;
}

const STATIC_DIR = fileURLToPath(new URL("../static/", import.meta.url));
const STATIC_FILES: Readonly<Record<string, string>> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/app.js": "app.js",
  "/style.css": "style.css",
};
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req) {
    length += (chunk as Buffer).length;
    if (length > MAX_EXPORT_BYTES) throw new HttpError(413, `export larger than ${MAX_EXPORT_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  const encoding = (req.headers["content-encoding"] ?? "identity").toLowerCase();
  try {
    if (encoding === "gzip") return gunzipSync(body, { maxOutputLength: MAX_EXPORT_BYTES });
    if (encoding === "deflate") return inflateSync(body, { maxOutputLength: MAX_EXPORT_BYTES });
  } catch (err) {
    throw new HttpError(400, `cannot decompress the ${encoding} body: ${err instanceof Error ? err.message : err}`);
  }
  if (encoding !== "identity") throw new HttpError(415, `unsupported content-encoding ${encoding}`);
  return body;
}

const isJson = (req: IncomingMessage) => (req.headers["content-type"] ?? "").toLowerCase().includes("json");

/** Decodes one OTLP/HTTP trace export by its content type. */
export function decodeTraceExport(body: Buffer, json: boolean): SpanRecord[] {
  if (!json) return decodeTraceProtobuf(body);
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString("utf8"));
  } catch {
    throw new QuorateError(ErrorCode.Rejected, "malformed OTLP trace export: the body is not JSON");
  }
  return decodeTraceJson(payload);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(body);
}

/** The OTLP success answer: an empty Export*ServiceResponse in the request's encoding. */
function sendExportOk(req: IncomingMessage, res: ServerResponse): void {
  if (isJson(req)) sendJson(res, 200, {});
  else {
    res.writeHead(200, { "content-type": "application/x-protobuf" });
    res.end();
  }
}

function roundQuery(params: URLSearchParams): RoundQuery {
  const text = (name: string) => {
    const v = params.get(name);
    return v === null || v === "" ? undefined : v;
  };
  const number = (name: string) => {
    const v = text(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new HttpError(400, `${name} must be a non-negative number`);
    return n;
  };
  const query: Record<string, string | number> = {};
  for (const key of ["cluster", "protocol", "kind", "outcome"] as const) {
    const v = text(key);
    if (v !== undefined) query[key] = v;
  }
  for (const key of ["minDurationMs", "offset", "limit"] as const) {
    const v = number(key);
    if (v !== undefined) query[key] = v;
  }
  return query as RoundQuery;
}

/**
 * Starts the viewer: an OTLP/HTTP receiver (`POST /v1/traces`, protobuf or JSON, gzip) that
 * keeps a window of rounds, the page that shows them, and its JSON API (`/api/rounds`,
 * `/api/rounds/<id>`). Metrics and logs are accepted and dropped, so a process can point its
 * whole OTLP endpoint here.
 */
export async function startViewer(options: ViewerOptions = {}): Promise<Viewer> {
  const store = new RoundStore(options);
  if (options.spans !== undefined) store.add(options.spans);
  const counters = { exports: 0, spans: 0, rejected: 0 };
  const jaegerUrl = options.jaegerUrl?.replace(/\/+$/, "");

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://viewer");
    if (req.method === "POST") {
      if (url.pathname === "/v1/traces") {
        const spans = decodeTraceExport(await readBody(req), isJson(req));
        store.add(spans);
        counters.exports++;
        counters.spans += spans.length;
        return sendExportOk(req, res);
      }
      if (url.pathname === "/v1/metrics" || url.pathname === "/v1/logs") {
        await readBody(req);
        return sendExportOk(req, res);
      }
      throw new HttpError(404, `no such endpoint ${url.pathname}`);
    }
    if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, `${req.method} not allowed`);
    if (url.pathname === "/api/config") {
      return sendJson(res, 200, { jaegerUrl: jaegerUrl ?? null });
    }
    if (url.pathname === "/api/rounds") {
      return sendJson(res, 200, store.query(roundQuery(url.searchParams)));
    }
    if (url.pathname.startsWith("/api/rounds/")) {
      const model = store.round(decodeURIComponent(url.pathname.slice("/api/rounds/".length)));
      if (model === undefined) throw new HttpError(404, "no such round in the window");
      return sendJson(res, 200, model);
    }
    const file = STATIC_FILES[url.pathname];
    if (file === undefined) throw new HttpError(404, `no such page ${url.pathname}`);
    const body = await readFile(`${STATIC_DIR}${file}`);
    res.writeHead(200, { "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(req.method === "HEAD" ? undefined : body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : err instanceof QuorateError ? 400 : 500;
      if (req.url?.startsWith("/v1/")) counters.rejected++;
      if (!res.headersSent) sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    });
  });
  const listen = options.listen ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 4318, listen, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = listen.includes(":") ? `[${listen}]` : listen;
  return {
    store,
    server,
    url: `http://${host}:${port}`,
    counters,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err === undefined ? resolve() : reject(err)));
      }),
  };
}
