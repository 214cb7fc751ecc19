/**
 * Drift-worker settings: one JSON Schema gives the defaults, validates the file and the
 * TESSERA_DRIFT_WORKER_* environment, and documents every knob (docs/operations.md).
 */

import { tesseraStateTopics, tesseraTopics } from "@tessera/kafka";
import {
  bool,
  definitionsFileTypes,
  int,
  type JsonSchema,
  loadConfig,
  num,
  obj,
  str,
  strings,
  type TracingConfig,
  tracingConfigSchema,
} from "@tessera/runtime";
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
  /** Feature definitions (owners, freshness SLAs, accuracy floors); empty: none. */
  definitions: string;
  /** The quality gate: trip and clear views' and models' gates on the compacted gate topic. */
  gates: { enabled: boolean; topic: string; clearAfterMs: number };
}

const thresholdProperties: Record<string, JsonSchema> = {
  psiWarn: num("PSI at or above this is warn", DEFAULT_THRESHOLDS.psiWarn),
  psiCritical: num("PSI at or above this is critical", DEFAULT_THRESHOLDS.psiCritical),
  alpha: {
    type: "number",
    exclusiveMinimum: 0,
    maximum: 1,
    default: DEFAULT_THRESHOLDS.alpha,
    description: "significance level of the tests (after multiple-testing control)",
  },
  ksWarn: num("KS statistic at or above this (and significant) is warn", DEFAULT_THRESHOLDS.ksWarn),
  ksCritical: num("KS statistic at or above this is critical", DEFAULT_THRESHOLDS.ksCritical),
  cramersVWarn: num("Cramér's V at or above this (and significant) is warn", DEFAULT_THRESHOLDS.cramersVWarn),
  cramersVCritical: num("Cramér's V at or above this is critical", DEFAULT_THRESHOLDS.cramersVCritical),
  jsWarn: num("Jensen-Shannon distance at or above this is warn", DEFAULT_THRESHOLDS.jsWarn),
  jsCritical: num("Jensen-Shannon distance at or above this is critical", DEFAULT_THRESHOLDS.jsCritical),
  // A window of a few hundred values has sampling noise near JS 0.1: 500 keeps false alarms rare.
  minSamples: int("values a window needs before it gets a verdict", 500, 1),
  nullRateWarn: num("null share above the reference's by this (and significant) is warn", 0.1),
  nullRateCritical: num("null share above the reference's by this is critical", 0.25),
};

const modelProperties: Record<string, JsonSchema> = {
  accuracyFloor: num("accuracy below this is warn", 0.7, 0, { maximum: 1 }),
  accuracyCritical: num("accuracy below this is critical", 0.6, 0, { maximum: 1 }),
  decisionThreshold: num(
    "a score at or above this predicts the positive class",
    0.5,
    Number.NEGATIVE_INFINITY,
  ),
};

/** Per-subject or per-model overrides: any of `properties`, each a plain number. */
const overrides = (description: string, properties: Record<string, JsonSchema>): JsonSchema => ({
  type: "object",
  description,
  additionalProperties: obj(Object.fromEntries(Object.keys(properties).map((k) => [k, { type: "number" }]))),
  default: {},
});

const referenceProperties: Record<string, JsonSchema> = {
  path: str("reference profile JSON (tessera profile --out)", { minLength: 1 }),
  name: str("the reference's name in every alert", { default: "" }),
  columns: {
    type: "object",
    additionalProperties: { type: "string" },
    default: {},
    description: "subject → profile column, where the names differ",
  },
};

