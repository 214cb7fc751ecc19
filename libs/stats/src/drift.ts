import { binIndex, binnedDrift, binShares, DEFAULT_BINS, jensenShannon, psiFromShares } from "./binned.js";
import { type CategoryCounts, categoricalChiSquared } from "./chisquared.js";
import { CategoryCounter } from "./frequent.js";
import { KllSketch, ksApprox } from "./kll.js";
import { ks2samp } from "./ks.js";
import type { FeatureProfile, NumericalProfile } from "./profile.js";
import { normalizedWasserstein, WASSERSTEIN_STD_FLOOR, wasserstein } from "./wasserstein.js";

export type Severity = "ok" | "warn" | "critical";

/**
 * When a feature counts as drifted. A p-value alone is not enough: with 10⁶ rows a shift of
 * 0.01σ is "significant", so KS and chi-squared also need an effect size above a floor.
 */
export interface DriftThresholds {
  /** PSI ≥ this is warn (default 0.1) … */
  psiWarn: number;
  /** … and ≥ this critical (default 0.25). */
  psiCritical: number;
  /** KS / chi-squared significance level (default 0.01). */
  alpha: number;
  /** KS: p < alpha and D ≥ this is warn (default 0.1) … */
  ksWarn: number;
  /** … and D ≥ this critical (default 0.2). */
  ksCritical: number;
  /** Chi-squared: p < alpha and Cramér's V ≥ this is warn (default 0.1) … */
  cramersVWarn: number;
  /** … and V ≥ this critical (default 0.25). */
  cramersVCritical: number;
  /** Jensen–Shannon distance ≥ this is warn (default 0.1) … */
  jsWarn: number;
  /** … and ≥ this critical (default 0.2). */
  jsCritical: number;
  /** Fewer non-null values than this on either side: no verdict (severity "ok"). Default 100. */
  minSamples: number;
}

export const DEFAULT_THRESHOLDS: DriftThresholds = {
  psiWarn: 0.1,
  psiCritical: 0.25,
  alpha: 0.01,
  ksWarn: 0.1,
  ksCritical: 0.2,
  cramersVWarn: 0.1,
  cramersVCritical: 0.25,
  jsWarn: 0.1,
  jsCritical: 0.2,
  minSamples: 100,
};

export interface NumericalDrift {
  type: "numerical";
  referenceCount: number;
  currentCount: number;
  ks: { statistic: number; pValue: number };
  psi: number;
  js: number;
  /** W₁ / max(σ_ref, 0.001): the normalised Wasserstein distance. */
  wasserstein: number;
}

export interface CategoricalDrift {
  type: "categorical";
  referenceCount: number;
  currentCount: number;
  chiSquared: { statistic: number; pValue: number; dof: number };
  cramersV: number;
  js: number;
}

export type FeatureDrift = (NumericalDrift | CategoricalDrift) & { drift: boolean; severity: Severity };

const RANK: Record<Severity, number> = { ok: 0, warn: 1, critical: 2 };

function level(value: number, warn: number, critical: number): Severity {
  return value >= critical ? "critical" : value >= warn ? "warn" : "ok";
}

/** Severity = the worst of the individual checks; drift = severity ≠ "ok". */
export function assess(
  result: NumericalDrift | CategoricalDrift,
  thresholds: Partial<DriftThresholds> = {},
): FeatureDrift {
  const t = { ...DEFAULT_THRESHOLDS, ...thresholds };
  const checks: Severity[] = [];
  if (Math.min(result.referenceCount, result.currentCount) >= t.minSamples) {
    checks.push(level(result.js, t.jsWarn, t.jsCritical));
    if (result.type === "numerical") {
      checks.push(level(result.psi, t.psiWarn, t.psiCritical));
      if (result.ks.pValue < t.alpha) checks.push(level(result.ks.statistic, t.ksWarn, t.ksCritical));
    } else if (result.chiSquared.pValue < t.alpha) {
      checks.push(level(result.cramersV, t.cramersVWarn, t.cramersVCritical));
    }
  }
  const severity = checks.reduce<Severity>((worst, s) => (RANK[s] > RANK[worst] ? s : worst), "ok");
  return { ...result, drift: severity !== "ok", severity };
}

