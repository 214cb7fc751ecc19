/**
 * Model quality from late labels: each label is joined to its prediction (by prediction id, else
 * by entity and event time within a tolerance), in either arrival order, with bounded buffers.
 * Joined pairs fill tumbling windows of N labelled predictions; each window gives accuracy and,
 * for binary labels with scores, ROC AUC.
 */
import type { LabelRecord, PredictionRecord } from "@tessera/kafka";
import type { ModelConfig } from "./config.js";

export interface Outcome {
  correct: boolean;
  score: number | null;
  positive: boolean | null;
  eventTime: number;
}

export interface AccuracyWindow {
  model: string;
  accuracy: number;
  auc: number | null;
  labelled: number;
  start: number;
  end: number;
}

const POSITIVE = new Set(["true", "1", "yes", "positive", "fraud"]);
const NEGATIVE = new Set(["false", "0", "no", "negative", "legit"]);

/** A binary label as a boolean, or null for a multi-class or numeric target. */
export function binary(value: unknown): boolean | null {
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value === 1 ? true : value === 0 ? false : null;
  if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    if (POSITIVE.has(v)) return true;
    if (NEGATIVE.has(v)) return false;
  }
  return null;
}

/** Was the prediction right? null when it cannot be judged (a score against a multi-class label). */
export function outcomeOf(
  p: PredictionRecord,
  label: LabelRecord["label"],
  config: ModelConfig,
): Outcome | null {
  const positive = binary(label);
  let correct: boolean | null = null;
  if (p.class !== null) {
    const predicted = binary(p.class);
    correct = predicted !== null && positive !== null ? predicted === positive : p.class === String(label);
  } else if (p.score !== null && positive !== null) {
    correct = p.score >= config.decisionThreshold === positive;
  }
  if (correct === null) return null;
  return { correct, score: p.score, positive, eventTime: p.event_time };
}

/** ROC AUC = Mann–Whitney U / (n₊·n₋), ties at half weight (average ranks); null without both classes. */
export function rocAuc(outcomes: readonly Outcome[]): number | null {
  const scored = outcomes.filter((o) => o.score !== null && o.positive !== null);
  const positives = scored.filter((o) => o.positive).length;
  const negatives = scored.length - positives;
  if (positives === 0 || negatives === 0) return null;
  const sorted = [...scored].sort((a, b) => a.score! - b.score!);
  let rankSum = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1]!.score === sorted[i]!.score) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (sorted[k]!.positive) rankSum += averageRank;
    i = j + 1;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * What survives a restart: the open window's outcomes and the closed windows not yet judged.
 * Predictions still waiting for their label are not kept (up to maxPending per model is too
 * much to rewrite on every save): a label arriving after a restart for one of them stays unjoined.
 */
export interface QualityState {
  outcomes: Outcome[];
  closed: AccuracyWindow[];
  joined: number;
  unjudgeable: number;
}

export interface ModelQualityOptions {
  model: ModelConfig;
  window: number;
  maxPending: number;
  joinToleranceMs: number;
}

/**
 * A FIFO map that drops its oldest entries past a size, counting what it dropped, with an index
 * by entity so the entity+time join looks at one entity's entries, not the whole buffer.
 */
class Bounded<V extends { entity: string }> {
  private readonly items = new Map<string, V>();
  private readonly byEntity = new Map<string, Set<string>>();
  dropped = 0;
  constructor(private readonly max: number) {}

  get size(): number {
    return this.items.size;
  }

  set(key: string, value: V): void {
    this.items.set(key, value);
    const keys = this.byEntity.get(value.entity) ?? new Set<string>();
    keys.add(key);
    this.byEntity.set(value.entity, keys);
    while (this.items.size > this.max) {
      this.take(this.items.keys().next().value!);
      this.dropped++;
    }
  }

  /** Removes and returns the entry under `key`. */
  take(key: string): V | undefined {
    const value = this.items.get(key);
    if (value === undefined) return undefined;
    this.items.delete(key);
    const keys = this.byEntity.get(value.entity)!;
    keys.delete(key);
    if (keys.size === 0) this.byEntity.delete(value.entity);
    return value;
  }

