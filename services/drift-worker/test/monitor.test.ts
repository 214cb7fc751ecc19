/**
 * The worker's window and decision logic without Kafka: stationary data must not page (the false
 * alarm rate is measured and printed), and each injected incident pages once, in its first window.
 */
import type { DriftAlertRecord } from "@tessera/kafka";
import { describe, expect, it } from "vitest";
import { DriftMonitor, type DriftWorkerConfig, defaultConfig } from "../src/index.js";
import { Generator, INCIDENT_SUBJECTS, type Incidents, referenceProfile } from "./scenario.js";

const profile = referenceProfile();

function monitor(overrides: Parameters<typeof defaultConfig>[0] = {}, viewSlaMs?: Map<string, number>) {
  const alerts: DriftAlertRecord[] = [];
  let clock = 1_800_000_000_000;
  const config: DriftWorkerConfig = defaultConfig({
    hysteresis: { coolDownMs: 0 },
    freshness: { warnSeconds: 1e9, criticalSeconds: 1e9 },
    ...overrides,
  });
  const m = new DriftMonitor({ config, profile, emit: (a) => alerts.push(a), now: () => clock, viewSlaMs });
  return {
    m,
    alerts,
    config,
    advance(ms: number) {
      clock += ms;
    },
  };
}

/** Feeds `windows` feature windows (and as many events to the models), evaluating after each. */
function feed(
  t: ReturnType<typeof monitor>,
  generator: Generator,
  windows: number,
  incidents: Incidents = {},
  perWindow = t.config.window.size,
) {
  for (let w = 0; w < windows; w++) {
    for (let i = 0; i < perWindow; i++) {
      const e = generator.next(incidents);
      t.m.ingestFeatureUpdate(e.update);
      for (const p of e.predictions) t.m.ingestPrediction(p);
      t.m.ingestLabel(e.label);
    }
    t.advance(1000);
    t.m.evaluate();
  }
}

describe("stationary data", () => {
  it("200 windows per subject raise no alert; the false-alarm rate and each check's margin are measured", () => {
    const t = monitor({ history: { size: 400 } });
    feed(t, new Generator(11), 200);
    const status = t.m.status();
    const subjects = { ...status.drift.features, ...status.drift.predictions };
    expect(Object.keys(subjects).sort()).toEqual([
      "fraud:score",
      "payments:amount_control",
      "payments:amount_mean",
      "payments:amount_std",
      "payments:country",
      "payments:txn_count",
    ]);
    // The churn model's classes have no reference column: listed, not tested.
    expect(status.drift.unmonitored).toEqual(["churn:class"]);
    const rows: string[] = [];
    let rawSignificant = 0;
    let bad = 0;
    let windows = 0;
    for (const [name, f] of Object.entries(subjects)) {
      expect(f.history).toHaveLength(200);
      const max = (pick: (h: (typeof f.history)[number]) => number | undefined) =>
        Math.max(...f.history.map((h) => pick(h) ?? 0));
      for (const h of f.history) {
        windows++;
        if (h.severity !== "ok") bad++;
        const p = h.statistics.ks?.pValue ?? h.statistics.chiSquared?.pValue;
        if (p !== undefined && p < 0.01) rawSignificant++;
      }
      rows.push(
        `  ${name.padEnd(24)} max psi ${max((h) => h.statistics.psi).toFixed(4)}  max js ${max((h) => h.statistics.js).toFixed(4)}  ` +
          `max ks D ${max((h) => h.statistics.ks?.statistic).toFixed(4)}  max V ${max((h) => h.statistics.cramersV).toFixed(4)}  ` +
          `max null-rate rise ${max((h) => h.statistics.nullRate - h.statistics.referenceNullRate).toFixed(4)}`,
      );
    }
    const accuracy = status.accuracy.models["churn"]!;
    expect(accuracy.history.length).toBe(200 * (1000 / t.config.accuracy.window));
    const accuracyWindows = accuracy.history.length;
    const minAccuracy = Math.min(...accuracy.history.map((h) => h.accuracy));
    const tested = windows + accuracyWindows;
    console.log(
      `stationary: ${t.alerts.length} alerts over ${tested} tested windows (${windows} drift + ` +
        `${accuracyWindows} accuracy): false-alarm rate ${t.alerts.length / tested}; ` +
        `${bad} windows judged warn or worse; ${rawSignificant} had an unadjusted KS/chi² p < 0.01 ` +
        `(the effect-size floors keep those quiet); lowest window accuracy ${minAccuracy.toFixed(3)} ` +
        `(floor ${accuracy.accuracyFloor})\n${rows.join("\n")}`,
    );
    expect(bad).toBe(0);
    expect(t.alerts).toEqual([]);
  }, 120_000);

  it("small windows below minSamples get no verdict rather than noisy alerts", () => {
    const t = monitor({ window: { size: 200 } });
    feed(t, new Generator(3), 20, { meanShift: true });
    expect(t.alerts.filter((a) => a.kind === "FEATURE_DRIFT")).toEqual([]);
    expect(t.m.status().drift.features["payments:amount_mean"]!.latest!.insufficient).toBe(true);
  });
});

