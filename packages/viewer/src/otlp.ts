import { ErrorCode, QuorateError } from "@quorate/core";

/**
 * OTLP trace decoding: an `ExportTraceServiceRequest` in protobuf or JSON becomes flat span
 * records, each carrying the `service.instance.id` and `service.namespace` of its process. The
 * protobuf reader covers the fields of opentelemetry-proto's trace.proto (v1) that the viewer
 * reads and skips the rest by wire type, so newer fields do not break it.
 */

export type AttributeValue = string | number | boolean | readonly AttributeValue[];
export type Attributes = Readonly<Record<string, AttributeValue>>;

/** OTLP's SpanKind numbers. */
export const SpanKindCode = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;
/** OTLP's StatusCode numbers. */
export const StatusCode = { unset: 0, ok: 1, error: 2 } as const;

export interface SpanEvent {
  readonly name: string;
  /** Unix time in milliseconds, with sub-millisecond fraction. */
  readonly timeMs: number;
  readonly attributes: Attributes;
}

export interface SpanLink {
  readonly traceId: string;
  readonly spanId: string;
}

/** One span as the viewer keeps it: ids in lowercase hex, times in Unix milliseconds. */
export interface SpanRecord {
  readonly traceId: string;
  readonly spanId: string;
  /** Absent for a root span. */
  readonly parentSpanId?: string;
  readonly name: string;
  /** An OTLP SpanKind number (SpanKindCode). */
  readonly kind: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Attributes;
  readonly events: readonly SpanEvent[];
  readonly links: readonly SpanLink[];
  /** An OTLP StatusCode number (StatusCode). */
  readonly status: number;
  readonly statusMessage?: string;
  /** `service.instance.id` of the exporting process, else its `service.name`. */
  readonly instance: string;
  /** `service.namespace` of the exporting process, when set. */
  readonly namespace?: string;
}

const malformed = (detail: string) => new QuorateError(ErrorCode.Rejected, `malformed OTLP trace export: ${detail}`);

// ---------------------------------------------------------------- protobuf

/** A cursor over protobuf wire format. Every read is bounds-checked: a truncated message throws. */
class WireReader {
  #pos: number;
  /** The whole input as a Buffer, shared by every nested reader: strings and ids are decoded in place. */
  private readonly bytes: Buffer;
  constructor(
    bytes: Uint8Array,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.bytes = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    this.#pos = start;
  }

  get done(): boolean {
    return this.#pos >= this.end;
  }

  /** A varint as a Number: exact below 2^53, which covers every count, enum and attribute int we read. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.end) throw malformed("truncated varint");
      const byte = this.bytes[this.#pos++] as number;
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw malformed("varint longer than 10 bytes");
  }

  /** A signed int64 varint (two's complement), as a Number. */
  int64(): number {
    const value = this.varint();
    return value >= 2 ** 63 ? value - 2 ** 64 : value;
  }

  /** Fixed64 Unix nanoseconds as milliseconds; split so the integer milliseconds stay exact past 2^53 ns. */
  fixed64Nanos(): number {
    const start = this.#advance(8);
    const lo = this.bytes.readUInt32LE(start);
    const hi = this.bytes.readUInt32LE(start + 4);
    // ns = hi * 2^32 + lo, and 2^32 = 4294 * 10^6 + 967296: every partial sum stays below 2^53.
    const rest = hi * 967_296 + lo;
    return hi * 4294 + Math.floor(rest / 1e6) + (rest % 1e6) / 1e6;
  }

