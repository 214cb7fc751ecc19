/**
 * Prediction drift: a model's score and class each get a window (`model:score`, `model:class`);
 * a model is one dataset (`model:<name>`) for multiple-testing control.
 */
import type { PredictionRecord } from "@tessera/kafka";
import { DriftEvaluator } from "./drift.js";

export class PredictionDrift extends DriftEvaluator {
  ingest(prediction: PredictionRecord, now: number): void {
    const { model } = prediction;
    const dataset = `model:${model}`;
    if (prediction.score !== null)
      this.subject(dataset, model, "score", now)?.series.add(prediction.score, prediction.event_time, now);
    if (prediction.class !== null)
      this.subject(dataset, model, "class", now)?.series.add(prediction.class, prediction.event_time, now);
  }
}
