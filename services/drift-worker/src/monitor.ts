/**
 * The drift worker's state and decisions, with no I/O: records are pushed in (from a Kafka
 * consumer loop or, in the embedded demo, directly), `evaluate()` runs on a schedule, and alerts
 * leave through `emit`. The work is split by what is evaluated, each part with its own state
 * (evaluators/: features, predictions, accuracy, freshness); the incident tracker turns their
 * verdicts into one FIRING and one RESOLVED per incident. `snapshot()` / `restore()` hand the
 * whole state over as JSON records, which is what survives a restart (state-store.ts).
 */
import type { DriftAlertRecord, FeatureUpdateRecord, LabelRecord, PredictionRecord } from "@tessera/kafka";
import type { ReferenceProfile } from "@tessera/stats";
import type { DriftWorkerConfig, ThresholdConfig } from "./config.js";
import { AccuracyEvaluator } from "./evaluators/accuracy.js";
import { type EvaluatorContext, pushBounded, type StateRecords } from "./evaluators/context.js";
import { FeatureDrift } from "./evaluators/features.js";
import { FreshnessEvaluator } from "./evaluators/freshness.js";
import { PredictionDrift } from "./evaluators/predictions.js";
import { type ActiveAlert, AlertTracker, type TraceRef } from "./hysteresis.js";
import type { WorkerMetrics } from "./metrics.js";
import type { StateSnapshot } from "./state-store.js";
import type { DriftStatus, LagReading } from "./status.js";

export type { AccuracyEntry, DriftStatus, HistoryEntry, LagReading } from "./status.js";

export interface MonitorOptions {
  config: DriftWorkerConfig;
  profile: ReferenceProfile;
  /** Called synchronously with each alert record; delivery is the caller's (non-blocking) job. */
  emit(alert: DriftAlertRecord): void;
  metrics?: WorkerMetrics;
  now?: () => number;
  /** Each view's freshness SLA (ms), from the definitions: a view past it alerts. */
  viewSlaMs?: ReadonlyMap<string, number>;
}

/** The parts of the saved state, one per evaluator plus the incidents. */
const PARTS = ["features", "predictions", "accuracy", "freshness", "incidents"] as const;

export class DriftMonitor {
  readonly startedAt: number;
  private readonly config: DriftWorkerConfig;
  private readonly tracker: AlertTracker;
  private readonly timeline: DriftAlertRecord[] = [];
  private readonly features: FeatureDrift;
  private readonly predictions: PredictionDrift;
  private readonly accuracy: AccuracyEvaluator;
  private readonly freshness: FreshnessEvaluator;

  /** Label children resolved once: inc() per record without hashing labels each time. */
  private readonly counters;

  constructor(private readonly options: MonitorOptions) {
    this.config = options.config;
    const records = options.metrics?.records;
    this.counters = records && {
      features: records.labels("features"),
      predictions: records.labels("predictions"),
      labels: records.labels("labels"),
    };
    this.startedAt = this.now();
    this.tracker = new AlertTracker({
      resolveAfter: this.config.hysteresis.resolveAfter,
      coolDownMs: this.config.hysteresis.coolDownMs,
      reference: this.referenceName,
    });
    const context: EvaluatorContext = {
      config: this.config,
      metrics: options.metrics,
      observe: (observation, now) => {
        const alert = this.tracker.observe(observation, now);
        if (!alert) return;
        pushBounded(this.timeline, alert, this.config.history.alerts);
        this.options.metrics?.alerts.inc({ kind: alert.kind, status: alert.status });
        this.options.emit(alert);
      },
    };
    this.features = new FeatureDrift("feature", context, options.profile);
    this.predictions = new PredictionDrift("prediction", context, options.profile);
    this.accuracy = new AccuracyEvaluator(context);
    this.freshness = new FreshnessEvaluator(context, options.viewSlaMs);
  }

