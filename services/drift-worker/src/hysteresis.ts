/**
 * One page per incident. An alert fires when a subject first goes bad (warn or critical), stays
 * open while it is bad or only partly recovered, and resolves once it has been clearly fine
 * (below threshold × clear factor) for `resolveAfter` windows in a row and for the cool-down.
 * A statistic flapping around its threshold therefore fires once and resolves once.
 */
import { randomUUID } from "node:crypto";
import type { AlertKind, DriftAlertRecord } from "@tessera/kafka";
import type { Severity } from "@tessera/stats";
import { firingMessage, resolvedMessage } from "./alert-text.js";

/** Where a record came from in a trace: the span context its Kafka headers carried. */
export interface TraceRef {
  traceId: string;
  spanId: string;
  traceFlags?: number;
}

/** One evaluation of one subject. */
export interface Observation {
  kind: AlertKind;
  subject: string;
  severity: Severity;
  /** Fine with margin (below threshold × clear factor). Not bad and not clear keeps an alert open. */
  clear: boolean;
  /** The worst check when bad. */
  statistic: string;
  value: number;
  threshold: number;
  pValue?: number;
  /** Every statistic of this evaluation, so a RESOLVED can report the value that fired. */
  values: Record<string, number>;
  windowStart: number;
  windowEnd: number;
  sampleSize: number;
  /** What went wrong, for a human. */
  detail: string;
  /** The tested window's trace, when its records carried one. */
  trace?: TraceRef;
}

/** An open incident; plain JSON, so it is also what the state topic keeps (one record each). */
export interface ActiveAlert {
  alert: DriftAlertRecord;
  /** Worst severity seen during the incident. */
  worst: Severity;
  lastBadAt: number;
  clearStreak: number;
}

export interface HysteresisOptions {
  resolveAfter: number;
  coolDownMs: number;
  reference: string;
  newId?: () => string;
}

const SEVERITY = { ok: "OK", warn: "WARN", critical: "CRITICAL" } as const;

export class AlertTracker {
  private readonly open = new Map<string, ActiveAlert>();

  constructor(private readonly options: HysteresisOptions) {}

  /** The alert to publish for this observation, if any (at most one FIRING per incident). */
  observe(o: Observation, now: number): DriftAlertRecord | undefined {
    const key = `${o.kind}\u0000${o.subject}`;
    const active = this.open.get(key);
    const bad = o.severity !== "ok";
    if (!active) {
      if (!bad) return undefined;
      const alert: DriftAlertRecord = {
        alert_id: (this.options.newId ?? randomUUID)(),
        status: "FIRING",
        kind: o.kind,
        severity: SEVERITY[o.severity],
        subject: o.subject,
        statistic: o.statistic,
        value: o.value,
        threshold: o.threshold,
        p_value: o.pValue ?? null,
        window_start: o.windowStart,
        window_end: o.windowEnd,
        sample_size: o.sampleSize,
        reference: this.options.reference,
        message: firingMessage(o.severity, o.subject, o.detail),
        at: now,
        trace_id: o.trace?.traceId ?? null,
        span_id: o.trace?.spanId ?? null,
      };
      this.open.set(key, { alert, worst: o.severity, lastBadAt: now, clearStreak: 0 });
      return alert;
    }
    if (bad) {
      active.lastBadAt = now;
      active.clearStreak = 0;
      if (o.severity === "critical") active.worst = "critical";
      return undefined;
    }
    active.clearStreak = o.clear ? active.clearStreak + 1 : 0;
    if (active.clearStreak < this.options.resolveAfter || now - active.lastBadAt < this.options.coolDownMs) {
      return undefined;
    }
    this.open.delete(key);
    const fired = active.alert;
    return {
      ...fired,
      status: "RESOLVED",
      severity: "OK",
      value: o.values[fired.statistic] ?? o.value,
      p_value: null,
      window_start: o.windowStart,
      window_end: o.windowEnd,
      sample_size: o.sampleSize,
      message: resolvedMessage(fired.subject, fired.statistic, active.clearStreak),
      at: now,
      trace_id: o.trace?.traceId ?? fired.trace_id,
      span_id: o.trace ? o.trace.spanId : fired.span_id,
    };
  }

  active(): ActiveAlert[] {
    return [...this.open.values()];
  }

  /** Reopens saved incidents: the next observation continues each one (same alert_id, streak). */
  restore(incidents: ActiveAlert[]): void {
    this.open.clear();
    for (const incident of incidents) {
      this.open.set(`${incident.alert.kind}\u0000${incident.alert.subject}`, structuredClone(incident));
    }
  }
}