describe("incidents", () => {
  const cases = Object.keys(INCIDENT_SUBJECTS) as Array<keyof Incidents>;

  it.each(cases)("%s fires once, in the first window that holds it, and resolves once after", (incident) => {
    const t = monitor();
    const generator = new Generator(21);
    feed(t, generator, 3);
    expect(t.alerts).toEqual([]);
    const injectedAt = generator.nextTime;
    feed(t, generator, 4, { [incident]: true });
    feed(t, generator, 4);
    const { kind, subject } = INCIDENT_SUBJECTS[incident];
    const firing = t.alerts.filter((a) => a.status === "FIRING");
    expect(firing.map((a) => `${a.kind} ${a.subject}`)).toEqual([`${kind} ${subject}`]);
    const alert = firing[0]!;
    const windowSpan = incident === "accuracyDrop" ? t.config.accuracy.window : t.config.window.size;
    expect(alert.window_start).toBeGreaterThanOrEqual(injectedAt);
    expect(alert.window_end).toBeLessThan(injectedAt + windowSpan + 1);
    const resolved = t.alerts.filter((a) => a.status === "RESOLVED");
    expect(resolved).toHaveLength(1);
    expect(resolved[0]!.alert_id).toBe(alert.alert_id);
    expect(alert.message).toMatch(subject);
  });

  it("a flapping statistic pages once: bad, ok, bad, ok windows keep one incident open", () => {
    const t = monitor({ hysteresis: { resolveAfter: 3, coolDownMs: 0 } });
    const generator = new Generator(5);
    for (let i = 0; i < 6; i++) {
      feed(t, generator, 1, { meanShift: true });
      feed(t, generator, 1);
    }
    expect(t.alerts.filter((a) => a.subject === "payments:amount_mean").map((a) => a.status)).toEqual([
      "FIRING",
    ]);
    feed(t, generator, 3);
    expect(t.alerts.filter((a) => a.subject === "payments:amount_mean").map((a) => a.status)).toEqual([
      "FIRING",
      "RESOLVED",
    ]);
  });

  it("a scoped worker tests only its views and models", () => {
    const t = monitor({ scope: { views: ["other"], models: ["churn"] } });
    feed(t, new Generator(10), 2, { meanShift: true, scoreShift: true, accuracyDrop: true });
    const status = t.m.status();
    expect(Object.keys(status.drift.features)).toEqual([]);
    expect(Object.keys(status.drift.predictions)).toEqual([]);
    expect(Object.keys(status.accuracy.models)).toEqual(["churn"]);
    expect(t.alerts.map((a) => `${a.kind} ${a.subject}`)).toEqual(["ACCURACY churn"]);
  });

  it("per-feature thresholds override the defaults", () => {
    const t = monitor({
      featureThresholds: {
        "payments:amount_mean": {
          psiWarn: 10,
          psiCritical: 20,
          ksWarn: 2,
          ksCritical: 3,
          jsWarn: 2,
          jsCritical: 3,
        },
      },
    });
    feed(t, new Generator(9), 3, { meanShift: true });
    expect(t.alerts.map((a) => a.subject)).not.toContain("payments:amount_mean");
  });
});