  /** Removes and returns the oldest entry of `entity` that matches. */
  takeFirst(entity: string, match: (v: V) => boolean): V | undefined {
    for (const key of this.byEntity.get(entity) ?? []) {
      if (match(this.items.get(key)!)) return this.take(key);
    }
    return undefined;
  }
}

export class ModelQuality {
  private readonly predictions: Bounded<PredictionRecord>;
  /** Labels that came first: by prediction id, or (without one) in arrival order per entity. */
  private readonly labelsById: Bounded<LabelRecord>;
  private readonly labelsWithoutId: Bounded<LabelRecord>;
  private outcomes: Outcome[] = [];
  private readonly closed: AccuracyWindow[] = [];
  joined = 0;
  unjudgeable = 0;

  constructor(
    readonly model: string,
    private readonly options: ModelQualityOptions,
  ) {
    this.predictions = new Bounded(options.maxPending);
    this.labelsById = new Bounded(options.maxPending);
    this.labelsWithoutId = new Bounded(options.maxPending);
  }

  addPrediction(p: PredictionRecord): void {
    const label =
      this.labelsById.take(p.prediction_id) ??
      this.labelsWithoutId.takeFirst(p.entity, (l) => this.near(p, l));
    if (label) this.record(p, label);
    else this.predictions.set(p.prediction_id, p);
  }

  addLabel(l: LabelRecord): void {
    const prediction =
      l.prediction_id !== null
        ? this.predictions.take(l.prediction_id)
        : this.predictions.takeFirst(l.entity, (p) => this.near(p, l));
    if (prediction) this.record(prediction, l);
    else if (l.prediction_id !== null) this.labelsById.set(l.prediction_id, l);
    else this.labelsWithoutId.set(`${l.entity}\u0000${l.event_time}\u0000${this.joined}`, l);
  }

  get pending(): { predictions: number; labels: number; dropped: number } {
    return {
      predictions: this.predictions.size,
      labels: this.labelsById.size + this.labelsWithoutId.size,
      dropped: this.predictions.dropped + this.labelsById.dropped + this.labelsWithoutId.dropped,
    };
  }

  /** Labelled predictions in the open window (for the status page). */
  get openWindow(): { labelled: number; accuracy: number | null } {
    const n = this.outcomes.length;
    return { labelled: n, accuracy: n ? this.outcomes.filter((o) => o.correct).length / n : null };
  }

  /** Closed windows, oldest first, handed over once. */
  takeClosed(): AccuracyWindow[] {
    return this.closed.splice(0);
  }

  toState(): QualityState {
    return {
      outcomes: this.outcomes,
      closed: this.closed,
      joined: this.joined,
      unjudgeable: this.unjudgeable,
    };
  }

  restore(state: QualityState): void {
    this.outcomes = [...state.outcomes];
    this.closed.splice(0, this.closed.length, ...state.closed);
    this.joined = state.joined;
    this.unjudgeable = state.unjudgeable;
  }

  private near(p: PredictionRecord, l: LabelRecord): boolean {
    return p.entity === l.entity && Math.abs(p.event_time - l.event_time) <= this.options.joinToleranceMs;
  }

  private record(p: PredictionRecord, l: LabelRecord): void {
    this.joined++;
    const outcome = outcomeOf(p, l.label, this.options.model);
    if (!outcome) {
      this.unjudgeable++;
      return;
    }
    this.outcomes.push(outcome);
    if (this.outcomes.length < this.options.window) return;
    const outcomes = this.outcomes;
    this.outcomes = [];
    let start = Number.POSITIVE_INFINITY;
    let end = Number.NEGATIVE_INFINITY;
    for (const o of outcomes) {
      start = Math.min(start, o.eventTime);
      end = Math.max(end, o.eventTime);
    }
    this.closed.push({
      model: this.model,
      accuracy: outcomes.filter((o) => o.correct).length / outcomes.length,
      auc: rocAuc(outcomes),
      labelled: outcomes.length,
      start,
      end,
    });
    if (this.closed.length > 100) this.closed.shift();
  }
}
