import type { Op } from "../aggregators/index.js";
import type { DurationText } from "../duration.js";

/** A row as it comes from a topic or a file: column name → value. */
export type Row = Record<string, unknown>;

/** A duration in a definition: `"5m"`-style text or integer milliseconds. */
export type Duration = DurationText | number;

import type { OnTrip } from "../gate.js";

// ── What people write (TypeScript DSL or YAML; the same shape) ────────────────────────────────

/** Where an item's alerts go: the Alertmanager receiver and/or labels its routes match on. */
export interface OnCallSpec {
  receiver?: string;
  labels?: Record<string, string>;
}

/** Who answers for a source, view or model: a team, and the route its alerts take. */
export interface OwnershipSpec {
  /** The owning team (becomes the `team` label of every alert about this item). */
  owner?: string;
  onCall?: OnCallSpec;
}

/** The compatibility the schema registry enforces on a source's subject (Confluent's levels). */
export const COMPATIBILITY = [
  "BACKWARD",
  "BACKWARD_TRANSITIVE",
  "FORWARD",
  "FORWARD_TRANSITIVE",
  "FULL",
  "FULL_TRANSITIVE",
  "NONE",
] as const;
export type Compatibility = (typeof COMPATIBILITY)[number];

/** What the feature server does with a value older than the freshness SLA. */
export type OnStale = "serve" | "refuse";

/**
 * The quality gate's policy for a view or model: when its gate trips (critical drift, freshness
 * breach, accuracy under the floor), its values are marked `quarantined` (default) or refused (503).
 */
export interface GateSpec {
  onTrip?: OnTrip;
}

export interface SourceSpec extends OwnershipSpec {
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
  /** The compatibility level the registry enforces on `schema` (the contract with producers). */
  compatibility?: Compatibility;
  /** Where the archiver keeps this topic's Parquet (a path or URL), for lineage. */
  archive?: string;
  /** Maximum age of any feature computed from this source at inference (default for its views). */
  freshness?: { maxAge: Duration };
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

export interface ViewSpec extends OwnershipSpec {
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
  /**
   * Freshness SLA at inference: a value older than `maxAge` is served with status `stale`
   * (`onStale: serve`, the default) or refused (`refuse`). Not part of the view version.
   */
  freshness?: { maxAge: Duration; onStale?: OnStale };
  gate?: GateSpec;
}

/** A model served from views: its contract (owner, floors) and its inputs, for lineage and SLOs. */
export interface ModelSpec extends OwnershipSpec {
  name: string;
  /** Views whose features the model reads. */
  views: string[];
  /** Accuracy (0–1) on labelled predictions below which the model is failing its contract. */
  accuracyFloor?: number;
  /** Optional ROC AUC floor (0–1). */
  aucFloor?: number;
  /** The reference profile drift is measured against (path or name), for lineage. */
  reference?: string;
  /** Maximum feature age at inference for this model: tightens the SLA of each of its views. */
  freshness?: { maxAge: Duration };
  /** The model's gate applies to each of its views. */
  gate?: GateSpec;
}

/** What an end-to-end SLO measures. */
export const SLO_KINDS = ["freshness", "latency", "availability", "accuracy"] as const;
export type SloKind = (typeof SLO_KINDS)[number];

/**
 * An end-to-end SLO, turned into Prometheus recording rules and burn-rate alerts by `tessera slo
 * rules`. freshness: events servable (in the online store) within `threshold`; latency: feature
 * requests answered within `threshold`; availability: feature requests not failed (5xx/UNAVAILABLE);
 * accuracy: time the model's accuracy is at or above its `accuracyFloor`.
 */
export interface SloSpec extends OwnershipSpec {
  name: string;
  kind: SloKind;
  /** Share of good events (or time, for accuracy) over `window`, e.g. 0.99. */
  objective: number;
  /** Default 28d. */
  window?: Duration;
  /** freshness and latency: the bound a good event meets. */
  threshold?: Duration;
  /** The view or model the SLO is about: its owner and route, unless the SLO names its own. */
  view?: string;
  /** Required for accuracy. */
  model?: string;
}

export interface DefinitionsSpec {
  sources: SourceSpec[];
  views: ViewSpec[];
  models?: ModelSpec[];
  slos?: SloSpec[];
}

// ── What the validator returns (normalised, compiled) ─────────────────────────────────────────

/** Normalised ownership: absent fields were not declared. */
export interface Ownership {
  owner?: string;
  onCall?: { receiver?: string; labels: Record<string, string> };
}

export interface Source extends Ownership {
  name: string;
  topic: string;
  entity: string;
  timestamp: string;
  schema?: string;
  offset?: string;
  compatibility?: Compatibility;
  archive?: string;
  freshnessMs?: number;
}

/** A view's effective freshness SLA: the tightest of its own, its source's and its models'. */
export interface Freshness {
  maxAgeMs: number;
  onStale: OnStale;
  /** Where the limit comes from: `view`, `source` or `model <name>`. */
  from: string;
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

export interface View extends Ownership {
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
  freshness?: Freshness;
  /** Declared gate policy (absent: a published trip still quarantines). */
  gate?: { onTrip: OnTrip };
}

export interface Model extends Ownership {
  name: string;
  views: string[];
  accuracyFloor?: number;
  aucFloor?: number;
  reference?: string;
  freshnessMs?: number;
  gate?: { onTrip: OnTrip };
}

export interface Slo extends Ownership {
  name: string;
  kind: SloKind;
  objective: number;
  windowMs: number;
  thresholdMs?: number;
  view?: string;
  model?: string;
}

export interface Definitions {
  sources: Source[];
  views: View[];
  models: Model[];
  slos: Slo[];
}
