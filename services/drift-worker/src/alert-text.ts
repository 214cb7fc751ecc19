/**
 * Every text a human reads about an alert, in one place. The record's `message` is complete on
 * its own (schemas/avro/drift_alert.avsc): the record's severity and subject, then what happened
 * ("CRITICAL payments:amount: psi 0.31 ≥ 0.25 …", "OK payments:amount: psi back within …").
 * A presenter that also shows the record's fields prints `alertLine`, never its own prefix in
 * front of the message (that is how "CRITICAL x: CRITICAL x: psi …" reached on-call).
 */

import type { DriftAlertRecord } from "@tessera/kafka";
import type { Severity } from "@tessera/stats";
import type { AccuracyWindow } from "./accuracy.js";
import type { WindowResult } from "./evaluate.js";

export const round = (v: number | undefined, digits = 4) =>
  v === undefined ? "-" : Number(v.toPrecision(digits));

/** The FIRING record's message: its severity and subject, then what went wrong. */
export function firingMessage(severity: Severity, subject: string, detail: string): string {
  return `${severity.toUpperCase()} ${subject}: ${detail}`;
}

/** The RESOLVED record's message: its severity (OK) and subject, then why it cleared. */
export function resolvedMessage(subject: string, statistic: string, clearWindows: number): string {
  return `OK ${subject}: ${statistic} back within threshold for ${clearWindows} window(s)`;
}

/** One line for a console or a log: status and kind, then the message (which names the rest once). */
export function alertLine(alert: DriftAlertRecord): string {
  return `${alert.status} ${alert.kind} ${alert.message}`;
}

/** A drift window's verdict: the decisive check, then every statistic. */
export function driftDetail(r: WindowResult): string {
  const s = r.statistics;
  const summary = [
    s.psi !== undefined && `psi ${round(s.psi)}`,
    s.ks && `ks D ${round(s.ks.statistic)} p ${round(s.ks.pAdjusted, 2)}`,
    s.chiSquared && `chi² V ${round(s.cramersV)} p ${round(s.chiSquared.pAdjusted, 2)}`,
    s.js !== undefined && `js ${round(s.js)}`,
    `nulls ${round(s.nullRate * 100, 3)}% (ref ${round(s.referenceNullRate * 100, 3)}%)`,
  ]
    .filter(Boolean)
    .join(", ");
  const d = r.decisive;
  return d
    ? `${d.statistic} ${round(d.value)} ≥ ${round(d.threshold)} on ${r.window.observations} values (${summary})`
    : summary;
}

export function accuracyDetail(w: AccuracyWindow, threshold: number): string {
  const auc = w.auc === null ? "" : ` (AUC ${round(w.auc)})`;
  return `accuracy ${round(w.accuracy)} < floor ${threshold} on ${w.labelled} labelled predictions${auc}`;
}

export function ageDetail(ageSeconds: number, warnSeconds: number, criticalSeconds: number): string {
  return `newest event ${Math.round(ageSeconds)} s old (warn ${warnSeconds} s, critical ${criticalSeconds} s)`;
}

export function viewAgeDetail(view: string, ageSeconds: number, slaSeconds: number): string {
  return `newest feature update of view ${view} is ${Math.round(ageSeconds)} s old (freshness SLA ${slaSeconds} s)`;
}

export function lagDetail(group: string, topic: string, lag: number): string {
  return `consumer group ${group} is ${lag} messages behind on ${topic}`;
}
