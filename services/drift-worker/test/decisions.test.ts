/** The pieces of a decision: hysteresis, multiple-testing control, accuracy/AUC and the label join. */
import type { LabelRecord, PredictionRecord } from "@tessera/kafka";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ModelQuality } from "../src/accuracy.js";
import { AlertTracker, adjust, binary, type Observation, outcomeOf, rocAuc } from "../src/index.js";

const observation = (severity: "ok" | "warn" | "critical", clear = severity === "ok"): Observation => ({
  kind: "FEATURE_DRIFT",
  subject: "v:f",
  severity,
  clear,
  statistic: "psi",
  value: severity === "ok" ? 0.01 : 0.3,
  threshold: 0.1,
  values: { psi: severity === "ok" ? 0.01 : 0.3 },
  windowStart: 0,
  windowEnd: 1,
  sampleSize: 1000,
  detail: "test",
});

describe("hysteresis", () => {
  it("FIRING and RESOLVED alternate, start with FIRING, share an id, and never outnumber the bad runs", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("ok", "warn", "critical", "band"), { maxLength: 200 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 5000 }),
        (sequence, resolveAfter, coolDownMs) => {
          let id = 0;
          const tracker = new AlertTracker({
            resolveAfter,
            coolDownMs,
            reference: "r",
            newId: () => `a${id++}`,
          });
          const alerts = sequence.flatMap((s, i) => {
            // "band": below the threshold but not clear of it (between clearFactor × t and t).
            const o = s === "band" ? observation("ok", false) : observation(s as "ok" | "warn" | "critical");
            const a = tracker.observe(o, i * 1000);
            return a ? [a] : [];
          });
          alerts.forEach((a, i) => {
            expect(a.status).toBe(i % 2 === 0 ? "FIRING" : "RESOLVED");
            if (i % 2 === 1) expect(a.alert_id).toBe(alerts[i - 1]!.alert_id);
          });
          const badRuns = sequence.filter(
            (s, i) =>
              s !== "ok" && s !== "band" && !(i > 0 && ["warn", "critical"].includes(sequence[i - 1]!)),
          ).length;
          expect(alerts.filter((a) => a.status === "FIRING").length).toBeLessThanOrEqual(badRuns);
          // Open exactly when the last alert was a FIRING.
          expect(tracker.active().length).toBe(alerts.at(-1)?.status === "FIRING" ? 1 : 0);
        },
      ),
    );
  });

  it("a statistic that flips every window pages once however long it flaps", () => {
    const tracker = new AlertTracker({ resolveAfter: 2, coolDownMs: 0, reference: "r" });
    const alerts = Array.from({ length: 1000 }, (_, i) =>
      tracker.observe(observation(i % 2 === 0 ? "warn" : "ok"), i),
    ).filter(Boolean);
    expect(alerts.map((a) => a!.status)).toEqual(["FIRING"]);
  });

  it("resolves only after the cool-down as well as the clear streak", () => {
    const tracker = new AlertTracker({ resolveAfter: 1, coolDownMs: 60_000, reference: "r" });
    expect(tracker.observe(observation("critical"), 0)?.status).toBe("FIRING");
    expect(tracker.observe(observation("ok"), 30_000)).toBeUndefined();
    const resolved = tracker.observe(observation("ok"), 60_000);
    expect(resolved).toMatchObject({ status: "RESOLVED", severity: "OK", value: 0.01, statistic: "psi" });
  });
});

describe("multiple-testing control", () => {
  it("Benjamini–Hochberg and Bonferroni on a worked example", () => {
    // Sorted: 0.005, 0.01, 0.03, 0.04, 0.2 → 5p/rank = 0.025, 0.025, 0.05, 0.05, 0.2 (already monotone).
    const out = adjust([0.01, 0.04, 0.03, 0.005, 0.2], "benjamini-hochberg");
    for (const [i, v] of [0.025, 0.05, 0.05, 0.025, 0.2].entries()) expect(out[i]).toBeCloseTo(v, 12);
    expect(adjust([0.01, 0.04, 0.5], "bonferroni")).toEqual([0.03, 0.12, 1]);
  });

  it("BH equals its definition min over j ≥ rank of m·p(j)/j, and never undercuts the raw p", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
        (ps) => {
          const out = adjust(ps, "benjamini-hochberg");
          const sorted = [...ps].sort((a, b) => a - b);
          const m = ps.length;
          ps.forEach((p, i) => {
            const rank = sorted.lastIndexOf(p) + 1;
            const expected = Math.min(1, ...sorted.slice(rank - 1).map((q, k) => (m * q) / (rank + k)));
            expect(out[i]).toBeCloseTo(expected, 12);
            expect(out[i]!).toBeGreaterThanOrEqual(p - 1e-15);
          });
        },
      ),
    );
  });
});