const properties: Record<string, JsonSchema> = {
  http: obj({
    host: str("HTTP bind address", { default: "127.0.0.1" }),
    port: int("HTTP port (0: any free port)", 9103),
  }),
  topics: obj({
    features: str("FeatureUpdate topic", { default: tesseraTopics.features }),
    predictions: str("prediction topic", { default: tesseraTopics.predictions }),
    labels: str("label topic", { default: tesseraTopics.labels }),
    alerts: str("DriftAlert topic", { default: tesseraTopics.alerts }),
    deadLetter: str("dead-letter topic", { default: tesseraTopics.deadLetter }),
    state: str("the worker's own compacted state topic", { default: tesseraStateTopics.driftWorker }),
  }),
  groupId: str("consumer group", { default: "tessera-drift-worker" }),
  scope: obj({
    views: strings("only these views (empty: all)", []),
    models: strings("only these models (empty: all)", []),
  }),
  fromBeginning: bool("a new consumer group starts at the earliest offset", false),
  reference: obj(referenceProperties, { required: ["path"] }),
  evaluation: obj({ intervalMs: int("how often closed windows are tested (ms)", 10_000, 10) }),
  window: obj({
    mode: { type: "string", enum: ["count", "time"], default: "count", description: "count or time windows" },
    size: int("observations per count window", 1000, 1),
    durationMs: int("length of a time window (ms)", 300_000, 1),
  }),
  thresholds: obj(thresholdProperties),
  featureThresholds: overrides(
    "per-subject (view:feature, model:score) threshold overrides",
    thresholdProperties,
  ),
  multipleTesting: {
    type: "string",
    enum: ["benjamini-hochberg", "bonferroni", "none"],
    default: "benjamini-hochberg",
    description: "multiple-testing control over one dataset's p-values",
  },
  hysteresis: obj({
    resolveAfter: int("consecutive clear windows before RESOLVED", 2, 1),
    coolDownMs: int("and at least this long since the last bad window (ms)", 60_000),
    clearFactor: {
      type: "number",
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.8,
      description: "clear means below threshold × this",
    },
  }),
  freshness: obj({
    warnSeconds: num("age of the newest event above this is warn (s)", 300),
    criticalSeconds: num("… and above this, critical (s)", 900),
    lagWarn: int("consumer lag above this is warn (messages)", 10_000),
    lagCritical: int("… and above this, critical (messages)", 100_000),
    groups: {
      type: "array",
      items: {
        type: "object",
        properties: { group: { type: "string" }, topic: { type: "string" } },
        required: ["group", "topic"],
        additionalProperties: false,
      },
      default: [],
      description: "other consumer groups whose lag is watched",
    },
    sources: {
      type: "object",
      additionalProperties: obj({ warnSeconds: { type: "number" }, criticalSeconds: { type: "number" } }),
      default: {},
      description: "per-topic age thresholds",
    },
  }),
  accuracy: obj({
    ...modelProperties,
    window: int("labelled predictions per accuracy window", 500, 1),
    maxPending: int("predictions (and early labels) waiting for their partner, per model", 100_000, 1),
    joinToleranceMs: int("label ↔ prediction join on entity + event time within this (ms)", 0),
    models: overrides("per-model overrides", modelProperties),
  }),
  webhook: obj({
    url: str("Alertmanager-compatible receiver (empty: none)", { default: "" }),
    retries: int("delivery attempts after the first", 5),
    timeoutMs: int("per-request timeout (ms)", 5000, 1),
    maxQueue: int("alerts queued per sink before the oldest are dropped", 1000, 1),
    repeatMs: int("open alerts are re-sent this often (ms)", 60_000, 1000),
  }),
  history: obj({
    size: int("windows kept per subject for /v1/status", 50, 1),
    alerts: int("alerts kept in the timeline", 200, 1),
  }),
  tracing: tracingConfigSchema,
  definitions: str(`feature definitions (${definitionsFileTypes.join(", ")}); empty: none`, { default: "" }),
  gates: obj({
    enabled: bool("publish quality-gate trips and clears (needs Kafka)", false),
    topic: str("the compacted gate topic", { default: tesseraStateTopics.gate }),
    clearAfterMs: int("every cause clear this long before a gate clears by itself (ms)", 60_000),
  }),
};

/** The process's schema: a reference profile file is required. */
export const configSchema: JsonSchema = obj(properties);

/** In process (demo, tests, bench) the profile is handed over (deps.profile): no path needed. */
const embeddedSchema: JsonSchema = obj({ ...properties, reference: obj(referenceProperties) });

export const ENV_PREFIX = "TESSERA_DRIFT_WORKER";

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** A full config from a partial one (defaults filled, validated): the embedded demo, tests, bench. */
export function defaultConfig(overrides: DeepPartial<DriftWorkerConfig> = {}): DriftWorkerConfig {
  return loadConfig<DriftWorkerConfig>({
    schema: embeddedSchema,
    envPrefix: ENV_PREFIX,
    env: {},
    overrides: overrides as Record<string, unknown>,
  });
}