  get referenceName(): string {
    return this.config.reference.name || this.config.reference.path || "reference";
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  // ---- input -------------------------------------------------------------------------------

  /** `trace`: the span context the record's headers carried (the stream processor's flush). */
  ingestFeatureUpdate(update: FeatureUpdateRecord, trace?: TraceRef): void {
    this.counters?.features.inc();
    this.freshness.touch(this.config.topics.features, update.event_time);
    const { views } = this.config.scope;
    if (views.length === 0 || views.includes(update.view))
      this.freshness.touchView(update.view, update.event_time);
    this.features.ingest(update, this.now(), trace);
  }

  ingestPrediction(prediction: PredictionRecord): void {
    this.counters?.predictions.inc();
    this.freshness.touch(this.config.topics.predictions, prediction.event_time);
    if (!this.inScope(prediction.model)) return;
    this.predictions.ingest(prediction, this.now());
    this.accuracy.addPrediction(prediction);
  }

  ingestLabel(label: LabelRecord): void {
    this.counters?.labels.inc();
    this.freshness.touch(this.config.topics.labels, label.labelled_at);
    if (!this.inScope(label.model)) return;
    this.accuracy.addLabel(label);
  }

  private inScope(model: string): boolean {
    const { models } = this.config.scope;
    return models.length === 0 || models.includes(model);
  }

  /** Consumer lag, polled elsewhere (it needs the Kafka admin API). */
  setLag(readings: LagReading[]): void {
    this.freshness.setLag(readings);
  }

  thresholdsFor(subject: string): ThresholdConfig {
    return this.features.thresholdsFor(subject);
  }

  // ---- evaluation --------------------------------------------------------------------------

  /** Tests every closed window, updates freshness and accuracy, and emits alerts. */
  evaluate(): void {
    const now = this.now();
    this.features.evaluate(now);
    this.predictions.evaluate(now);
    this.accuracy.evaluate(now);
    this.freshness.evaluate(now);
    const open = this.tracker.active();
    for (const kind of ["FEATURE_DRIFT", "PREDICTION_DRIFT", "FRESHNESS", "ACCURACY"] as const) {
      this.options.metrics?.activeAlerts.set({ kind }, open.filter((a) => a.alert.kind === kind).length);
    }
  }

  /** Open incidents (the webhook re-sends them so Alertmanager keeps them active). */
  activeAlerts(): DriftAlertRecord[] {
    return this.tracker.active().map((a) => a.alert);
  }

  /** Open incidents with their worst severity (the quality gate trips on critical ones). */
  incidents(): ActiveAlert[] {
    return this.tracker.active();
  }

  /** Per model: the latest accuracy window's accuracy and the configured floor. */
  latestAccuracy(): Map<string, { accuracy: number; floor: number }> {
    return this.accuracy.latest();
  }

  /** Age (ms) of the newest feature update seen per view. */
  viewAges(): Map<string, number> {
    return this.freshness.viewAges(this.now());
  }

  // ---- state -------------------------------------------------------------------------------

  /** Everything needed to continue after a restart, as JSON records per part. */
  snapshot(): StateSnapshot {
    const incidents: StateRecords = new Map();
    for (const incident of this.tracker.active())
      incidents.set(`${incident.alert.kind}:${incident.alert.subject}`, incident);
    incidents.set("timeline", this.timeline);
    return new Map<string, StateRecords>([
      ["features", this.features.state()],
      ["predictions", this.predictions.state()],
      ["accuracy", this.accuracy.state()],
      ["freshness", this.freshness.state()],
      ["incidents", incidents],
    ]);
  }

  /** Continues from a snapshot: open incidents keep their alert_id and hysteresis counters. */
  restore(snapshot: StateSnapshot): void {
    const part = (name: (typeof PARTS)[number]) => snapshot.get(name) ?? new Map<string, unknown>();
    this.features.restore(part("features"));
    this.predictions.restore(part("predictions"));
    this.accuracy.restore(part("accuracy"));
    this.freshness.restore(part("freshness"));
    const incidents = part("incidents");
    const timeline = (incidents.get("timeline") ?? []) as DriftAlertRecord[];
    this.timeline.splice(0, this.timeline.length, ...timeline.slice(-this.config.history.alerts));
    this.tracker.restore(
      [...incidents].filter(([id]) => id !== "timeline").map(([, incident]) => incident as ActiveAlert),
    );
  }

  // ---- status ------------------------------------------------------------------------------

  /** Freshness, drift and accuracy together: the body of GET /v1/status. */
  status(): DriftStatus {
    const now = this.now();
    const active = new Map(this.tracker.active().map((a) => [`${a.alert.kind}:${a.alert.subject}`, a]));
    const datasets = new Map([...this.features.datasets, ...this.predictions.datasets]);
    return {
      service: "tessera-drift-worker",
      now,
      startedAt: this.startedAt,
      reference: {
        name: this.referenceName,
        rows: this.options.profile.rows,
        features: Object.keys(this.options.profile.features),
      },
      settings: {
        window: this.config.window,
        evaluationIntervalMs: this.config.evaluation.intervalMs,
        multipleTesting: this.config.multipleTesting,
        thresholds: this.config.thresholds,
        hysteresis: this.config.hysteresis,
      },
      freshness: this.freshness.status(now),
      drift: {
        datasets: Object.fromEntries(
          [...datasets].map(([name, d]) => [
            name,
            { ...d, method: this.config.multipleTesting, versions: this.features.versionsOf(name) },
          ]),
        ),
        features: this.features.status(active),
        predictions: this.predictions.status(active),
        unmonitored: [...this.features.unmonitored, ...this.predictions.unmonitored],
      },
      accuracy: { models: this.accuracy.status(active) },
      alerts: { active: this.activeAlerts(), timeline: this.timeline },
    };
  }
}
