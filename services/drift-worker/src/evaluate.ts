/**
 * Tests a closed window against the reference profile and judges it. The checks are those of
 * `assess` in @tessera/stats (docs/drift.md), plus a null-rate check, with the p-values of one
 * dataset adjusted together for multiple testing before any comparison with alpha.
 */
import {
  binIndex,
  CategoryCounter,
  chi2Contingency,
  compareToProfile,
  type FeatureProfile,
  type Severity,
} from "@tessera/stats";
import type { DriftWorkerConfig, ThresholdConfig } from "./config.js";
import type { FeatureWindow } from "./windows.js";

export interface Check {
  statistic: string;
  value: number;
  threshold: number;
  pValue?: number;
  severity: Severity;
}

export interface Statistics {
  psi?: number;
  js?: number;
  wasserstein?: number;
  ks?: { statistic: number; pValue: number; pAdjusted: number };
  chiSquared?: { statistic: number; pValue: number; dof: number; pAdjusted: number };
  cramersV?: number;
  nullRate: number;
  referenceNullRate: number;
  nullTest?: { pValue: number; pAdjusted: number };
}

/** Reference-vs-current shares per bin (numerical) or per category, for the dashboard. */
export interface Bins {
  labels: string[];
  reference: number[];
  current: number[];
}

export interface WindowResult {
  subject: string;
  dataset: string;
  type: FeatureProfile["type"];
  /** Non-null values in the reference. */
  referenceCount: number;
  window: {
    start: number;
    end: number;
    observations: number;
    count: number;
    nulls: number;
    mismatched: number;
  };
  statistics: Statistics;
  /** Fewer values than minSamples: statistics shown, no verdict. */
  insufficient: boolean;
  severity: Severity;
  /** Severity against thresholds scaled by the clear factor: "ok" here is needed to resolve. */
  clearSeverity: Severity;
  /** The worst check (what an alert reports); undefined when every check passed. */
  decisive?: Check;
  checks: Check[];
  bins: Bins;
}

export const RANK: Record<Severity, number> = { ok: 0, warn: 1, critical: 2 };
const worse = (a: Severity, b: Severity) => (RANK[b] > RANK[a] ? b : a);

/** Statistics of one window; p-values unadjusted until `adjustPValues` runs over the dataset. */
export function measure(subject: string, dataset: string, window: FeatureWindow): WindowResult {
  const profile = window.profile;
  const referenceTotal = profile.count + profile.nulls;
  const statistics: Statistics = {
    nullRate: window.observations > 0 ? window.nulls / window.observations : 0,
    referenceNullRate: referenceTotal > 0 ? profile.nulls / referenceTotal : 0,
  };
  if (window.observations > 0 && (profile.nulls > 0 || window.nulls > 0)) {
    if (profile.count + window.count > 0) {
      const p = chi2Contingency([
        [profile.nulls, profile.count],
        [window.nulls, window.count],
      ]).pValue;
      statistics.nullTest = { pValue: p, pAdjusted: p };
    }
  }
  let bins: Bins = { labels: [], reference: [], current: [] };
  if (window.count > 0) {
    if (profile.type === "numerical") {
      const r = compareToProfile(profile, window.sketch!);
      if (r.type === "numerical") {
        statistics.psi = r.psi;
        statistics.js = r.js;
        statistics.wasserstein = r.wasserstein;
        statistics.ks = { ...r.ks, pAdjusted: r.ks.pValue };
      }
      bins = numericalBins(profile.edges, profile.shares, window);
    } else {
      const counts = window.counter!.toCounts();
      const r = compareToProfile(profile, counts);
      if (r.type === "categorical") {
        statistics.js = r.js;
        statistics.cramersV = r.cramersV;
        statistics.chiSquared = { ...r.chiSquared, pAdjusted: r.chiSquared.pValue };
      }
      bins = categoricalBins(CategoryCounter.fromJSON(profile.counts).toCounts(), counts);
    }
  }
  return {
    subject,
    dataset,
    type: profile.type,
    referenceCount: profile.count,
    window: {
      start: Number.isFinite(window.firstEventTime) ? window.firstEventTime : 0,
      end: Number.isFinite(window.lastEventTime) ? window.lastEventTime : 0,
      observations: window.observations,
      count: window.count,
      nulls: window.nulls,
      mismatched: window.mismatched,
    },
    statistics,
    insufficient: true,
    severity: "ok",
    clearSeverity: "ok",
    checks: [],
    bins,
  };
}

/**
 * Multiple-testing control over every p-value of one dataset's windows tested together:
 * Benjamini–Hochberg (false discovery rate) or Bonferroni (family-wise error).
 */
export function adjustPValues(results: WindowResult[], method: DriftWorkerConfig["multipleTesting"]): void {
  const tests: Array<{ pValue: number; set(p: number): void }> = [];
  for (const r of results) {
    const s = r.statistics;
    if (s.ks) tests.push({ pValue: s.ks.pValue, set: (p) => (s.ks!.pAdjusted = p) });
    if (s.chiSquared) tests.push({ pValue: s.chiSquared.pValue, set: (p) => (s.chiSquared!.pAdjusted = p) });
    if (s.nullTest) tests.push({ pValue: s.nullTest.pValue, set: (p) => (s.nullTest!.pAdjusted = p) });
  }
  const adjusted = adjust(
    tests.map((t) => t.pValue),
    method,
  );
  tests.forEach((t, i) => {
    t.set(adjusted[i]!);
  });
}

