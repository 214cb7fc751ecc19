import { describe, expect, it } from "vitest";
import { defaultGeneratorOptions, PaymentsGenerator } from "../src/demo/generator.js";

const draw = (g: PaymentsGenerator, n: number) => Array.from({ length: n }, (_, i) => g.payment(1_000 + i));

describe("PaymentsGenerator", () => {
  it("is reproducible from its seed", () => {
    expect(draw(new PaymentsGenerator(), 50)).toEqual(draw(new PaymentsGenerator(), 50));
    const other = new PaymentsGenerator({ ...defaultGeneratorOptions, seed: 7 });
    expect(draw(other, 50)).not.toEqual(draw(new PaymentsGenerator(), 50));
  });

  it("labels arrive after the payment and match its prediction id", () => {
    for (const { payment, prediction, label } of draw(new PaymentsGenerator(), 200)) {
      expect(prediction.prediction_id).toBe(payment.transaction_id);
      expect(label.prediction_id).toBe(payment.transaction_id);
      expect(label.labelled_at - payment.event_time).toBe(defaultGeneratorOptions.labelLagMs);
    }
  });

  it("keeps fraud near its rate and makes the model better than chance", () => {
    const rows = draw(new PaymentsGenerator(), 20_000);
    const fraud = rows.filter((r) => r.label.label);
    expect(fraud.length / rows.length).toBeGreaterThan(0.02);
    expect(fraud.length / rows.length).toBeLessThan(0.04);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const fraudScore = mean(fraud.map((r) => r.prediction.score!));
    const okScore = mean(rows.filter((r) => !r.label.label).map((r) => r.prediction.score!));
    expect(fraudScore).toBeGreaterThan(okScore * 2);
  });

  it("drift brings a new country and larger amounts", () => {
    const g = new PaymentsGenerator();
    const before = draw(g, 5000).map((r) => r.payment);
    g.drift = true;
    const after = draw(g, 5000).map((r) => r.payment);
    expect(before.some((p) => p.country === "BR")).toBe(false);
    const brShare = after.filter((p) => p.country === "BR").length / after.length;
    expect(brShare).toBeGreaterThan(0.2);
    expect(brShare).toBeLessThan(0.3);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    expect(median(after.map((p) => p.amount)) / median(before.map((p) => p.amount))).toBeGreaterThan(1.5);
  });
});
