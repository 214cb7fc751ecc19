/**
 * Freshness: the age of the newest event seen per input topic, and consumer lag (polled from
 * Kafka by the input and handed in with `setLag`), each against its thresholds.
 */
import type { Severity } from "@tessera/stats";
import { ageDetail, lagDetail, viewAgeDetail } from "../alert-text.js";
import type { FreshnessStatus, LagReading } from "../status.js";
import { type Evaluator, type EvaluatorContext, level, type StateRecords } from "./context.js";

/** What is saved: the newest event time per topic and per view (lag is polled again after a restart). */
export interface FreshnessState {
  newest: Array<[string, number]>;
  views?: Array<[string, number]>;
}

export class FreshnessEvaluator implements Evaluator {
  private readonly newest = new Map<string, number>();
  /** Per view: what the quality gate holds against the view's freshness SLA (gates.ts). */
  private readonly newestOfView = new Map<string, number>();
  private lagReadings: LagReading[] = [];
  private readonly severity = new Map<string, Severity>();

  /** `viewSlaMs`: each view's freshness SLA (definitions): past it, a critical alert about `view:<name>`. */
  constructor(
    private readonly context: EvaluatorContext,
    private readonly viewSlaMs: ReadonlyMap<string, number> = new Map(),
  ) {}

  touch(source: string, eventTime: number): void {
    if (eventTime > (this.newest.get(source) ?? Number.NEGATIVE_INFINITY)) this.newest.set(source, eventTime);
  }

  touchView(view: string, eventTime: number): void {
    if (eventTime > (this.newestOfView.get(view) ?? Number.NEGATIVE_INFINITY))
      this.newestOfView.set(view, eventTime);
  }

  /** Age (ms) of the newest event seen per view. */
  viewAges(now: number): Map<string, number> {
    return new Map([...this.newestOfView].map(([view, newest]) => [view, Math.max(0, now - newest)]));
  }

  setLag(readings: LagReading[]): void {
    this.lagReadings = readings;
    for (const r of readings) this.context.metrics?.lag.set({ group: r.group, topic: r.topic }, r.lag);
  }

  evaluate(now: number): void {
    const { config, metrics } = this.context;
    const f = config.freshness;
    const clearFactor = config.hysteresis.clearFactor;
    for (const [source, newest] of this.newest) {
      const age = Math.max(0, (now - newest) / 1000);
      const { warnSeconds, criticalSeconds } = { ...f, ...f.sources[source] };
      const severity = level(age, warnSeconds, criticalSeconds);
      this.severity.set(source, severity);
      metrics?.freshness.set({ source }, age);
      this.context.observe(
        {
          kind: "FRESHNESS",
          subject: source,
          severity,
          clear: age < warnSeconds * clearFactor,
          statistic: "freshness_seconds",
          value: age,
          threshold: severity === "critical" ? criticalSeconds : warnSeconds,
          values: { freshness_seconds: age },
          windowStart: newest,
          windowEnd: now,
          sampleSize: 0,
          detail: ageDetail(age, warnSeconds, criticalSeconds),
        },
        now,
      );
    }
    // A view past its SLA: the alert its owner is paged with (the gate's freshness_sla cause, gates.ts,
    // holds its values meanwhile). Subject `view:<name>`, as the gate's: no topic name has a colon.
    for (const [view, newest] of this.newestOfView) {
      const slaMs = this.viewSlaMs.get(view);
      if (slaMs === undefined) continue;
      const age = Math.max(0, (now - newest) / 1000);
      const sla = slaMs / 1000;
      const severity = age > sla ? "critical" : "ok";
      this.context.observe(
        {
          kind: "FRESHNESS",
          subject: `view:${view}`,
          severity,
          clear: age < sla * clearFactor,
          statistic: "view_age_seconds",
          value: age,
          threshold: sla,
          values: { view_age_seconds: age },
          windowStart: newest,
          windowEnd: now,
          sampleSize: 0,
          detail: viewAgeDetail(view, age, sla),
        },
        now,
      );
    }
    for (const r of this.lagReadings) {
      const severity = level(r.lag, f.lagWarn, f.lagCritical);
      const subject = `${r.group}/${r.topic}`;
      this.severity.set(subject, severity);
      this.context.observe(
        {
          kind: "FRESHNESS",
          subject,
          severity,
          clear: r.lag < f.lagWarn * clearFactor,
          statistic: "consumer_lag",
          value: r.lag,
          threshold: severity === "critical" ? f.lagCritical : f.lagWarn,
          values: { consumer_lag: r.lag },
          windowStart: now,
          windowEnd: now,
          sampleSize: r.lag,
          detail: lagDetail(r.group, r.topic, r.lag),
        },
        now,
      );
    }
  }

  state(): StateRecords {
    const saved: FreshnessState = { newest: [...this.newest], views: [...this.newestOfView] };
    return new Map([["sources", saved]]);
  }

  restore(records: StateRecords): void {
    const saved = records.get("sources") as FreshnessState | undefined;
    for (const [source, eventTime] of saved?.newest ?? []) this.touch(source, eventTime);
    for (const [view, eventTime] of saved?.views ?? []) this.touchView(view, eventTime);
  }

  status(now: number): FreshnessStatus {
    return {
      thresholds: this.context.config.freshness,
      sources: Object.fromEntries(
        [...this.newest].map(([source, newest]) => [
          source,
          {
            newestEventTime: newest,
            ageSeconds: Math.max(0, (now - newest) / 1000),
            severity: this.severity.get(source) ?? "ok",
          },
        ]),
      ),
      lag: this.lagReadings.map((r) => ({
        ...r,
        severity: this.severity.get(`${r.group}/${r.topic}`) ?? "ok",
      })),
    };
  }
}