export function adjust(pValues: number[], method: DriftWorkerConfig["multipleTesting"]): number[] {
  const m = pValues.length;
  if (method === "none" || m <= 1) return [...pValues];
  if (method === "bonferroni") return pValues.map((p) => Math.min(1, p * m));
  // BH step-up: adjusted p_(i) = min over j ≥ i of m·p_(j)/j, capped at 1.
  const order = pValues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(m);
  let running = 1;
  for (let rank = m; rank >= 1; rank--) {
    const [p, index] = order[rank - 1]!;
    running = Math.min(running, (p * m) / rank);
    out[index] = running;
  }
  return out;
}

export function level(value: number, warn: number, critical: number): Severity {
  return value >= critical ? "critical" : value >= warn ? "warn" : "ok";
}

/** The checks against thresholds scaled by `factor` (1 to fire; the clear factor to resolve). */
function checksOf(result: WindowResult, t: ThresholdConfig, factor: number): Check[] {
  const s = result.statistics;
  const checks: Check[] = [];
  const add = (statistic: string, value: number, warn: number, critical: number, pValue?: number) => {
    const severity = level(value, warn * factor, critical * factor);
    checks.push({
      statistic,
      value,
      threshold: severity === "critical" ? critical * factor : warn * factor,
      pValue,
      severity,
    });
  };
  const enough = Math.min(result.window.count, result.referenceCount) >= t.minSamples;
  if (enough && s.js !== undefined) add("js", s.js, t.jsWarn, t.jsCritical);
  if (enough && s.psi !== undefined) add("psi", s.psi, t.psiWarn, t.psiCritical);
  if (enough && s.ks && s.ks.pAdjusted < t.alpha)
    add("ks", s.ks.statistic, t.ksWarn, t.ksCritical, s.ks.pAdjusted);
  if (enough && s.chiSquared && s.cramersV !== undefined && s.chiSquared.pAdjusted < t.alpha)
    add("chi_squared", s.cramersV, t.cramersVWarn, t.cramersVCritical, s.chiSquared.pAdjusted);
  if (result.window.observations >= t.minSamples && s.nullTest && s.nullTest.pAdjusted < t.alpha) {
    add(
      "null_rate",
      s.nullRate - s.referenceNullRate,
      t.nullRateWarn,
      t.nullRateCritical,
      s.nullTest.pAdjusted,
    );
  }
  return checks;
}

/** Severity (worst check) and the clear verdict for one window, after p-value adjustment. */
export function judge(result: WindowResult, thresholds: ThresholdConfig, clearFactor: number): WindowResult {
  const checks = checksOf(result, thresholds, 1);
  const severity = checks.reduce<Severity>((w, c) => worse(w, c.severity), "ok");
  const clearSeverity = checksOf(result, thresholds, clearFactor).reduce<Severity>(
    (w, c) => worse(w, c.severity),
    "ok",
  );
  const decisive = checks
    .filter((c) => c.severity !== "ok")
    .sort((a, b) => RANK[b.severity] - RANK[a.severity] || b.value / b.threshold - a.value / a.threshold)[0];
  const insufficient =
    result.window.observations < thresholds.minSamples ||
    (result.window.count < thresholds.minSamples && checks.length === 0);
  return { ...result, checks, severity, clearSeverity, decisive, insufficient };
}

function numericalBins(edges: number[], shares: number[], window: FeatureWindow): Bins {
  const current = new Array<number>(edges.length + 1).fill(0);
  const { values, weights } = window.sketch!.weightedItems();
  for (let i = 0; i < values.length; i++) current[binIndex(edges, values[i]!)]! += weights[i]!;
  const total = window.sketch!.n;
  const fmt = (v: number) => Number(v.toPrecision(4)).toString();
  const labels = shares.map((_, i) =>
    i === 0
      ? `< ${fmt(edges[0]!)}`
      : i === edges.length
        ? `≥ ${fmt(edges[i - 1]!)}`
        : `[${fmt(edges[i - 1]!)}, ${fmt(edges[i]!)})`,
  );
  if (edges.length === 0) labels[0] = "all";
  return { labels, reference: shares, current: current.map((c) => c / total) };
}

/** The 20 largest categories of either side; the rest summed into "(rest)". */
function categoricalBins(reference: Map<string, number>, current: Map<string, number>): Bins {
  const total = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0) || 1;
  const rt = total(reference);
  const ct = total(current);
  const keys = [...new Set([...reference.keys(), ...current.keys()])]
    .map((k) => [k, Math.max((reference.get(k) ?? 0) / rt, (current.get(k) ?? 0) / ct)] as const)
    .sort((a, b) => b[1] - a[1]);
  const shown = keys.slice(0, 20).map(([k]) => k);
  const bins: Bins = {
    labels: shown,
    reference: shown.map((k) => (reference.get(k) ?? 0) / rt),
    current: shown.map((k) => (current.get(k) ?? 0) / ct),
  };
  if (keys.length > 20) {
    bins.labels.push("(rest)");
    bins.reference.push(1 - bins.reference.reduce((s, v) => s + v, 0));
    bins.current.push(1 - bins.current.reduce((s, v) => s + v, 0));
  }
  return bins;
}
