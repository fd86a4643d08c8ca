import type { NodeId } from "@quorate/core";

/** Something that happened in a run, for the failure report and the determinism digest. */
export type TraceEvent =
  | {
      readonly kind: "deliver";
      readonly from: NodeId;
      readonly to: NodeId;
      readonly type: string;
      readonly body: Readonly<Record<string, unknown>>;
    }
  | { readonly kind: "role"; readonly member: NodeId; readonly role: string; readonly term: number }
  | { readonly kind: "fault"; readonly fault: string; readonly detail: string }
  | { readonly kind: "crash" | "restart"; readonly member: NodeId }
  | { readonly kind: "client"; readonly process: number; readonly detail: string };

export interface TraceRecord {
  readonly at: number;
  readonly step: number;
  readonly event: TraceEvent;
}

const FNV_PRIME = 0x01000193;

/**
 * Keeps the last `limit` events of a run and a digest of all of them. The digest covers every
 * field of every event, so two runs of one seed that diverge anywhere get different digests.
 */
export class Trace {
  readonly #ring: (TraceRecord | undefined)[];
  #next = 0;
  #count = 0;
  #hash = 0x811c9dc5;

  constructor(readonly limit: number) {
    this.#ring = new Array<TraceRecord | undefined>(Math.max(1, limit));
  }

  record(at: number, step: number, event: TraceEvent): void {
    this.#ring[this.#next] = { at, step, event };
    this.#next = (this.#next + 1) % this.#ring.length;
    this.#count++;
    this.#mix(at);
    this.#mix(step);
    this.#mixValue(event);
  }

  /** Events recorded over the whole run. */
  get count(): number {
    return this.#count;
  }

  /** Digest of every event recorded, as 8 hex digits. */
  get digest(): string {
    return (this.#hash >>> 0).toString(16).padStart(8, "0");
  }

  /** The last `limit` events, oldest first. */
  recent(): TraceRecord[] {
    const records: TraceRecord[] = [];
    for (let i = 0; i < this.#ring.length; i++) {
      const record = this.#ring[(this.#next + i) % this.#ring.length];
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  #mix(n: number): void {
    // Times are fractional when member clocks drift: mix both halves of the float's bits.
    const low = n | 0;
    const high = Math.floor(n * 1024) | 0;
    this.#hash = Math.imul(this.#hash ^ low, FNV_PRIME);
    this.#hash = Math.imul(this.#hash ^ high, FNV_PRIME);
  }

  #mixString(s: string): void {
    for (let i = 0; i < s.length; i++) this.#hash = Math.imul(this.#hash ^ s.charCodeAt(i), FNV_PRIME);
  }

  #mixValue(value: unknown): void {
    if (typeof value === "number") this.#mix(value);
    else if (typeof value === "string") this.#mixString(value);
    else if (typeof value === "boolean") this.#mix(value ? 1 : 2);
    else if (value instanceof Uint8Array) {
      this.#mix(value.length);
      for (const byte of value) this.#hash = Math.imul(this.#hash ^ byte, FNV_PRIME);
    } else if (Array.isArray(value)) {
      this.#mix(value.length);
      for (const item of value) this.#mixValue(item);
    } else if (typeof value === "object" && value !== null) {
      for (const [key, field] of Object.entries(value)) {
        this.#mixString(key);
        this.#mixValue(field);
      }
    } else {
      this.#mix(3);
    }
  }
}

/** A field of a message body, compactly: byte strings as their size, entry lists as their terms. */
function formatField(value: unknown): string {
  if (value instanceof Uint8Array) return `<${value.length}B>`;
  if (Array.isArray(value)) {
    const items = value.map((item: unknown) =>
      typeof item === "object" && item !== null && "term" in item ? `t${String(item.term)}` : formatField(item),
    );
    return `[${items.join(",")}]`;
  }
  if (typeof value === "object" && value !== null) return `{${formatBody(value as Record<string, unknown>)}}`;
  return String(value);
}

/** A message body's fields on one line. */
function formatBody(body: Readonly<Record<string, unknown>>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(body)) if (value !== undefined) parts.push(`${key}=${formatField(value)}`);
  return parts.join(" ");
}

export function formatTraceEvent(event: TraceEvent): string {
  switch (event.kind) {
    case "deliver":
      return `deliver ${event.from}→${event.to} ${event.type} ${formatBody(event.body)}`;
    case "role":
      return `role    ${event.member} is ${event.role} in term ${event.term}`;
    case "fault":
      return `fault   ${event.fault}${event.detail === "" ? "" : ` ${event.detail}`}`;
    case "crash":
      return `crash   ${event.member}`;
    case "restart":
      return `restart ${event.member}`;
    case "client":
      return `client  c${event.process} ${event.detail}`;
  }
}

export function formatTraceRecord(record: TraceRecord): string {
  return `${record.at.toFixed(1).padStart(9)}ms #${String(record.step).padEnd(6)} ${formatTraceEvent(record.event)}`;
}