  double(): number {
    return this.bytes.readDoubleLE(this.#advance(8));
  }

  /** The bytes of a length-delimited field, as a reader over them. */
  sub(): WireReader {
    const length = this.varint();
    if (this.#pos + length > this.end) throw malformed("length past the end of the message");
    const reader = new WireReader(this.bytes, this.#pos, this.#pos + length);
    this.#pos += length;
    return reader;
  }

  string(): string {
    const start = this.#advance(this.varint());
    return this.bytes.toString("utf8", start, this.#pos);
  }

  hex(): string {
    const start = this.#advance(this.varint());
    return this.bytes.toString("hex", start, this.#pos);
  }

  /** Skips a field of `wireType`. */
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.#advance(8);
        return;
      case 2:
        this.sub();
        return;
      case 5:
        this.#advance(4);
        return;
      default:
        throw malformed(`unsupported wire type ${wireType}`);
    }
  }

  /** Calls `field` for each (number, wireType) tag until the end; `field` reads or skips the value. */
  fields(field: (num: number, wireType: number) => void): void {
    while (!this.done) {
      const tag = this.varint();
      field(Math.floor(tag / 8), tag & 7);
    }
  }

  /** Moves past `length` bytes; returns where they start. */
  #advance(length: number): number {
    const start = this.#pos;
    if (start + length > this.end) throw malformed("a field runs past the end of its message");
    this.#pos += length;
    return start;
  }
}

function readAnyValue(r: WireReader): AttributeValue {
  let value: AttributeValue = "";
  r.fields((num, wt) => {
    if (num === 1 && wt === 2) value = r.string();
    else if (num === 2 && wt === 0) value = r.varint() !== 0;
    else if (num === 3 && wt === 0) value = r.int64();
    else if (num === 4 && wt === 1) value = r.double();
    else if (num === 5 && wt === 2) {
      const values: AttributeValue[] = [];
      const array = r.sub();
      array.fields((n, w) => (n === 1 && w === 2 ? values.push(readAnyValue(array.sub())) : array.skip(w)));
      value = values;
    } else if (num === 7 && wt === 2) value = r.hex();
    else r.skip(wt);
  });
  return value;
}

function readKeyValue(r: WireReader, into: Record<string, AttributeValue>): void {
  let key = "";
  let value: AttributeValue = "";
  r.fields((num, wt) => {
    if (num === 1 && wt === 2) key = r.string();
    else if (num === 2 && wt === 2) value = readAnyValue(r.sub());
    else r.skip(wt);
  });
  into[key] = value;
}

function readEvent(r: WireReader): SpanEvent {
  let name = "";
  let timeMs = 0;
  const attributes: Record<string, AttributeValue> = {};
  r.fields((num, wt) => {
    if (num === 1 && wt === 1) timeMs = r.fixed64Nanos();
    else if (num === 2 && wt === 2) name = r.string();
    else if (num === 3 && wt === 2) readKeyValue(r.sub(), attributes);
    else r.skip(wt);
  });
  return { name, timeMs, attributes };
}

function readLink(r: WireReader): SpanLink {
  let traceId = "";
  let spanId = "";
  r.fields((num, wt) => {
    if (num === 1 && wt === 2) traceId = r.hex();
    else if (num === 2 && wt === 2) spanId = r.hex();
    else r.skip(wt);
  });
  return { traceId, spanId };
}

interface Resource {
  readonly instance: string;
  readonly namespace?: string;
}

function resourceOf(attributes: Attributes): Resource {
  const instance = attributes["service.instance.id"] ?? attributes["service.name"] ?? "unknown";
  const namespace = attributes["service.namespace"];
  return { instance: String(instance), ...(namespace === undefined ? {} : { namespace: String(namespace) }) };
}

function readSpan(r: WireReader, resource: Resource): SpanRecord {
  let traceId = "";
  let spanId = "";
  let parentSpanId = "";
  let name = "";
  let kind = 0;
  let startMs = 0;
  let endMs = 0;
  const attributes: Record<string, AttributeValue> = {};
  const events: SpanEvent[] = [];
  const links: SpanLink[] = [];
  let status: number = StatusCode.unset;
  let statusMessage = "";
  r.fields((num, wt) => {
    if (num === 1 && wt === 2) traceId = r.hex();
    else if (num === 2 && wt === 2) spanId = r.hex();
    else if (num === 4 && wt === 2) parentSpanId = r.hex();
    else if (num === 5 && wt === 2) name = r.string();
    else if (num === 6 && wt === 0) kind = r.varint();
    else if (num === 7 && wt === 1) startMs = r.fixed64Nanos();
    else if (num === 8 && wt === 1) endMs = r.fixed64Nanos();
    else if (num === 9 && wt === 2) readKeyValue(r.sub(), attributes);
    else if (num === 11 && wt === 2) events.push(readEvent(r.sub()));
    else if (num === 13 && wt === 2) links.push(readLink(r.sub()));
    else if (num === 15 && wt === 2) {
      const s = r.sub();
      s.fields((n, w) => {
        if (n === 2 && w === 2) statusMessage = s.string();
        else if (n === 3 && w === 0) status = s.varint();
        else s.skip(w);
      });
    } else r.skip(wt);
  });
  return record({
    traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    startMs,
    endMs,
    attributes,
    events,
    links,
    status,
    statusMessage,
    resource,
  });
}

/** Decodes a protobuf `ExportTraceServiceRequest`. Throws a QuorateError (Rejected) on malformed input. */
export function decodeTraceProtobuf(bytes: Uint8Array): SpanRecord[] {
  const spans: SpanRecord[] = [];
  const request = new WireReader(bytes);
  request.fields((num, wt) => {
    if (num !== 1 || wt !== 2) return request.skip(wt);
    const resourceSpans = request.sub();
    const resourceAttributes: Record<string, AttributeValue> = {};
    const scopes: WireReader[] = [];
    resourceSpans.fields((n, w) => {
      if (n === 1 && w === 2) {
        const resource = resourceSpans.sub();
        resource.fields((rn, rw) =>
          rn === 1 && rw === 2 ? readKeyValue(resource.sub(), resourceAttributes) : resource.skip(rw),
        );
      } else if (n === 2 && w === 2) scopes.push(resourceSpans.sub());
      else resourceSpans.skip(w);
    });
    const resource = resourceOf(resourceAttributes);
    for (const scope of scopes) {
      scope.fields((n, w) => (n === 2 && w === 2 ? spans.push(readSpan(scope.sub(), resource)) : scope.skip(w)));
    }
  });
  return spans;
}

// ---------------------------------------------------------------- JSON

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: Json | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const arrayOf = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
const stringOf = (v: Json | undefined): string => (typeof v === "string" ? v : "");

/** OTLP/JSON writes 64-bit integers as strings or numbers; some SDKs as {low, high} halves. */
function nanosToMs(v: Json | undefined): number {
  if (typeof v === "number") return v / 1e6;
  if (typeof v === "string" && /^\d+$/.test(v)) {
    // Split so the integer milliseconds stay exact past 2^53 nanoseconds.
    return v.length <= 6 ? Number(v) / 1e6 : Number(v.slice(0, -6)) + Number(v.slice(-6)) / 1e6;
  }
  if (isObject(v) && typeof v.low === "number" && typeof v.high === "number") {
    return ((v.high >>> 0) * 2 ** 32 + (v.low >>> 0)) / 1e6;
  }
  return 0;
}

function jsonAnyValue(v: Json | undefined): AttributeValue {
  if (!isObject(v)) return "";
  if (typeof v.stringValue === "string") return v.stringValue;
  if (typeof v.boolValue === "boolean") return v.boolValue;
  if (v.intValue !== undefined) return typeof v.intValue === "number" ? v.intValue : Number(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (isObject(v.arrayValue)) return arrayOf(v.arrayValue.values).map(jsonAnyValue);
  if (typeof v.bytesValue === "string") return Buffer.from(v.bytesValue, "base64").toString("hex");
  return "";
}

function jsonAttributes(v: Json | undefined): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = {};
  for (const kv of arrayOf(v)) if (isObject(kv)) attributes[stringOf(kv.key)] = jsonAnyValue(kv.value);
  return attributes;
}

/** Span and trace ids are hex in OTLP/JSON; exporters that send protobuf's JSON mapping send base64. */
function jsonId(v: Json | undefined, hexLength: number): string {
  const s = stringOf(v);
  if (s.length === hexLength && /^[0-9a-fA-F]+$/.test(s)) return s.toLowerCase();
  return s === "" ? "" : Buffer.from(s, "base64").toString("hex");
}

function jsonSpan(s: JsonObject, resource: Resource): SpanRecord {
  const status = isObject(s.status) ? s.status : {};
  return record({
    traceId: jsonId(s.traceId, 32),
    spanId: jsonId(s.spanId, 16),
    parentSpanId: jsonId(s.parentSpanId, 16),
    name: stringOf(s.name),
    kind: typeof s.kind === "number" ? s.kind : 0,
    startMs: nanosToMs(s.startTimeUnixNano),
    endMs: nanosToMs(s.endTimeUnixNano),
    attributes: jsonAttributes(s.attributes),
    events: arrayOf(s.events)
      .filter(isObject)
      .map((e) => ({
        name: stringOf(e.name),
        timeMs: nanosToMs(e.timeUnixNano),
        attributes: jsonAttributes(e.attributes),
      })),
    links: arrayOf(s.links)
      .filter(isObject)
      .map((l) => ({ traceId: jsonId(l.traceId, 32), spanId: jsonId(l.spanId, 16) })),
    status: typeof status.code === "number" ? status.code : StatusCode.unset,
    statusMessage: stringOf(status.message),
    resource,
  });
}

/** Decodes an OTLP/JSON `ExportTraceServiceRequest` (already parsed). Non-span content is ignored. */
export function decodeTraceJson(payload: unknown): SpanRecord[] {
  const root = payload as Json;
  if (!isObject(root)) throw malformed("the JSON body is not an object");
  const spans: SpanRecord[] = [];
  for (const rs of arrayOf(root.resourceSpans)) {
    if (!isObject(rs)) continue;
    const resource = resourceOf(isObject(rs.resource) ? jsonAttributes(rs.resource.attributes) : {});
    for (const ss of arrayOf(rs.scopeSpans ?? rs.instrumentationLibrarySpans)) {
      if (!isObject(ss)) continue;
      for (const s of arrayOf(ss.spans)) if (isObject(s)) spans.push(jsonSpan(s, resource));
    }
  }
  return spans;
}

/**
 * A saved OTLP/JSON export: one request object, an array of them, or one per line (what the
 * OpenTelemetry Collector's file exporter writes).
 */
export function decodeTraceFile(text: string): SpanRecord[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  try {
    const whole = JSON.parse(trimmed) as unknown;
    return Array.isArray(whole) ? whole.flatMap((item) => decodeTraceJson(item)) : decodeTraceJson(whole);
  } catch (err) {
    if (err instanceof QuorateError) throw err;
  }
  return trimmed.split("\n").flatMap((line, i) => {
    if (line.trim() === "") return [];
    try {
      return decodeTraceJson(JSON.parse(line));
    } catch (err) {
      throw err instanceof QuorateError ? err : malformed(`line ${i + 1} is not JSON`);
    }
  });
}

function record(fields: {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Attributes;
  events: SpanEvent[];
  links: SpanLink[];
  status: number;
  statusMessage: string;
  resource: Resource;
}): SpanRecord {
  if (fields.traceId === "" || fields.spanId === "") throw malformed(`span '${fields.name}' has no trace or span id`);
  const span: {
    -readonly [K in keyof SpanRecord]: SpanRecord[K];
  } = {
    traceId: fields.traceId,
    spanId: fields.spanId,
    name: fields.name,
    kind: fields.kind,
    startMs: fields.startMs,
    endMs: fields.endMs,
    attributes: fields.attributes,
    events: fields.events,
    links: fields.links,
    status: fields.status,
    instance: fields.resource.instance,
  };
  if (fields.parentSpanId !== "") span.parentSpanId = fields.parentSpanId;
  if (fields.statusMessage !== "") span.statusMessage = fields.statusMessage;
  if (fields.resource.namespace !== undefined) span.namespace = fields.resource.namespace;
  return span;
}
