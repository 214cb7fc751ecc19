/**
 * Drift-worker settings: one JSON Schema gives the defaults, validates the file and the
 * TESSERA_DRIFT_WORKER_* environment, and documents every knob (docs/operations.md).
 */

import { type JsonSchema, type TracingConfig, tracingConfigSchema } from "@tessera/runtime";
import { DEFAULT_THRESHOLDS, type DriftThresholds } from "@tessera/stats";

export type WindowMode = "count" | "time";

export interface WindowConfig {
  /** count: a window closes after `size` observations; time: after `durationMs` of processing time. */
  mode: WindowMode;
  size: number;
  durationMs: number;
}

export interface ThresholdConfig extends DriftThresholds {
  /** Null share above the reference's by at least this (and significant) is warn … */
  nullRateWarn: number;
  /** … and by this, critical. */
  nullRateCritical: number;
}

export interface ModelConfig {
  /** Accuracy below this on a window of labelled predictions is warn … */
  accuracyFloor: number;
  /** … and below this, critical. */
  accuracyCritical: number;
  /** A score at or above this predicts the positive class (when a prediction has no class). */
  decisionThreshold: number;
}

export interface DriftWorkerConfig {
  http: { host: string; port: number };
  /** `state`: the worker's own compacted topic (open incidents, windows), created at start. */
  topics: {
    features: string;
    predictions: string;
    labels: string;
    alerts: string;
    deadLetter: string;
    state: string;
  };
  groupId: string;
  fromBeginning: boolean;
  /**
   * Only these views and models (empty: all). Replicas in one consumer group would each see a
   * share of the entities and each page; scale out with one worker (and group) per scope instead.
   */
  scope: { views: string[]; models: string[] };
  /** Reference profile (`tessera profile` output): a JSON file; its name goes into every alert. */
  reference: { path?: string; name: string; columns: Record<string, string> };
  evaluation: { intervalMs: number };
  window: WindowConfig;
  thresholds: ThresholdConfig;
  /** Per-subject overrides (`view:feature` or `model:score`) of any threshold. */
  featureThresholds: Record<string, Partial<ThresholdConfig>>;
  /** Multiple-testing control over the p-values of one dataset (view or model) per evaluation. */
  multipleTesting: "benjamini-hochberg" | "bonferroni" | "none";
  hysteresis: {
    /** Consecutive clear windows before RESOLVED. */
    resolveAfter: number;
    /** And at least this long since the last bad window. */
    coolDownMs: number;
    /** "Clear" means below threshold × this factor: the band between keeps the alert open. */
    clearFactor: number;
  };
  freshness: {
    warnSeconds: number;
    criticalSeconds: number;
    lagWarn: number;
    lagCritical: number;
    /** Other consumer groups whose lag is watched (the processor's, the archiver's). */
    groups: Array<{ group: string; topic: string }>;
    /** Per-topic age thresholds: labels arrive in daily batches, features every second. */
    sources: Record<string, { warnSeconds?: number; criticalSeconds?: number }>;
  };
  accuracy: ModelConfig & {
    /** Labelled predictions per accuracy window. */
    window: number;
    /** Predictions (and early labels) waiting for their partner, per model. */
    maxPending: number;
    /** Join on entity + event time when a label has no prediction id: times within this match. */
    joinToleranceMs: number;
    models: Record<string, Partial<ModelConfig>>;
  };
  /** Alertmanager-compatible receiver; open alerts are re-sent every repeatMs (Alertmanager expects it). */
  webhook: { url: string; retries: number; timeoutMs: number; maxQueue: number; repeatMs: number };
  history: { size: number; alerts: number };
  /** OpenTelemetry traces (docs/tracing.md); off by default. */
  tracing: TracingConfig;
}

const int = (d: number, minimum = 0): JsonSchema => ({ type: "integer", minimum, default: d });
const num = (d: number, minimum = 0): JsonSchema => ({ type: "number", minimum, default: d });
const str = (d: string): JsonSchema => ({ type: "string", default: d });

const thresholdProperties: Record<string, JsonSchema> = {
  psiWarn: num(DEFAULT_THRESHOLDS.psiWarn),
  psiCritical: num(DEFAULT_THRESHOLDS.psiCritical),
  alpha: { type: "number", exclusiveMinimum: 0, maximum: 1, default: DEFAULT_THRESHOLDS.alpha },
  ksWarn: num(DEFAULT_THRESHOLDS.ksWarn),
  ksCritical: num(DEFAULT_THRESHOLDS.ksCritical),
  cramersVWarn: num(DEFAULT_THRESHOLDS.cramersVWarn),
  cramersVCritical: num(DEFAULT_THRESHOLDS.cramersVCritical),
  jsWarn: num(DEFAULT_THRESHOLDS.jsWarn),
  jsCritical: num(DEFAULT_THRESHOLDS.jsCritical),
  // A window of a few hundred values has sampling noise near JS 0.1: 500 keeps false alarms rare.
  minSamples: int(500, 1),
  nullRateWarn: num(0.1),
  nullRateCritical: num(0.25),
};

