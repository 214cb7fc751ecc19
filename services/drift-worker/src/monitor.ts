/**
 * The drift worker's state and decisions, with no I/O: records are pushed in (from a Kafka
 * consumer loop or, in the embedded demo, directly), `evaluate(now)` runs on a schedule, and
 * alerts leave through `emit`. Everything the status endpoint shows is kept here, bounded.
 */
import type { FeatureProfile, ReferenceProfile, Severity } from "@tessera/stats";
import { type AccuracyWindow, type Label, ModelQuality, type Prediction } from "./accuracy.js";
import type { DriftWorkerConfig, ModelConfig, ThresholdConfig } from "./config.js";
import {
  adjustPValues,
  type Bins,
  type Check,
  judge,
  measure,
  type Statistics,
  type WindowResult,
} from "./evaluate.js";
import {
  type AlertKind,
  AlertTracker,
  type DriftAlert,
  type Observation,
  type TraceRef,
} from "./hysteresis.js";
import type { WorkerMetrics } from "./metrics.js";
import { WindowSeries } from "./windows.js";

export type FeatureValue = null | number | string | Array<null | number | string>;

/** The FeatureUpdate Avro record (schemas/avro/feature_update.avsc). */
export interface FeatureUpdate {
  view: string;
  version: string;
  entity: string;
  event_time: number;
  computed_at: number;
  values: Record<string, FeatureValue>;
}

export interface LagReading {
  group: string;
  topic: string;
  lag: number;
}

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

interface Subject {
  name: string;
  kind: "feature" | "prediction";
  dataset: string;
  series: WindowSeries;
  history: HistoryEntry[];
}

const RANK: Record<Severity, number> = { ok: 0, warn: 1, critical: 2 };
const level = (value: number, warn: number, critical: number): Severity =>
  value >= critical ? "critical" : value >= warn ? "warn" : "ok";

function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

const round = (v: number | undefined, digits = 4) => (v === undefined ? "-" : Number(v.toPrecision(digits)));

export interface MonitorOptions {
  config: DriftWorkerConfig;
  profile: ReferenceProfile;
  /** Called synchronously with each alert record; delivery is the caller's (non-blocking) job. */
  emit(alert: DriftAlert): void;
  metrics?: WorkerMetrics;
  now?: () => number;
}