/** Exact comparison of two numeric samples (nulls already removed). */
export function compareNumerical(
  reference: ArrayLike<number>,
  current: ArrayLike<number>,
  bins = DEFAULT_BINS,
): NumericalDrift {
  const ks = ks2samp(reference, current);
  const binned = binnedDrift(reference, current, bins);
  return {
    type: "numerical",
    referenceCount: reference.length,
    currentCount: current.length,
    ks: { statistic: ks.statistic, pValue: ks.pValue },
    psi: binned.psi,
    js: binned.js,
    wasserstein: normalizedWasserstein(reference, current),
  };
}

/** Category shares over the union of categories: JS distance between the two count tables. */
function categoricalJs(reference: CategoryCounts, current: CategoryCounts): number {
  const keys = [...new Set([...reference.keys(), ...current.keys()])];
  return jensenShannon(
    keys.map((k) => reference.get(k) ?? 0),
    keys.map((k) => current.get(k) ?? 0),
  );
}

/** Comparison of two category count tables (chi-squared on the 2×K table, JS on the shares). */
export function compareCategorical(reference: CategoryCounts, current: CategoryCounts): CategoricalDrift {
  const chi = categoricalChiSquared(reference, current);
  const total = (m: CategoryCounts) => [...m.values()].reduce((s, v) => s + v, 0);
  return {
    type: "categorical",
    referenceCount: total(reference),
    currentCount: total(current),
    chiSquared: { statistic: chi.statistic, pValue: chi.pValue, dof: chi.dof },
    cramersV: chi.cramersV,
    js: categoricalJs(reference, current),
  };
}

/**
 * A current window against a stored reference profile. Numerical: KS on the reference sketch
 * (error of D ≈ 0.002 at k = 1024), PSI/JS on the profile's bins, Wasserstein on the sketch's
 * weighted items. Current values may be raw or a sketch. Categorical: chi-squared and JS on counts.
 */
export function compareToProfile(
  profile: FeatureProfile,
  current: ArrayLike<number> | KllSketch | CategoryCounts | CategoryCounter,
): NumericalDrift | CategoricalDrift {
  if (profile.type === "categorical") {
    if (!(current instanceof Map || current instanceof CategoryCounter)) {
      throw new TypeError("a categorical profile needs category counts");
    }
    const cur = current instanceof CategoryCounter ? current.toCounts() : current;
    return compareCategorical(CategoryCounter.fromJSON(profile.counts).toCounts(), cur);
  }
  if (current instanceof Map || current instanceof CategoryCounter) {
    throw new TypeError("a numerical profile needs numbers or a KLL sketch");
  }
  return compareNumericalToProfile(profile, current as ArrayLike<number> | KllSketch);
}

function compareNumericalToProfile(
  profile: NumericalProfile,
  current: ArrayLike<number> | KllSketch,
): NumericalDrift {
  const reference = KllSketch.fromJSON(profile.sketch);
  const ks = ksApprox(reference, current);
  let currentValues: ArrayLike<number>;
  let currentWeights: ArrayLike<number> | undefined;
  if (current instanceof KllSketch) {
    const items = current.weightedItems();
    currentValues = items.values;
    currentWeights = items.weights;
  } else {
    currentValues = current;
  }
  const shares = currentWeights
    ? weightedShares(currentValues, currentWeights, profile.edges)
    : binShares(currentValues, profile.edges);
  const ref = reference.weightedItems();
  return {
    type: "numerical",
    referenceCount: profile.count,
    currentCount: ks.n2,
    ks: { statistic: ks.statistic, pValue: ks.pValue },
    psi: psiFromShares(profile.shares, shares),
    js: jensenShannon(profile.shares, shares),
    wasserstein:
      wasserstein(ref.values, currentValues, ref.weights, currentWeights) /
      Math.max(profile.std, WASSERSTEIN_STD_FLOOR),
  };
}

function weightedShares(
  values: ArrayLike<number>,
  weights: ArrayLike<number>,
  edges: readonly number[],
): number[] {
  const shares = new Array<number>(edges.length + 1).fill(0);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    shares[binIndex(edges, values[i]!)]! += weights[i]!;
    total += weights[i]!;
  }
  return shares.map((s) => s / total);
}
