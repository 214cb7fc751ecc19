import type { Op } from "../aggregators/index.js";
import type { DurationText } from "../duration.js";

/** A row as it comes from a topic or a file: column name → value. */
export type Row = Record<string, unknown>;

/** A duration in a definition: `"5m"`-style text or integer milliseconds. */
export type Duration = DurationText | number;

// ── What people write (TypeScript DSL or YAML; the same shape) ────────────────────────────────

export interface SourceSpec {
  name: string;
  /** Kafka topic the events are published to. */
  topic: string;
  /** Column holding the entity key (features are computed per entity). */
  entity: string;
  /** Column holding event time: epoch milliseconds or ISO-8601 text. */
  timestamp: string;
  /** Registered schema subject or record name, for documentation and producers. */
  schema?: string;
  /** Column holding the log position (e.g. the archive's Kafka offset); breaks timestamp ties for
   * first/last/last_k. Without it a file's row order is the log order. */
  offset?: string;
}

/** A derived column: a CEL expression (YAML or TS) or a pure TypeScript function of the row. */
export type DeriveSpec = { name: string; expr: string } | { name: string; fn: (row: Row) => unknown };

/** Keep only events for which this is true: a CEL expression or a pure TypeScript predicate. */
export type FilterSpec = string | ((row: Row) => boolean);

interface FeatureBase {
  name: string;
  window: Duration;
  /** Defaults by window length: < 12h → 5m, < 12d → 1h, else 1d (never longer than the window). */
  hop?: Duration;
}

export type FeatureSpec = FeatureBase &
  (
    | { op: "count"; column?: string }
    | {
        op: "sum" | "mean" | "min" | "max" | "variance" | "stddev" | "first" | "last" | "approx_distinct";
        column: string;
      }
    | { op: "last_k" | "top_k"; column: string; k: number }
    | { op: "approx_quantile"; column: string; quantile: number }
  );

export interface ViewSpec {
  name: string;
  /** Name of a source in the same definitions. */
  source: string;
  /** Derived columns, computed in order (each may use the ones before it). */
  derive?: DeriveSpec[];
  filter?: FilterSpec;
  features: FeatureSpec[];
  /**
   * On-demand features: computed by the feature server at request time from this view's finalised
   * features (by name) and the request's `context` map; a CEL expression (`expr`) or a pure
   * TypeScript function (`fn`) of that row. Not stored, so not part of the view version.
   */
  onDemand?: DeriveSpec[];
}

export interface DefinitionsSpec {
  sources: SourceSpec[];
  views: ViewSpec[];
}

// ── What the validator returns (normalised, compiled) ─────────────────────────────────────────

export interface Source {
  name: string;
  topic: string;
  entity: string;
  timestamp: string;
  schema?: string;
  offset?: string;
}

export interface Derive {
  name: string;
  /** The CEL text, or the function's source for TypeScript functions (part of the view version). */
  text: string;
  /** Throws (with a reason) when the row cannot be transformed. */
  run: (row: Row) => unknown;
}

export interface Feature {
  name: string;
  op: Op;
  column?: string;
  windowMs: number;
  hopMs: number;
  k?: number;
  quantile?: number;
}

export interface View {
  name: string;
  /** Stable hash of the normalised definition (16 hex digits): part of every online key and output. */
  version: string;
  source: Source;
  derive: Derive[];
  filter?: Derive;
  features: Feature[];
  /** On-demand features (see ViewSpec.onDemand); absent when the view has none. */
  onDemand?: Derive[];
  /** State TTL: the largest window plus its hop. Older tiles are dropped; older events are late. */
  retentionMs: number;
}

export interface Definitions {
  sources: Source[];
  views: View[];
}