describe("accuracy and AUC", () => {
  it("AUC equals the share of (positive, negative) pairs ranked right, ties counting half", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ score: fc.integer({ min: 0, max: 20 }), positive: fc.boolean() }), {
          maxLength: 60,
        }),
        (items) => {
          const outcomes = items.map((o) => ({ ...o, correct: true, eventTime: 0 }));
          const pos = items.filter((o) => o.positive);
          const neg = items.filter((o) => !o.positive);
          const auc = rocAuc(outcomes);
          if (pos.length === 0 || neg.length === 0) {
            expect(auc).toBeNull();
            return;
          }
          let wins = 0;
          for (const p of pos)
            for (const n of neg) wins += p.score > n.score ? 1 : p.score === n.score ? 0.5 : 0;
          expect(auc).toBeCloseTo(wins / (pos.length * neg.length), 12);
        },
      ),
    );
  });

  it("binary labels and class/score predictions are judged as on-call would expect", () => {
    expect([binary(true), binary(0), binary("Fraud"), binary("no"), binary(2), binary("cat")]).toEqual([
      true,
      false,
      true,
      false,
      null,
      null,
    ]);
    const base: PredictionRecord = {
      prediction_id: "p",
      model: "m",
      model_version: "1",
      entity: "e",
      score: null,
      class: null,
      event_time: 0,
    };
    const config = { accuracyFloor: 0.7, accuracyCritical: 0.6, decisionThreshold: 0.5 };
    expect(outcomeOf({ ...base, score: 0.7 }, true, config)?.correct).toBe(true);
    expect(outcomeOf({ ...base, score: 0.2 }, "1", config)?.correct).toBe(false);
    expect(outcomeOf({ ...base, class: "true" }, 1, config)?.correct).toBe(true);
    expect(outcomeOf({ ...base, class: "cat" }, "cat", config)?.correct).toBe(true);
    expect(outcomeOf({ ...base, score: 0.9 }, "cat", config)).toBeNull();
  });

  it("every label joins its own prediction once, in any arrival order, by id or by entity + time", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ withId: fc.boolean(), right: fc.boolean(), entity: fc.integer({ min: 0, max: 5 }) }),
          {
            minLength: 1,
            maxLength: 40,
          },
        ),
        fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
        (pairs, randoms) => {
          const quality = new ModelQuality("m", {
            model: { accuracyFloor: 0.7, accuracyCritical: 0.6, decisionThreshold: 0.5 },
            window: pairs.length,
            maxPending: 1000,
            joinToleranceMs: 0,
          });
          // Times 10 ms apart: entity + exact time identifies a pair even when entities repeat.
          const events = pairs.flatMap((pair, i) => {
            const entity = `e${pair.entity}`;
            const time = i * 10;
            return [
              () =>
                quality.addPrediction({
                  prediction_id: `p${i}`,
                  model: "m",
                  model_version: "1",
                  entity,
                  score: null,
                  class: pair.right ? "true" : "false",
                  event_time: time,
                }),
              () =>
                quality.addLabel({
                  prediction_id: pair.withId ? `p${i}` : null,
                  model: "m",
                  entity,
                  label: true,
                  event_time: time,
                  labelled_at: time + 1,
                }),
            ];
          });
          const order = events
            .map((e, i) => [randoms.next().value, i, e] as const)
            .sort((a, b) => a[0] - b[0]);
          for (const [, , e] of order) e();
          expect(quality.joined).toBe(pairs.length);
          expect(quality.pending).toEqual({ predictions: 0, labels: 0, dropped: 0 });
          const [window] = quality.takeClosed();
          expect(window!.accuracy).toBeCloseTo(pairs.filter((p) => p.right).length / pairs.length, 12);
        },
      ),
    );
  });

  it("labels join predictions by id or by entity + time, in either order, with bounded buffers", () => {
    const quality = new ModelQuality("m", {
      model: { accuracyFloor: 0.7, accuracyCritical: 0.6, decisionThreshold: 0.5 },
      window: 4,
      maxPending: 3,
      joinToleranceMs: 100,
    });
    const p = (id: string, entity: string, t: number, cls: string): PredictionRecord => ({
      prediction_id: id,
      model: "m",
      model_version: "1",
      entity,
      score: null,
      class: cls,
      event_time: t,
    });
    const l = (id: string | null, entity: string, t: number, label: boolean): LabelRecord => ({
      prediction_id: id,
      model: "m",
      entity,
      label,
      event_time: t,
      labelled_at: t + 5,
    });
    quality.addPrediction(p("1", "a", 1000, "true"));
    quality.addLabel(l("1", "a", 1000, true)); // by id, prediction first: right
    quality.addLabel(l("2", "b", 2000, false)); // label first
    quality.addPrediction(p("2", "b", 2000, "true")); // wrong
    quality.addPrediction(p("3", "c", 3000, "false"));
    quality.addLabel(l(null, "c", 3050, false)); // entity + time within 100 ms: right
    quality.addLabel(l(null, "c", 9000, false)); // no partner: waits
    expect(quality.joined).toBe(3);
    expect(quality.pending).toEqual({ predictions: 0, labels: 1, dropped: 0 });
    quality.addPrediction(p("4", "d", 4000, "false"));
    quality.addLabel(l("4", "d", 4000, false));
    expect(quality.takeClosed()).toEqual([
      { model: "m", accuracy: 0.75, auc: null, labelled: 4, start: 1000, end: 4000 },
    ]);
    for (let i = 0; i < 5; i++) quality.addPrediction(p(`x${i}`, "z", i, "true"));
    expect(quality.pending).toEqual({ predictions: 3, labels: 1, dropped: 2 });
  });
});
