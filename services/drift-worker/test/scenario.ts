/**
 * A seeded synthetic payments stream for the drift tests: one view with five features, a scored
 * model and a classifying model with labels, and one switch per incident the worker must catch.
 */
import type { FeatureUpdateRecord, LabelRecord, PredictionRecord } from "@tessera/kafka";
import { buildProfile, type ReferenceProfile, seededUniform } from "@tessera/stats";

export interface Incidents {
  /** amount_mean: +0.5σ. */
  meanShift?: boolean;
  /** amount_std: σ doubled, same mean. */
  varianceChange?: boolean;
  /** country: a new category takes 20%. */
  newCategory?: boolean;
  /** txn_count: nulls from 1% to 40%. */
  nullSurge?: boolean;
  /** fraud model: scores shift up. */
  scoreShift?: boolean;
  /** churn model: accuracy from 90% to 55%. */
  accuracyDrop?: boolean;
}

/** Subjects each incident must alert on (kind, subject). */
export const INCIDENT_SUBJECTS: Record<keyof Incidents, { kind: string; subject: string }> = {
  meanShift: { kind: "FEATURE_DRIFT", subject: "payments:amount_mean" },
  varianceChange: { kind: "FEATURE_DRIFT", subject: "payments:amount_std" },
  newCategory: { kind: "FEATURE_DRIFT", subject: "payments:country" },
  nullSurge: { kind: "FEATURE_DRIFT", subject: "payments:txn_count" },
  scoreShift: { kind: "PREDICTION_DRIFT", subject: "fraud:score" },
  accuracyDrop: { kind: "ACCURACY", subject: "churn" },
};

const COUNTRIES: Array<[string, number]> = [
  ["FR", 0.4],
  ["DE", 0.25],
  ["ES", 0.15],
  ["IT", 0.1],
  ["NL", 0.1],
];

export class Generator {
  private readonly random: () => number;
  private n = 0;

  constructor(
    seed: number,
    private readonly startTime = Date.now(),
  ) {
    this.random = seededUniform(seed);
  }

  /** The event time the next event will carry. */
  get nextTime(): number {
    return this.startTime + this.n;
  }

  private normal(mean: number, sd: number): number {
    const u = 1 - this.random();
    const v = this.random();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  private country(incidents: Incidents): string {
    if (incidents.newCategory && this.random() < 0.2) return "BR";
    let u = this.random();
    for (const [c, p] of COUNTRIES) {
      if (u < p) return c;
      u -= p;
    }
    return "NL";
  }

  /** Feature columns of one row; the reference is built from the same code with no incident. */
  row(incidents: Incidents = {}): Record<string, number | string | null> {
    const count = Math.round(Math.max(0, this.normal(12, 4)));
    return {
      amount_mean: this.normal(incidents.meanShift ? 107.5 : 100, 15),
      amount_std: this.normal(50, incidents.varianceChange ? 20 : 10),
      amount_control: this.normal(0, 1),
      country: this.country(incidents),
      txn_count: this.random() < (incidents.nullSurge ? 0.4 : 0.01) ? null : count,
      score: 1 / (1 + Math.exp(-this.normal(incidents.scoreShift ? -1 : -2, 1))),
    };
  }

  /** The next event: one feature update and two predictions, with the churn model's label. */
  next(incidents: Incidents = {}): {
    update: FeatureUpdateRecord;
    predictions: PredictionRecord[];
    label: LabelRecord;
  } {
    const i = this.n++;
    const time = this.startTime + i;
    const row = this.row(incidents);
    const { score, ...values } = row;
    const entity = `card-${i % 997}`;
    const churnPositive = this.random() < 0.3;
    const right = this.random() < (incidents.accuracyDrop ? 0.55 : 0.9);
    return {
      update: { view: "payments", version: "v1", entity, event_time: time, computed_at: time, values },
      predictions: [
        {
          prediction_id: `fraud-${i}`,
          model: "fraud",
          model_version: "1",
          entity,
          score: score as number,
          class: null,
          event_time: time,
        },
        {
          prediction_id: `churn-${i}`,
          model: "churn",
          model_version: "3",
          entity,
          score: null,
          class: right === churnPositive ? "true" : "false",
          event_time: time,
        },
      ],
      label: {
        prediction_id: `churn-${i}`,
        model: "churn",
        entity,
        label: churnPositive,
        event_time: time,
        labelled_at: time + 1,
      },
    };
  }
}

/** The reference: 20,000 stationary rows; model score under the snapshot name `fraud__score`. */
export function referenceProfile(seed = 1): ReferenceProfile {
  const generator = new Generator(seed, 0);
  const rows = Array.from({ length: 20_000 }, () => {
    const { score, ...features } = generator.row();
    return { ...features, fraud__score: score };
  });
  return buildProfile(rows);
}
