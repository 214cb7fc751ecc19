/**
 * A realistic, seeded payments stream for the demo: cards with home countries and spending habits,
 * merchants, occasional fraud (bigger amounts, foreign merchants) whose labels arrive late, a toy
 * fraud model's predictions, and a switch that injects drift (a new country, shifted amounts).
 */
import type { LabelRecord, PaymentTransactionRecord, PredictionRecord } from "@tessera/kafka";
import { seededUniform } from "@tessera/stats";

const homeCountries = [
  { code: "FR", weight: 0.55 },
  { code: "DE", weight: 0.15 },
  { code: "ES", weight: 0.12 },
  { code: "IT", weight: 0.1 },
  { code: "GB", weight: 0.08 },
];
const currencyOf: Record<string, string> = {
  FR: "EUR",
  DE: "EUR",
  ES: "EUR",
  IT: "EUR",
  GB: "GBP",
  BR: "BRL",
  US: "USD",
};

export const MODEL = "fraud-v1";

export interface GeneratorOptions {
  seed: number;
  cards: number;
  merchants: number;
  /** Share of payments that are fraudulent before drift. */
  fraudRate: number;
  /** Labels arrive this long after the payment. */
  labelLagMs: number;
}

export const defaultGeneratorOptions: GeneratorOptions = {
  seed: 42,
  cards: 400,
  merchants: 120,
  fraudRate: 0.03,
  labelLagMs: 5000,
};

export class PaymentsGenerator {
  private readonly random: () => number;
  private readonly cards: Array<{ id: string; home: string; scale: number }>;
  private next = 0;
  /** Once set, 25% of payments come from a new country (BR) and amounts are 1.8× larger. */
  drift = false;

  constructor(readonly options: GeneratorOptions = defaultGeneratorOptions) {
    this.random = seededUniform(options.seed);
    this.cards = Array.from({ length: options.cards }, (_, i) => ({
      id: `card-${String(i).padStart(4, "0")}`,
      home: this.pick(homeCountries),
      // Each card has its own typical spend: lognormal around 25 (in major units).
      scale: Math.exp(3.2 + 0.5 * this.normal()),
    }));
  }

  /** One payment at `now`, its prediction, and (for later delivery) its label. */
  payment(now: number): {
    payment: PaymentTransactionRecord;
    prediction: PredictionRecord;
    label: LabelRecord;
  } {
    const card = this.cards[Math.floor(this.random() * this.cards.length)]!;
    const fraud = this.random() < this.options.fraudRate;
    let country =
      fraud && this.random() < 0.7 ? this.pick(homeCountries.filter((c) => c.code !== card.home)) : card.home;
    let amount = card.scale * Math.exp(0.6 * this.normal()) * (fraud ? 4 : 1);
    if (this.drift) {
      if (this.random() < 0.25) country = "BR";
      amount *= 1.8;
    }
    const id = `tx-${(this.next++).toString(36).padStart(7, "0")}`;
    const payment: PaymentTransactionRecord = {
      transaction_id: id,
      card_id: card.id,
      merchant_id: `m-${String(Math.floor(this.random() * this.options.merchants)).padStart(3, "0")}`,
      amount: Math.round(amount * 100) / 100,
      currency: currencyOf[country] ?? "EUR",
      country,
      event_time: now,
    };
    // A toy model: larger and foreign payments look riskier. It cannot see the new country's meaning,
    // so its accuracy falls when drift arrives, as a real model's would.
    const foreign = country !== card.home ? 1 : 0;
    const logit = -4 + 1.4 * Math.log(Math.max(amount, 1) / card.scale) + 2.2 * foreign + 0.3 * this.normal();
    const score = 1 / (1 + Math.exp(-logit));
    const prediction: PredictionRecord = {
      prediction_id: id,
      model: MODEL,
      model_version: "1",
      entity: card.id,
      score: Math.round(score * 1e6) / 1e6,
      class: score >= 0.5 ? "fraud" : "legit",
      event_time: now,
    };
    const label: LabelRecord = {
      prediction_id: id,
      model: MODEL,
      entity: card.id,
      label: fraud,
      event_time: now,
      labelled_at: now + this.options.labelLagMs,
    };
    return { payment, prediction, label };
  }

  cardIds(): string[] {
    return this.cards.map((c) => c.id);
  }

  private pick(options: Array<{ code: string; weight: number }>): string {
    const total = options.reduce((sum, o) => sum + o.weight, 0);
    let x = this.random() * total;
    for (const option of options) {
      x -= option.weight;
      if (x <= 0) return option.code;
    }
    return options[options.length - 1]!.code;
  }

  /** Standard normal by Box–Muller. */
  private normal(): number {
    const u = Math.max(this.random(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }
}
