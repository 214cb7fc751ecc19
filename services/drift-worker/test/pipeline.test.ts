/**
 * The dashboard's pipeline view: owners, lineage and gates per item, and SLO budgets from the
 * worker's own samples (freshness from view ages, accuracy from the models' windows).
 */
import { type GateState, parseDefinitionsYaml } from "@tessera/transforms";
import { describe, expect, it } from "vitest";
import { PipelineTracker } from "../src/pipeline.js";

const definitions = parseDefinitionsYaml(`
sources:
  - { name: tx, topic: payments, schema: payments-value, archive: archive/payments, entity: card_id, timestamp: ts, owner: platform }
views:
  - name: cards
    source: tx
    owner: risk
    onCall: { receiver: risk-pager }
    features:
      - { name: n_1h, op: count, window: 1h, hop: 5m }
models:
  - { name: fraud, views: [cards], owner: ml, accuracyFloor: 0.9 }
slos:
  - { name: fresh, kind: freshness, view: cards, threshold: 30s, objective: 0.9, window: 1h }
  - { name: accurate, kind: accuracy, model: fraud, objective: 0.5, window: 1d }
  - { name: fast, kind: latency, view: cards, threshold: 10ms, objective: 0.99 }
`);

const tripped: GateState = {
  subject: "view:cards",
  state: "tripped",
  causes: ["drift_critical"],
  since: 1000,
  by: "drift-worker",
  at: 1000,
  note: "critical drift: cards:n_1h",
  log: [],
};

describe("pipeline status", () => {
  it("lists every view and model with owner, on-call, lineage and its gate when not ok", () => {
    const { items } = new PipelineTracker(definitions).status([tripped], 2000);
    const view = definitions.views[0]!;
    expect(items).toEqual([
      {
        kind: "model",
        name: "fraud",
        owner: "ml",
        onCall: null,
        lineage: `fraud ← cards@${view.version} ← payments (payments-value) → archive/payments`,
        gate: null,
      },
      {
        kind: "view",
        name: "cards",
        owner: "risk",
        onCall: "risk-pager",
        lineage: `cards@${view.version} ← payments (payments-value) → archive/payments`,
        gate: {
          state: "tripped",
          causes: ["drift_critical"],
          since: 1000,
          by: "drift-worker",
          note: "critical drift: cards:n_1h",
        },
      },
    ]);
  });

  it("spends an SLO's budget by the share of bad samples in its window; Prometheus measures the rest", () => {
    const tracker = new PipelineTracker(definitions);
    const t0 = 10 * 3_600_000;
    // 20 evaluations a minute apart: the view 5 s old, except 1 in 10 at 60 s (over the 30 s threshold);
    // accuracy over its floor, except the last 5.
    for (let i = 0; i < 20; i++) {
      tracker.observe({
        now: t0 + i * 60_000,
        viewAges: new Map([["cards", i % 10 === 9 ? 60_000 : 5000]]),
        accuracy: new Map([["fraud", { accuracy: i >= 15 ? 0.8 : 0.95, floor: 0.7 }]]),
      });
    }
    const slos = tracker.status([], t0 + 19 * 60_000).slos;
    const [fresh, accurate, fast] = slos;
    // 2 bad of 20 = 10% against a 10% budget: all spent, burning at exactly 1.
    expect(fresh).toMatchObject({ measuredBy: "drift-worker", samples: 20 });
    expect(fresh!.budgetLeft).toBeCloseTo(0, 9);
    expect(fresh!.burnRate1h).toBeCloseTo(1, 9);
    // 5 of 20 under the definitions' floor (0.9, not the worker's 0.7) = 25% of a 50% budget.
    expect(accurate!.budgetLeft).toBeCloseTo(0.5, 9);
    expect(fast).toMatchObject({ measuredBy: "prometheus", budgetLeft: null, burnRate1h: null, samples: 0 });
    // Samples older than the SLO's window no longer count: 80 minutes on, only the new (good) one does.
    tracker.observe({ now: t0 + 80 * 60_000, viewAges: new Map([["cards", 1000]]), accuracy: new Map() });
    const later = tracker.status([], t0 + 80 * 60_000).slos[0]!;
    expect(later).toMatchObject({ samples: 1, budgetLeft: 1, burnRate1h: 0 });
  });
});