export class DriftMonitor {
  readonly startedAt: number;
  private readonly config: DriftWorkerConfig;
  private readonly subjects = new Map<string, Subject>();
  private readonly unmonitored = new Set<string>();
  private readonly models = new Map<string, { quality: ModelQuality; history: AccuracyEntry[] }>();
  private readonly newest = new Map<string, number>();
  private lagReadings: LagReading[] = [];
  private readonly datasets = new Map<
    string,
    { at: number; tested: number; drifted: string[]; decision: "ok" | "drift" }
  >();
  private readonly tracker: AlertTracker;
  private readonly timeline: DriftAlert[] = [];
  private readonly freshnessSeverity = new Map<string, Severity>();
  private readonly versions = new Map<string, Set<string>>();

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
  }

  get referenceName(): string {
    return this.config.reference.name || this.config.reference.path || "reference";
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  // ---- input -------------------------------------------------------------------------------

  /** `trace`: the span context the record's headers carried (the stream processor's flush). */
  ingestFeatureUpdate(update: FeatureUpdate, trace?: TraceRef): void {
    const now = this.now();
    this.counters?.features.inc();
    this.touch(this.config.topics.features, update.event_time);
    const { views } = this.config.scope;
    if (views.length > 0 && !views.includes(update.view)) return;
    const versions = this.versions.get(update.view) ?? new Set<string>();
    this.versions.set(update.view, versions);
    if (versions.size < 20) versions.add(update.version);
    for (const feature in update.values) {
      const subject = this.subject("feature", update.view, update.view, feature);
      subject?.series.add(update.values[feature], update.event_time, now, trace);
    }
  }

  ingestPrediction(prediction: Prediction): void {
    const now = this.now();
    this.counters?.predictions.inc();
    this.touch(this.config.topics.predictions, prediction.event_time);
    const { model } = prediction;
    if (!this.inScope(model)) return;
    const dataset = `model:${model}`;
    if (prediction.score !== null) {
      this.subject("prediction", dataset, model, "score")?.series.add(
        prediction.score,
        prediction.event_time,
        now,
      );
    }
    if (prediction.class !== null) {
      this.subject("prediction", dataset, model, "class")?.series.add(
        prediction.class,
        prediction.event_time,
        now,
      );
    }
    this.model(model).quality.addPrediction(prediction);
  }

  ingestLabel(label: Label): void {
    this.counters?.labels.inc();
    this.touch(this.config.topics.labels, label.labelled_at);
    if (!this.inScope(label.model)) return;
    this.model(label.model).quality.addLabel(label);
  }

  private inScope(model: string): boolean {
    const { models } = this.config.scope;
    return models.length === 0 || models.includes(model);
  }

  /** Consumer lag, polled elsewhere (it needs the Kafka admin API). */
  setLag(readings: LagReading[]): void {
    this.lagReadings = readings;
    for (const r of readings) this.options.metrics?.lag.set({ group: r.group, topic: r.topic }, r.lag);
  }

  private touch(source: string, eventTime: number): void {
    if (eventTime > (this.newest.get(source) ?? Number.NEGATIVE_INFINITY)) this.newest.set(source, eventTime);
  }

  /** The subject `owner:field` (view:feature, model:score), created on first sight if profiled. */
  private subject(kind: Subject["kind"], dataset: string, owner: string, field: string): Subject | undefined {
    const name = `${owner}:${field}`;
    const known = this.subjects.get(name);
    if (known) return known;
    if (this.unmonitored.has(name)) return undefined;
    const profile = this.profileFor(name, [`${owner}__${field}`, field]);
    if (!profile) {
      if (this.unmonitored.size < 1000) this.unmonitored.add(name);
      return undefined;
    }
    const subject: Subject = {
      name,
      kind,
      dataset,
      series: new WindowSeries(name, dataset, profile, this.config.window, this.now()),
      history: [],
    };
    this.subjects.set(name, subject);
    return subject;
  }

  private profileFor(name: string, candidates: string[]): FeatureProfile | undefined {
    const features = this.options.profile.features;
    const mapped = this.config.reference.columns[name];
    if (mapped !== undefined) return features[mapped];
    for (const column of [name, ...candidates]) if (features[column]) return features[column];
    return undefined;
  }

  private model(name: string) {
    let model = this.models.get(name);
    if (!model) {
      model = {
        quality: new ModelQuality(name, {
          model: this.modelConfig(name),
          window: this.config.accuracy.window,
          maxPending: this.config.accuracy.maxPending,
          joinToleranceMs: this.config.accuracy.joinToleranceMs,
        }),
        history: [],
      };
      this.models.set(name, model);
    }
    return model;
  }

  private modelConfig(name: string): ModelConfig {
    const { accuracyFloor, accuracyCritical, decisionThreshold } = this.config.accuracy;
    return { accuracyFloor, accuracyCritical, decisionThreshold, ...this.config.accuracy.models[name] };
  }

  thresholdsFor(subject: string): ThresholdConfig {
    return { ...this.config.thresholds, ...this.config.featureThresholds[subject] };
  }

  // ---- evaluation --------------------------------------------------------------------------

  /** Tests every closed window, updates freshness and accuracy, and emits alerts. */
  evaluate(): void {
    const now = this.now();
    this.evaluateDrift(now);
    this.evaluateAccuracy(now);
    this.evaluateFreshness(now);
    const open = this.tracker.active();
    for (const kind of ["FEATURE_DRIFT", "PREDICTION_DRIFT", "FRESHNESS", "ACCURACY"] as const) {
      this.options.metrics?.activeAlerts.set({ kind }, open.filter((a) => a.alert.kind === kind).length);
    }
  }

  private evaluateDrift(now: number): void {
    const byDataset = new Map<string, Array<{ subject: Subject; result: WindowResult; trace?: TraceRef }>>();
    for (const subject of this.subjects.values()) {
      subject.series.tick(now);
      for (const window of subject.series.take()) {
        const list = byDataset.get(subject.dataset) ?? [];
        list.push({ subject, result: measure(subject.name, subject.dataset, window), trace: window.trace });
        byDataset.set(subject.dataset, list);
      }
    }
    for (const [dataset, tested] of byDataset) {
      adjustPValues(
        tested.map((t) => t.result),
        this.config.multipleTesting,
      );
      const drifted = new Set<string>();
      for (const { subject, result, trace } of tested) {
        const judged = judge(result, this.thresholdsFor(subject.name), this.config.hysteresis.clearFactor);
        if (judged.severity !== "ok") drifted.add(subject.name);
        this.record(subject, judged, now, trace);
      }
      this.datasets.set(dataset, {
        at: now,
        tested: new Set(tested.map((t) => t.subject.name)).size,
        drifted: [...drifted],
        decision: drifted.size > 0 ? "drift" : "ok",
      });
      this.options.metrics?.windows.inc({ dataset }, tested.length);
    }
  }

  private record(subject: Subject, r: WindowResult, now: number, trace?: TraceRef): void {
    pushBounded(
      subject.history,
      {
        at: now,
        window: r.window,
        statistics: r.statistics,
        severity: r.severity,
        decisive: r.decisive ?? null,
        insufficient: r.insufficient,
        bins: r.bins,
      },
      this.config.history.size,
    );
    const s = r.statistics;
    const values: Record<string, number | undefined> = {
      psi: s.psi,
      js: s.js,
      wasserstein: s.wasserstein,
      ks: s.ks?.statistic,
      ks_p: s.ks?.pAdjusted,
      chi_squared: s.chiSquared?.statistic,
      chi_squared_p: s.chiSquared?.pAdjusted,
      cramers_v: s.cramersV,
      null_rate: s.nullRate,
    };
    const defined: Record<string, number> = {};
    for (const [statistic, value] of Object.entries(values)) {
      if (value === undefined) continue;
      defined[statistic] = value;
      this.options.metrics?.statistic.set(
        { subject: subject.name, dataset: subject.dataset, statistic },
        value,
      );
    }
    // The alert's statistic for KS and chi-squared is the effect size; null_rate is the increase.
    defined["chi_squared"] = s.cramersV ?? 0;
    defined["null_rate"] = s.nullRate - s.referenceNullRate;
    const kind: AlertKind = subject.kind === "feature" ? "FEATURE_DRIFT" : "PREDICTION_DRIFT";
    this.options.metrics?.severity.set({ subject: subject.name, kind }, RANK[r.severity]);
    if (r.insufficient) return;
    const d = r.decisive;
    const summary = [
      s.psi !== undefined && `psi ${round(s.psi)}`,
      s.ks && `ks D ${round(s.ks.statistic)} p ${round(s.ks.pAdjusted, 2)}`,
      s.chiSquared && `chi² V ${round(s.cramersV)} p ${round(s.chiSquared.pAdjusted, 2)}`,
      s.js !== undefined && `js ${round(s.js)}`,
      `nulls ${round(s.nullRate * 100, 3)}% (ref ${round(s.referenceNullRate * 100, 3)}%)`,
    ]
      .filter(Boolean)
      .join(", ");
    this.observe(
      {
        kind,
        subject: subject.name,
        severity: r.severity,
        clear: r.clearSeverity === "ok",
        statistic: d?.statistic ?? "none",
        value: d?.value ?? 0,
        threshold: d?.threshold ?? 0,
        pValue: d?.pValue,
        values: defined,
        windowStart: r.window.start,
        windowEnd: r.window.end,
        sampleSize: r.window.observations,
        detail: d
          ? `${d.statistic} ${round(d.value)} ≥ ${round(d.threshold)} on ${r.window.observations} values (${summary})`
          : summary,
        trace,
      },
      now,
    );
  }

  private evaluateAccuracy(now: number): void {
    for (const [name, model] of this.models) {
      const config = this.modelConfig(name);
      for (const w of model.quality.takeClosed()) {
        const severity: Severity =
          w.accuracy < config.accuracyCritical
            ? "critical"
            : w.accuracy < config.accuracyFloor
              ? "warn"
              : "ok";
        pushBounded(model.history, { ...w, at: now, severity }, this.config.history.size);
        this.options.metrics?.accuracy.set({ model: name }, w.accuracy);
        if (w.auc !== null) this.options.metrics?.auc.set({ model: name }, w.auc);
        this.options.metrics?.severity.set({ subject: name, kind: "ACCURACY" }, RANK[severity]);
        const threshold = severity === "critical" ? config.accuracyCritical : config.accuracyFloor;
        // Clear with margin: the error rate at most clearFactor × the allowed error rate.
        const clear = 1 - w.accuracy <= (1 - config.accuracyFloor) * this.config.hysteresis.clearFactor;
        this.observe(
          {
            kind: "ACCURACY",
            subject: name,
            severity,
            clear,
            statistic: "accuracy",
            value: w.accuracy,
            threshold,
            values: { accuracy: w.accuracy, ...(w.auc === null ? {} : { auc: w.auc }) },
            windowStart: w.start,
            windowEnd: w.end,
            sampleSize: w.labelled,
            detail: `accuracy ${round(w.accuracy)} < floor ${threshold} on ${w.labelled} labelled predictions${
              w.auc === null ? "" : ` (AUC ${round(w.auc)})`
            }`,
          },
          now,
        );
      }
    }
  }

  private evaluateFreshness(now: number): void {
    const f = this.config.freshness;
    for (const [source, newest] of this.newest) {
      const age = Math.max(0, (now - newest) / 1000);
      const { warnSeconds, criticalSeconds } = { ...f, ...f.sources[source] };
      const severity = level(age, warnSeconds, criticalSeconds);
      this.freshnessSeverity.set(source, severity);
      this.options.metrics?.freshness.set({ source }, age);
      this.observe(
        {
          kind: "FRESHNESS",
          subject: source,
          severity,
          clear: age < warnSeconds * this.config.hysteresis.clearFactor,
          statistic: "freshness_seconds",
          value: age,
          threshold: severity === "critical" ? criticalSeconds : warnSeconds,
          values: { freshness_seconds: age },
          windowStart: newest,
          windowEnd: now,
          sampleSize: 0,
          detail: `newest event ${Math.round(age)} s old (warn ${warnSeconds} s, critical ${criticalSeconds} s)`,
        },
        now,
      );
    }
    for (const r of this.lagReadings) {
      const severity = level(r.lag, f.lagWarn, f.lagCritical);
      const subject = `${r.group}/${r.topic}`;
      this.freshnessSeverity.set(subject, severity);
      this.observe(
        {
          kind: "FRESHNESS",
          subject,
          severity,
          clear: r.lag < f.lagWarn * this.config.hysteresis.clearFactor,
          statistic: "consumer_lag",
          value: r.lag,
          threshold: severity === "critical" ? f.lagCritical : f.lagWarn,
          values: { consumer_lag: r.lag },
          windowStart: now,
          windowEnd: now,
          sampleSize: r.lag,
          detail: `consumer group ${r.group} is ${r.lag} messages behind on ${r.topic}`,
        },
        now,
      );
    }
  }

  private observe(observation: Observation, now: number): void {
    const alert = this.tracker.observe(observation, now);
    if (!alert) return;
    pushBounded(this.timeline, alert, this.config.history.alerts);
    this.options.metrics?.alerts.inc({ kind: alert.kind, status: alert.status });
    this.options.emit(alert);
  }

  /** Open incidents (the webhook re-sends them so Alertmanager keeps them active). */
  activeAlerts(): DriftAlert[] {
    return this.tracker.active().map((a) => a.alert);
  }

  // ---- status ------------------------------------------------------------------------------

  /** Freshness, drift and accuracy together: the body of GET /v1/status. */
  status() {
    const now = this.now();
    const f = this.config.freshness;
    const active = new Map(this.tracker.active().map((a) => [`${a.alert.kind}:${a.alert.subject}`, a]));
    const subjects = [...this.subjects.values()];
    const feature = (s: Subject) => {
      const kind = s.kind === "feature" ? "FEATURE_DRIFT" : "PREDICTION_DRIFT";
      const alert = active.get(`${kind}:${s.name}`);
      const latest = s.history.at(-1) ?? null;
      return {
        kind: s.kind,
        dataset: s.dataset,
        type: s.series.profile.type,
        reference: { count: s.series.profile.count, nulls: s.series.profile.nulls },
        openWindow: {
          observations: s.series.current.observations,
          openedAt: s.series.current.openedAt,
        },
        severity: latest?.severity ?? "ok",
        alert: alert ? { alertId: alert.alert.alert_id, since: alert.alert.at, worst: alert.worst } : null,
        latest,
        history: s.history,
      };
    };
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
      freshness: {
        thresholds: f,
        sources: Object.fromEntries(
          [...this.newest].map(([source, newest]) => [
            source,
            {
              newestEventTime: newest,
              ageSeconds: Math.max(0, (now - newest) / 1000),
              severity: this.freshnessSeverity.get(source) ?? "ok",
            },
          ]),
        ),
        lag: this.lagReadings.map((r) => ({
          ...r,
          severity: this.freshnessSeverity.get(`${r.group}/${r.topic}`) ?? "ok",
        })),
      },
      drift: {
        datasets: Object.fromEntries(
          [...this.datasets].map(([name, d]) => [
            name,
            { ...d, method: this.config.multipleTesting, versions: [...(this.versions.get(name) ?? [])] },
          ]),
        ),
        features: Object.fromEntries(
          subjects.filter((s) => s.kind === "feature").map((s) => [s.name, feature(s)]),
        ),
        predictions: Object.fromEntries(
          subjects.filter((s) => s.kind === "prediction").map((s) => [s.name, feature(s)]),
        ),
        unmonitored: [...this.unmonitored],
      },
      accuracy: {
        models: Object.fromEntries(
          [...this.models].map(([name, m]) => {
            const alert = active.get(`ACCURACY:${name}`);
            return [
              name,
              {
                ...this.modelConfig(name),
                window: this.config.accuracy.window,
                latest: m.history.at(-1) ?? null,
                severity: m.history.at(-1)?.severity ?? "ok",
                openWindow: m.quality.openWindow,
                joined: m.quality.joined,
                unjudgeable: m.quality.unjudgeable,
                pending: m.quality.pending,
                alert: alert
                  ? { alertId: alert.alert.alert_id, since: alert.alert.at, worst: alert.worst }
                  : null,
                history: m.history,
              },
            ];
          }),
        ),
      },
      alerts: { active: this.activeAlerts(), timeline: this.timeline },
    };
  }
}

export type DriftStatus = ReturnType<DriftMonitor["status"]>;
