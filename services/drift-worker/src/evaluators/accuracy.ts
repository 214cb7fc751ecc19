/**
 * Model quality: labels joined to predictions (../accuracy.ts) fill windows of labelled
 * predictions per model; each closed window is judged against the model's accuracy floor.
 */

import type { LabelRecord, PredictionRecord } from "@tessera/kafka";
import type { Severity } from "@tessera/stats";
import { ModelQuality, type QualityState } from "../accuracy.js";
import { accuracyDetail } from "../alert-text.js";
import type { ModelConfig } from "../config.js";
import type { ActiveAlert } from "../hysteresis.js";
import type { AccuracyEntry, ModelStatus } from "../status.js";
import { type Evaluator, type EvaluatorContext, pushBounded, RANK, type StateRecords } from "./context.js";

interface Model {
  quality: ModelQuality;
  history: AccuracyEntry[];
}

/** One model as saved: its open window and recent history (not its pending joins). */
export interface ModelState {
  quality: QualityState;
  history: AccuracyEntry[];
}

export class AccuracyEvaluator implements Evaluator {
  private readonly models = new Map<string, Model>();

  constructor(private readonly context: EvaluatorContext) {}

  addPrediction(prediction: PredictionRecord): void {
    this.model(prediction.model).quality.addPrediction(prediction);
  }

  addLabel(label: LabelRecord): void {
    this.model(label.model).quality.addLabel(label);
  }

  private model(name: string): Model {
    let model = this.models.get(name);
    if (!model) {
      const { accuracy } = this.context.config;
      model = {
        quality: new ModelQuality(name, {
          model: this.modelConfig(name),
          window: accuracy.window,
          maxPending: accuracy.maxPending,
          joinToleranceMs: accuracy.joinToleranceMs,
        }),
        history: [],
      };
      this.models.set(name, model);
    }
    return model;
  }

  modelConfig(name: string): ModelConfig {
    const { accuracyFloor, accuracyCritical, decisionThreshold, models } = this.context.config.accuracy;
    return { accuracyFloor, accuracyCritical, decisionThreshold, ...models[name] };
  }

  evaluate(now: number): void {
    const { config, metrics } = this.context;
    for (const [name, model] of this.models) {
      const floors = this.modelConfig(name);
      for (const w of model.quality.takeClosed()) {
        const severity: Severity =
          w.accuracy < floors.accuracyCritical
            ? "critical"
            : w.accuracy < floors.accuracyFloor
              ? "warn"
              : "ok";
        pushBounded(model.history, { ...w, at: now, severity }, config.history.size);
        metrics?.accuracy.set({ model: name }, w.accuracy);
        if (w.auc !== null) metrics?.auc.set({ model: name }, w.auc);
        metrics?.severity.set({ subject: name, kind: "ACCURACY" }, RANK[severity]);
        const threshold = severity === "critical" ? floors.accuracyCritical : floors.accuracyFloor;
        // Clear with margin: the error rate at most clearFactor × the allowed error rate.
        const clear = 1 - w.accuracy <= (1 - floors.accuracyFloor) * config.hysteresis.clearFactor;
        this.context.observe(
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
            detail: accuracyDetail(w, threshold),
          },
          now,
        );
      }
    }
  }

  /** `model:<name>` per model. */
  state(): StateRecords {
    const records: StateRecords = new Map();
    for (const [name, m] of this.models) {
      const saved: ModelState = { quality: m.quality.toState(), history: m.history };
      records.set(`model:${name}`, saved);
    }
    return records;
  }

  restore(records: StateRecords): void {
    for (const [id, value] of records) {
      if (!id.startsWith("model:")) continue;
      const saved = value as ModelState;
      const model = this.model(id.slice("model:".length));
      model.quality.restore(saved.quality);
      model.history.splice(
        0,
        model.history.length,
        ...saved.history.slice(-this.context.config.history.size),
      );
    }
  }

  /** Per model: its latest closed window's accuracy and the floor that window was judged against. */
  latest(): Map<string, { accuracy: number; floor: number }> {
    const out = new Map<string, { accuracy: number; floor: number }>();
    for (const [name, m] of this.models) {
      const latest = m.history.at(-1);
      if (latest) out.set(name, { accuracy: latest.accuracy, floor: this.modelConfig(name).accuracyFloor });
    }
    return out;
  }

  status(active: Map<string, ActiveAlert>): Record<string, ModelStatus> {
    const { config } = this.context;
    return Object.fromEntries(
      [...this.models].map(([name, m]) => {
        const alert = active.get(`ACCURACY:${name}`);
        const latest = m.history.at(-1) ?? null;
        const status: ModelStatus = {
          ...this.modelConfig(name),
          window: config.accuracy.window,
          latest,
          severity: latest?.severity ?? "ok",
          openWindow: m.quality.openWindow,
          joined: m.quality.joined,
          unjudgeable: m.quality.unjudgeable,
          pending: m.quality.pending,
          alert: alert ? { alertId: alert.alert.alert_id, since: alert.alert.at, worst: alert.worst } : null,
          history: m.history,
        };
        return [name, status];
      }),
    );
  }
}