describe("time-based windows", () => {
  it("close on processing time: a full window gets a verdict, a thin one is marked insufficient, none is empty", () => {
    const t = monitor({ window: { mode: "time", durationMs: 60_000 } });
    const generator = new Generator(8);
    feed(t, generator, 1, { meanShift: true }, 800); // advances 1 s: the window is still open
    expect(t.m.status().drift.features["payments:amount_mean"]!.history).toEqual([]);
    t.advance(60_000);
    t.m.evaluate();
    feed(t, generator, 1, {}, 300);
    t.advance(60_000);
    t.m.evaluate();
    t.advance(60_000);
    t.m.evaluate(); // nothing arrived: no window to test
    const history = t.m.status().drift.features["payments:amount_mean"]!.history;
    expect(history.map((h) => [h.window.observations, h.severity, h.insufficient])).toEqual([
      [800, "critical", false],
      [300, "ok", true],
    ]);
    expect(t.alerts.filter((a) => a.subject === "payments:amount_mean").map((a) => a.status)).toEqual([
      "FIRING",
    ]);
  });
});

describe("freshness", () => {
  it("fires when the newest event gets old, once, and resolves when data flows again", () => {
    const t = monitor({
      freshness: {
        warnSeconds: 60,
        criticalSeconds: 300,
        // Labels come in daily batches: their own thresholds.
        sources: { "tessera.labels": { warnSeconds: 86_400, criticalSeconds: 172_800 } },
      },
    });
    const generator = new Generator(1, 1_800_000_000_000);
    feed(t, generator, 1);
    expect(t.alerts).toEqual([]);
    for (let i = 0; i < 5; i++) {
      t.advance(30_000);
      t.m.evaluate();
    }
    const fired = t.alerts.filter((a) => a.kind === "FRESHNESS");
    expect(fired.map((a) => [a.status, a.subject, a.statistic])).toEqual([
      ["FIRING", "tessera.features", "freshness_seconds"],
      ["FIRING", "tessera.predictions", "freshness_seconds"],
    ]);
    expect(t.m.status().freshness.sources["tessera.features"]!.ageSeconds).toBeGreaterThan(60);
    const fresh = new Generator(2, 1_800_000_000_000 + 200_000);
    feed(t, fresh, 2);
    expect(t.alerts.filter((a) => a.kind === "FRESHNESS" && a.status === "RESOLVED")).toHaveLength(2);
  });

  it("a view past its freshness SLA pages once, as view:<name>, and resolves when its updates are fresh", () => {
    const t = monitor({}, new Map([["payments", 60_000]]));
    feed(t, new Generator(1, 1_800_000_000_000), 1);
    const views = () => t.alerts.filter((a) => a.subject.startsWith("view:"));
    expect(views()).toEqual([]);
    for (let i = 0; i < 4; i++) {
      t.advance(30_000);
      t.m.evaluate();
    }
    expect(views().map((a) => [a.kind, a.status, a.subject, a.severity, a.statistic, a.threshold])).toEqual([
      ["FRESHNESS", "FIRING", "view:payments", "CRITICAL", "view_age_seconds", 60],
    ]);
    expect(views()[0]!.message).toContain("freshness SLA 60 s");
    feed(t, new Generator(2, 1_800_000_000_000 + 200_000), 2);
    expect(views().map((a) => a.status)).toEqual(["FIRING", "RESOLVED"]);
  });

  it("consumer lag over its threshold is a freshness alert", () => {
    const t = monitor({ freshness: { lagWarn: 100, lagCritical: 1000 } });
    t.m.setLag([{ group: "tessera-processor", topic: "payments.transactions", lag: 5000 }]);
    t.m.evaluate();
    expect(t.alerts.map((a) => [a.kind, a.subject, a.severity, a.value])).toEqual([
      ["FRESHNESS", "tessera-processor/payments.transactions", "CRITICAL", 5000],
    ]);
  });
});
