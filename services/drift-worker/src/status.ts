/**
 * The body of GET /v1/status (and what the dashboard reads): freshness, drift and accuracy
 * together. An explicit type, so a change to it is a change here, not a side effect.
 */

import type { DriftAlertRecord } from "@tessera/kafka";
import type { Severity } from "@tessera/stats";
import type { AccuracyWindow } from "./accuracy.js";
import type { DriftWorkerConfig, ModelConfig } from "./config.js";
import type { Bins, Check, Statistics, WindowResult } from "./evaluate.js";
import type { PipelineStatus } from "./pipeline.js";

export interface LagReading {
  group: string;
  topic: string;
  lag: number;
}

/** One tested window of a subject, as kept for the status page. */
export interface HistoryEntry {
  at: number;
  window: WindowResult["window"];
  statistics: Statistics;
  severity: Severity;
  decisive: Check | null;
  insufficient: boolean;
  bins: Bins;
}

export interface AccuracyEntry extends AccuracyWindow {
  at: number;
  severity: Severity;
}

/** The open incident of a subject. */
export interface AlertRef {
  alertId: string;
  since: number;
  worst: Severity;
}

export interface SubjectStatus {
  kind: "feature" | "prediction";
  dataset: string;
  type: "numerical" | "categorical";
  reference: { count: number; nulls: number };
  openWindow: { observations: number; openedAt: number };
  severity: Severity;
  alert: AlertRef | null;
  latest: HistoryEntry | null;
  history: HistoryEntry[];
}

/** The latest evaluation of one dataset (a view, or `model:<name>`). */
export interface DatasetDecision {
  at: number;
  tested: number;
  drifted: string[];
  decision: "ok" | "drift";
}

export interface DatasetStatus extends DatasetDecision {
  method: DriftWorkerConfig["multipleTesting"];
  versions: string[];
}

export interface ModelStatus extends ModelConfig {
  window: number;
  latest: AccuracyEntry | null;
  severity: Severity;
  openWindow: { labelled: number; accuracy: number | null };
  joined: number;
  unjudgeable: number;
  pending: { predictions: number; labels: number; dropped: number };
  alert: AlertRef | null;
  history: AccuracyEntry[];
}

export interface FreshnessStatus {
  thresholds: DriftWorkerConfig["freshness"];
  sources: Record<string, { newestEventTime: number; ageSeconds: number; severity: Severity }>;
  lag: Array<LagReading & { severity: Severity }>;
}

/** Where the worker keeps its state (Kafka input only). */
export interface StateStatus {
  topic: string;
  /** When the state was read back at start, and how many records it held for this worker. */
  restoredAt: number;
  restoredRecords: number;
  /** The last successful save. */
  savedAt: number | null;
  /** Alerts handed to the sinks and not yet delivered (or given up) by all of them. */
  undelivered: number;
}

export interface DriftStatus {
  service: "tessera-drift-worker";
  now: number;
  startedAt: number;
  reference: { name: string; rows: number; features: string[] };
  settings: {
    window: DriftWorkerConfig["window"];
    evaluationIntervalMs: number;
    multipleTesting: DriftWorkerConfig["multipleTesting"];
    thresholds: DriftWorkerConfig["thresholds"];
    hysteresis: DriftWorkerConfig["hysteresis"];
  };
  freshness: FreshnessStatus;
  drift: {
    datasets: Record<string, DatasetStatus>;
    features: Record<string, SubjectStatus>;
    predictions: Record<string, SubjectStatus>;
    unmonitored: string[];
  };
  accuracy: { models: Record<string, ModelStatus> };
  alerts: { active: DriftAlertRecord[]; timeline: DriftAlertRecord[] };
  /** Present when the worker persists its state (startDriftWorker with Kafka input). */
  state?: StateStatus;
  /** Owners, lineage, gates and SLOs, when the worker has definitions (pipeline.ts). */
  pipeline?: PipelineStatus;
}