const modelProperties: Record<string, JsonSchema> = {
  accuracyFloor: { type: "number", minimum: 0, maximum: 1, default: 0.7 },
  accuracyCritical: { type: "number", minimum: 0, maximum: 1, default: 0.6 },
  decisionThreshold: num(0.5, Number.NEGATIVE_INFINITY),
};

const object = (properties: Record<string, JsonSchema>, extra: Partial<JsonSchema> = {}): JsonSchema => ({
  type: "object",
  properties,
  additionalProperties: false,
  default: {},
  ...extra,
});

export const configSchema: JsonSchema = object({
  http: object({ host: str("127.0.0.1"), port: int(9103) }),
  topics: object({
    features: str("tessera.features"),
    predictions: str("tessera.predictions"),
    labels: str("tessera.labels"),
    alerts: str("tessera.alerts"),
    deadLetter: str("tessera.dead-letter"),
    state: str("tessera.drift-worker.state"),
  }),
  groupId: str("tessera-drift-worker"),
  scope: object({
    views: { type: "array", items: { type: "string" }, default: [] },
    models: { type: "array", items: { type: "string" }, default: [] },
  }),
  fromBeginning: { type: "boolean", default: false },
  reference: object(
    {
      path: { type: "string", minLength: 1, description: "reference profile JSON (tessera profile --out)" },
      name: str(""),
      columns: { type: "object", additionalProperties: { type: "string" }, default: {} },
    },
    { required: ["path"] },
  ),
  evaluation: object({ intervalMs: int(10_000, 10) }),
  window: object({
    mode: { type: "string", enum: ["count", "time"], default: "count" },
    size: int(1000, 1),
    durationMs: int(300_000, 1),
  }),
  thresholds: object(thresholdProperties),
  featureThresholds: {
    type: "object",
    additionalProperties: object(
      Object.fromEntries(Object.keys(thresholdProperties).map((k) => [k, { type: "number" }])),
    ),
    default: {},
  },
  multipleTesting: {
    type: "string",
    enum: ["benjamini-hochberg", "bonferroni", "none"],
    default: "benjamini-hochberg",
  },
  hysteresis: object({
    resolveAfter: int(2, 1),
    coolDownMs: int(60_000),
    clearFactor: { type: "number", exclusiveMinimum: 0, maximum: 1, default: 0.8 },
  }),
  freshness: object({
    warnSeconds: num(300),
    criticalSeconds: num(900),
    lagWarn: int(10_000),
    lagCritical: int(100_000),
    groups: {
      type: "array",
      items: {
        type: "object",
        properties: { group: { type: "string" }, topic: { type: "string" } },
        required: ["group", "topic"],
        additionalProperties: false,
      },
      default: [],
    },
    sources: {
      type: "object",
      additionalProperties: object({ warnSeconds: { type: "number" }, criticalSeconds: { type: "number" } }),
      default: {},
    },
  }),
  accuracy: object({
    ...modelProperties,
    window: int(500, 1),
    maxPending: int(100_000, 1),
    joinToleranceMs: int(0),
    models: {
      type: "object",
      additionalProperties: object(
        Object.fromEntries(Object.keys(modelProperties).map((k) => [k, { type: "number" }])),
      ),
      default: {},
    },
  }),
  webhook: object({
    url: str(""),
    retries: int(5),
    timeoutMs: int(5000, 1),
    maxQueue: int(1000, 1),
    repeatMs: int(60_000, 1000),
  }),
  history: object({ size: int(50, 1), alerts: int(200, 1) }),
  tracing: tracingConfigSchema,
});

/** Everything but the reference path has a default; tests and the embedded demo start from this. */
export function defaultConfig(overrides: DeepPartial<DriftWorkerConfig> = {}): DriftWorkerConfig {
  const base = fillDefaults(configSchema, {}) as DriftWorkerConfig;
  return merge(base, overrides) as DriftWorkerConfig;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function fillDefaults(schema: JsonSchema, value: unknown): unknown {
  if (schema.type === "object" && schema.properties) {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const [key, child] of Object.entries(schema.properties)) {
      const d = out[key] ?? (child.default === undefined ? undefined : structuredClone(child.default));
      if (d !== undefined) out[key] = fillDefaults(child, d);
    }
    return out;
  }
  return value;
}

function merge(base: unknown, extra: unknown): unknown {
  if (extra === undefined) return base;
  if (base && extra && typeof base === "object" && typeof extra === "object" && !Array.isArray(extra)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(extra)) out[k] = merge(out[k], v);
    return out;
  }
  return extra;
}
