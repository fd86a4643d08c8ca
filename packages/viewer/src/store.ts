import { invariant } from "@quorate/core/internal";
import {
  buildRoundModel,
  ROUND_SPAN,
  type RoundFamily,
  type RoundKind,
  type RoundModel,
  type RoundSummary,
  roundKindOfProducer,
  summarizeRound,
} from "./model.js";
import { SpanKindCode, type SpanRecord } from "./otlp.js";

export interface RoundStoreOptions {
  /** Rounds kept; past it the oldest to arrive is dropped with its spans. */
  readonly maxRounds?: number;
  /** Spans kept (rounds' and the requests around them); past it the oldest to arrive is dropped. */
  readonly maxSpans?: number;
}

export const DEFAULT_MAX_ROUNDS = 20_000;
export const DEFAULT_MAX_SPANS = 400_000;
/** How far up a round's parents the store looks for the request it serves. */
const MAX_ANCESTORS = 4;

export interface RoundQuery {
  readonly cluster?: string;
  readonly protocol?: string;
  readonly kind?: string;
  readonly outcome?: string;
  readonly minDurationMs?: number;
  readonly offset?: number;
  readonly limit?: number;
}

export interface KindStats {
  readonly kind: RoundKind;
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface RoundPage {
  /** Changes whenever a span arrives: a page that saw this version has nothing new to fetch. */
  readonly version: number;
  /** Rounds matching the query. */
  readonly total: number;
  readonly offset: number;
  /** Newest first. */
  readonly rounds: readonly RoundSummary[];
  /** Per kind, over the rounds matching every filter but the kind. */
  readonly stats: readonly KindStats[];
  /** The values each filter can take, over the whole window. */
  readonly facets: {
    readonly clusters: string[];
    readonly protocols: string[];
    readonly kinds: string[];
    readonly outcomes: string[];
  };
}

export const MAX_PAGE = 1000;

interface RoundEntry {
  summary: RoundSummary | undefined;
  dirty: boolean;
}

/**
 * The viewer's window of recent rounds: spans in arrival order, indexed by parent, and the
 * rounds they form. Spans of one round arrive from several processes in any order; a round's
 * summary is recomputed lazily whenever a span of its family arrives.
 */
export class RoundStore {
  readonly #spans = new Map<string, SpanRecord>();
  readonly #children = new Map<string, Set<string>>();
  readonly #rounds = new Map<string, RoundEntry>();
  readonly #maxRounds: number;
  readonly #maxSpans: number;
  #version = 0;
  #sorted: RoundSummary[] | null = null;

