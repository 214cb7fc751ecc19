/**
 * The monitor's saved state, through JSON as on the state topic: a monitor restored mid-incident
 * and mid-window continues exactly as the one that was never stopped (same windows, same
 * statistics, the same incident resolving once).
 */
import type { DriftAlertRecord } from "@tessera/kafka";
import { describe, expect, it } from "vitest";
import { DriftMonitor, defaultConfig, type StateSnapshot } from "../src/index.js";
import { Generator, type Incidents, referenceProfile } from "./scenario.js";

const profile = referenceProfile();
const config = defaultConfig({
  hysteresis: { coolDownMs: 0, resolveAfter: 2 },
  freshness: { warnSeconds: 1e9, criticalSeconds: 1e9 },
  accuracy: { window: 1000 },
});

function monitor(clock: { now: number }) {
  const alerts: DriftAlertRecord[] = [];
  const m = new DriftMonitor({ config, profile, emit: (a) => alerts.push(a), now: () => clock.now });
  return { m, alerts };
}

/** The same events into each monitor, then one evaluation. */
function feed(monitors: DriftMonitor[], generator: Generator, events: number, incidents: Incidents = {}) {
  for (let i = 0; i < events; i++) {
    const e = generator.next(incidents);
    for (const m of monitors) {
      m.ingestFeatureUpdate(e.update);
      for (const p of e.predictions) m.ingestPrediction(p);
      m.ingestLabel(e.label);
    }
  }
  for (const m of monitors) m.evaluate();
}

const viaJson = (snapshot: StateSnapshot): StateSnapshot =>
  new Map([...snapshot].map(([part, records]) => [part, new Map(JSON.parse(JSON.stringify([...records])))]));

describe("saved state", () => {
  it("a monitor restored mid-incident and mid-window continues exactly like the one never stopped", () => {
    const clock = { now: 1_800_000_000_000 };
    const original = monitor(clock);
    const generator = new Generator(8);
    feed([original.m], generator, 1000, { newCategory: true, accuracyDrop: true });
    clock.now += 1000;
    feed([original.m], generator, 1000);
    clock.now += 1000;
    feed([original.m], generator, 500);
    const firing = original.alerts.filter((a) => a.status === "FIRING");
    expect(firing.map((a) => a.subject).sort()).toEqual(["churn", "payments:country"]);
    expect(original.alerts.filter((a) => a.status === "RESOLVED")).toEqual([]);

    const restored = monitor(clock);
    restored.m.restore(viaJson(original.m.snapshot()));
    const before = restored.m.status();
    expect(before.alerts.active).toEqual(original.m.status().alerts.active);
    expect(before.drift.features["payments:country"]!.openWindow.observations).toBe(500);

    clock.now += 1000;
    feed([original.m, restored.m], generator, 500);
    clock.now += 1000;
    feed([original.m, restored.m], generator, 1000);
    const resolved = restored.alerts.filter((a) => a.status === "RESOLVED");
    expect(resolved.map((a) => [a.subject, a.alert_id]).sort()).toEqual(
      firing.map((a) => [a.subject, a.alert_id]).sort(),
    );
    expect(restored.alerts.filter((a) => a.status === "FIRING")).toEqual([]);
    expect(restored.alerts).toEqual(original.alerts.slice(firing.length));

    // Same sketches, same counts: every statistic of every window equal, not just close.
    const a = original.m.status();
    const b = restored.m.status();
    expect(b.drift).toEqual(a.drift);
    // Predictions waiting for a label are not saved (documented): all else of accuracy is equal.
    const withoutPending = (s: typeof a) =>
      Object.fromEntries(Object.entries(s.accuracy.models).map(([name, { pending: _, ...m }]) => [name, m]));
    expect(withoutPending(b)).toEqual(withoutPending(a));
    expect(b.accuracy.models["fraud"]!.pending.predictions).toBeLessThan(
      a.accuracy.models["fraud"]!.pending.predictions,
    );
    expect(b.freshness.sources).toEqual(a.freshness.sources);
  });

  it("a window whose reference type changed is dropped, not misread", () => {
    const clock = { now: 1_800_000_000_000 };
    const original = monitor(clock);
    feed([original.m], new Generator(3), 200);
    const snapshot = viaJson(original.m.snapshot());
    const changed = structuredClone(profile);
    changed.features["country"] = changed.features["amount_mean"]!; // now numerical
    const restored = new DriftMonitor({ config, profile: changed, emit: () => {}, now: () => clock.now });
    restored.restore(snapshot);
    const features = restored.status().drift.features;
    expect(features["payments:country"]!.openWindow.observations).toBe(0);
    expect(features["payments:amount_mean"]!.openWindow.observations).toBe(200);
  });
});
