/**
 * Distribution drift of one kind of subject (features, or model outputs): a window per subject,
 * each closed window tested against the reference, the p-values of a dataset adjusted together,
 * each verdict observed by the incident tracker. Features and predictions each have one of these
 * (features.ts, predictions.ts); they differ in what they ingest and in the alert kind.
 */
import type { AlertKind } from "@tessera/kafka";
import type { FeatureProfile, ReferenceProfile } from "@tessera/stats";
import { driftDetail } from "../alert-text.js";
import type { ThresholdConfig } from "../config.js";
import { adjustPValues, judge, measure, type WindowResult } from "../evaluate.js";
import type { ActiveAlert, TraceRef } from "../hysteresis.js";
import type { DatasetDecision, HistoryEntry, SubjectStatus } from "../status.js";
import { type SeriesState, WindowSeries } from "../windows.js";
import { type Evaluator, type EvaluatorContext, pushBounded, RANK, type StateRecords } from "./context.js";

export interface Subject {
  name: string;
  owner: string;
  field: string;
  dataset: string;
  series: WindowSeries;
  history: HistoryEntry[];
}

/** One subject as saved: its windows (open and untested) and its recent history. */
export interface SubjectState {
  owner: string;
  field: string;
  dataset: string;
  series: SeriesState;
  history: HistoryEntry[];
}

const UNMONITORED_MAX = 1000;

export class DriftEvaluator implements Evaluator {
  protected readonly subjects = new Map<string, Subject>();
  /** Subjects seen without a reference column: listed, never tested. */
  readonly unmonitored = new Set<string>();
  readonly datasets = new Map<string, DatasetDecision>();
  readonly alertKind: AlertKind;

  constructor(
    readonly kind: "feature" | "prediction",
    protected readonly context: EvaluatorContext,
    private readonly profile: ReferenceProfile,
  ) {
    this.alertKind = kind === "feature" ? "FEATURE_DRIFT" : "PREDICTION_DRIFT";
  }

  /** The subject `owner:field` (view:feature, model:score), created on first sight if profiled. */
  protected subject(dataset: string, owner: string, field: string, now: number): Subject | undefined {
    const name = `${owner}:${field}`;
    const known = this.subjects.get(name);
    if (known) return known;
    if (this.unmonitored.has(name)) return undefined;
    const profile = this.profileFor(name, [`${owner}__${field}`, field]);
    if (!profile) {
      if (this.unmonitored.size < UNMONITORED_MAX) this.unmonitored.add(name);
      return undefined;
    }
    const series = new WindowSeries(name, dataset, profile, this.context.config.window, now);
    const subject: Subject = { name, owner, field, dataset, series, history: [] };
    this.subjects.set(name, subject);
    return subject;
  }

  private profileFor(name: string, candidates: string[]): FeatureProfile | undefined {
    const { features } = this.profile;
    const mapped = this.context.config.reference.columns[name];
    if (mapped !== undefined) return features[mapped];
    for (const column of [name, ...candidates]) if (features[column]) return features[column];
    return undefined;
  }

  thresholdsFor(subject: string): ThresholdConfig {
    return { ...this.context.config.thresholds, ...this.context.config.featureThresholds[subject] };
  }

  evaluate(now: number): void {
    const { config, metrics } = this.context;
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
        config.multipleTesting,
      );
      const drifted = new Set<string>();
      for (const { subject, result, trace } of tested) {
        const judged = judge(result, this.thresholdsFor(subject.name), config.hysteresis.clearFactor);
        if (judged.severity !== "ok") drifted.add(subject.name);
        this.record(subject, judged, now, trace);
      }
      this.datasets.set(dataset, {
        at: now,
        tested: new Set(tested.map((t) => t.subject.name)).size,
        drifted: [...drifted],
        decision: drifted.size > 0 ? "drift" : "ok",
      });
      metrics?.windows.inc({ dataset }, tested.length);
    }
  }

  private record(subject: Subject, r: WindowResult, now: number, trace?: TraceRef): void {
    const { config, metrics } = this.context;
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
      config.history.size,
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
      metrics?.statistic.set({ subject: subject.name, dataset: subject.dataset, statistic }, value);
    }
    // The alert's statistic for KS and chi-squared is the effect size; null_rate is the increase.
    defined["chi_squared"] = s.cramersV ?? 0;
    defined["null_rate"] = s.nullRate - s.referenceNullRate;
    metrics?.severity.set({ subject: subject.name, kind: this.alertKind }, RANK[r.severity]);
    if (r.insufficient) return;
    const d = r.decisive;
    this.context.observe(
      {
        kind: this.alertKind,
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
        detail: driftDetail(r),
        trace,
      },
      now,
    );
  }

  /** `subject:<name>` per subject, `datasets` for the latest decisions. */
  state(): StateRecords {
    const records: StateRecords = new Map();
    for (const s of this.subjects.values()) {
      const saved: SubjectState = {
        owner: s.owner,
        field: s.field,
        dataset: s.dataset,
        series: s.series.toState(),
        history: s.history,
      };
      records.set(`subject:${s.name}`, saved);
    }
    records.set("datasets", [...this.datasets]);
    return records;
  }

  /** Subjects whose reference column is gone are left out; the rest continue where they were. */
  restore(records: StateRecords): void {
    for (const [id, value] of records) {
      if (id === "datasets") {
        for (const [name, decision] of value as Array<[string, DatasetDecision]>)
          this.datasets.set(name, decision);
        continue;
      }
      if (!id.startsWith("subject:")) continue;
      const saved = value as SubjectState;
      const subject = this.subject(saved.dataset, saved.owner, saved.field, saved.series.current.openedAt);
      if (!subject) continue;
      subject.series.restore(saved.series);
      subject.history.splice(
        0,
        subject.history.length,
        ...saved.history.slice(-this.context.config.history.size),
      );
    }
  }

  status(active: Map<string, ActiveAlert>): Record<string, SubjectStatus> {
    return Object.fromEntries(
      [...this.subjects.values()].map((s) => {
        const alert = active.get(`${this.alertKind}:${s.name}`);
        const latest = s.history.at(-1) ?? null;
        const status: SubjectStatus = {
          kind: this.kind,
          dataset: s.dataset,
          type: s.series.profile.type,
          reference: { count: s.series.profile.count, nulls: s.series.profile.nulls },
          openWindow: { observations: s.series.current.observations, openedAt: s.series.current.openedAt },
          severity: latest?.severity ?? "ok",
          alert: alert ? { alertId: alert.alert.alert_id, since: alert.alert.at, worst: alert.worst } : null,
          latest,
          history: s.history,
        };
        return [s.name, status];
      }),
    );
  }
}