  constructor(options: RoundStoreOptions = {}) {
    this.#maxRounds = options.maxRounds ?? DEFAULT_MAX_ROUNDS;
    this.#maxSpans = options.maxSpans ?? DEFAULT_MAX_SPANS;
    invariant(this.#maxRounds >= 1 && this.#maxSpans >= 1, "the window must hold at least one round and one span");
  }

  get version(): number {
    return this.#version;
  }

  get spanCount(): number {
    return this.#spans.size;
  }

  get roundCount(): number {
    return this.#rounds.size;
  }

  add(spans: readonly SpanRecord[]): void {
    for (const span of spans) this.#add(span);
    if (spans.length > 0) {
      this.#version++;
      this.#sorted = null;
    }
  }

  #add(span: SpanRecord): void {
    if (this.#spans.has(span.spanId)) this.#remove(span.spanId);
    this.#spans.set(span.spanId, span);
    if (span.parentSpanId !== undefined) {
      let siblings = this.#children.get(span.parentSpanId);
      if (siblings === undefined) {
        siblings = new Set();
        this.#children.set(span.parentSpanId, siblings);
      }
      siblings.add(span.spanId);
    }
    for (const id of this.#roundsTouchedBy(span)) this.#touch(id);
    while (this.#spans.size > this.#maxSpans) {
      const [oldest] = this.#spans.keys();
      if (oldest === undefined) break;
      this.#remove(oldest);
    }
    while (this.#rounds.size > this.#maxRounds) {
      const [oldest] = this.#rounds.keys();
      if (oldest === undefined) break;
      this.#evictRound(oldest);
    }
  }

  /**
   * Whether a PRODUCER span sends for a round: its name says so, or its parent is a round
   * already known (a read round's sends may be of any type).
   */
  #sendsForRound(span: SpanRecord): boolean {
    const parent = span.parentSpanId;
    return parent !== undefined && (roundKindOfProducer(span.name) !== undefined || this.#rounds.has(parent));
  }

  /** The rounds whose family `span` belongs to, or is the parent of. */
  #roundsTouchedBy(span: SpanRecord): string[] {
    if (ROUND_SPAN[span.name] !== undefined) return [span.spanId];
    const parent = span.parentSpanId;
    if (span.kind === SpanKindCode.producer && parent !== undefined && this.#sendsForRound(span)) return [parent];
    if (span.kind === SpanKindCode.consumer && parent !== undefined) {
      const producer = this.#spans.get(parent);
      if (producer?.parentSpanId !== undefined && this.#sendsForRound(producer)) return [producer.parentSpanId];
      return [];
    }
    // A request span that arrived after the rounds it started.
    const ids: string[] = [];
    for (const child of this.#children.get(span.spanId) ?? []) {
      const c = this.#spans.get(child);
      if (c !== undefined && ROUND_SPAN[c.name] !== undefined) ids.push(c.spanId);
      else if (c?.name === "publish paxos.request")
        for (const g of this.#children.get(c.spanId) ?? []) if (this.#rounds.has(g)) ids.push(g);
    }
    return ids;
  }

  #touch(id: string): void {
    const entry = this.#rounds.get(id);
    if (entry === undefined) this.#rounds.set(id, { summary: undefined, dirty: true });
    else entry.dirty = true;
  }

  #remove(spanId: string): void {
    const span = this.#spans.get(spanId);
    if (span === undefined) return;
    this.#spans.delete(spanId);
    if (span.parentSpanId !== undefined) {
      const siblings = this.#children.get(span.parentSpanId);
      siblings?.delete(spanId);
      if (siblings?.size === 0) this.#children.delete(span.parentSpanId);
    }
    if (this.#rounds.has(spanId)) this.#rounds.delete(spanId);
    for (const id of this.#roundsTouchedBy(span)) if (this.#rounds.has(id)) this.#touch(id);
  }

  #evictRound(id: string): void {
    const family = this.family(id);
    this.#rounds.delete(id);
    for (const s of [family.round, ...family.producers, ...family.consumers])
      if (s !== undefined) this.#remove(s.spanId);
  }

  /** The spans of round `id` now in the window. */
  family(id: string): RoundFamily {
    const own = this.#spans.get(id);
    const round = own !== undefined && ROUND_SPAN[own.name] !== undefined ? own : undefined;
    const producers: SpanRecord[] = [];
    const consumers: SpanRecord[] = [];
    for (const childId of this.#children.get(id) ?? []) {
      const child = this.#spans.get(childId);
      if (child === undefined || child.kind !== SpanKindCode.producer) continue;
      producers.push(child);
      for (const grandchild of this.#children.get(childId) ?? []) {
        const c = this.#spans.get(grandchild);
        if (c?.kind === SpanKindCode.consumer) consumers.push(c);
      }
    }
    const ancestors: SpanRecord[] = [];
    let parentId = round?.parentSpanId;
    while (parentId !== undefined && ancestors.length < MAX_ANCESTORS) {
      const parent = this.#spans.get(parentId);
      if (parent === undefined) break;
      ancestors.push(parent);
      parentId = parent.parentSpanId;
    }
    const linked = (round?.links ?? []).map((l) => this.#spans.get(l.spanId)).filter((s) => s !== undefined);
    return { id, ...(round === undefined ? {} : { round }), ancestors, linked, producers, consumers };
  }

  round(id: string): RoundModel | undefined {
    if (!this.#rounds.has(id)) return undefined;
    return buildRoundModel(this.family(id));
  }

  #summaries(): RoundSummary[] {
    if (this.#sorted !== null) return this.#sorted;
    const summaries: RoundSummary[] = [];
    for (const [id, entry] of this.#rounds) {
      if (entry.dirty) {
        entry.summary = summarizeRound(this.family(id));
        entry.dirty = false;
      }
      if (entry.summary !== undefined) summaries.push(entry.summary);
    }
    summaries.sort((a, b) => b.startMs - a.startMs);
    this.#sorted = summaries;
    return summaries;
  }

  query(query: RoundQuery = {}): RoundPage {
    const all = this.#summaries();
    const matchesBut = (r: RoundSummary) =>
      (query.cluster === undefined || r.cluster === query.cluster) &&
      (query.protocol === undefined || r.protocol === query.protocol) &&
      (query.outcome === undefined || r.outcome === query.outcome) &&
      (query.minDurationMs === undefined || r.durationMs >= query.minDurationMs);
    const unkinded = all.filter(matchesBut);
    const matching = query.kind === undefined ? unkinded : unkinded.filter((r) => r.kind === query.kind);
    const offset = Math.max(0, Math.min(query.offset ?? 0, matching.length));
    const limit = Math.max(0, Math.min(query.limit ?? 100, MAX_PAGE));
    const facet = (pick: (r: RoundSummary) => string) => [...new Set(all.map(pick))].sort();
    return {
      version: this.#version,
      total: matching.length,
      offset,
      rounds: matching.slice(offset, offset + limit),
      stats: kindStats(unkinded),
      facets: {
        clusters: facet((r) => r.cluster),
        protocols: facet((r) => r.protocol),
        kinds: facet((r) => r.kind),
        outcomes: facet((r) => r.outcome),
      },
    };
  }
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export function kindStats(rounds: readonly RoundSummary[]): KindStats[] {
  const byKind = new Map<RoundKind, number[]>();
  for (const r of rounds) {
    const list = byKind.get(r.kind) ?? [];
    list.push(r.durationMs);
    byKind.set(r.kind, list);
  }
  return [...byKind.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, durations]) => {
      durations.sort((a, b) => a - b);
      return { kind, count: durations.length, p50Ms: percentile(durations, 50), p99Ms: percentile(durations, 99) };
    });
}
