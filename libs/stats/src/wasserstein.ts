import { standardDeviation } from "simple-statistics";

/** The normalised Wasserstein distance divides by max(σ_ref, this), so constant references stay finite. */
export const WASSERSTEIN_STD_FLOOR = 0.001;

interface Weighted {
  values: Float64Array;
  /** Cumulative weights, normalised so the last is 1. */
  cdf: Float64Array;
}

function weightedSorted(
  values: ArrayLike<number>,
  weights: ArrayLike<number> | undefined,
  name: string,
): Weighted {
  const n = values.length;
  if (n === 0) throw new RangeError(`wasserstein: ${name} is empty`);
  if (!weights) {
    const sorted = Float64Array.from(values).sort();
    if (!Number.isFinite(sorted[0]!) || !Number.isFinite(sorted[n - 1]!)) {
      throw new RangeError(`wasserstein: ${name} has a non-finite value`);
    }
    return { values: sorted, cdf: Float64Array.from({ length: n }, (_, k) => (k + 1) / n) };
  }
  if (weights.length !== n) throw new RangeError(`wasserstein: ${name} weights differ in length`);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => values[i]! - values[j]!);
  const sorted = new Float64Array(n);
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const v = values[i]!;
    const w = weights[i]!;
    if (!Number.isFinite(v)) throw new RangeError(`wasserstein: ${name} has a non-finite value`);
    if (!(w >= 0)) throw new RangeError(`wasserstein: ${name} has a negative weight`);
    sorted[k] = v;
    total += w;
    cdf[k] = total;
  }
  if (!(total > 0)) throw new RangeError(`wasserstein: ${name} weights sum to zero`);
  for (let k = 0; k < n; k++) cdf[k] = cdf[k]! / total;
  return { values: sorted, cdf };
}

/**
 * First Wasserstein (earth mover's) distance between two 1-D empirical distributions, as
 * `scipy.stats.wasserstein_distance(u, v, uWeights, vWeights)`:
 * W₁ = ∫ |U(x) − V(x)| dx, U and V the (weighted) empirical CDFs — a sum over the merged
 * sorted values of |U − V| times the gap to the next value.
 */
export function wasserstein(
  u: ArrayLike<number>,
  v: ArrayLike<number>,
  uWeights?: ArrayLike<number>,
  vWeights?: ArrayLike<number>,
): number {
  const a = weightedSorted(u, uWeights, "first sample");
  const b = weightedSorted(v, vWeights, "second sample");
  let i = 0;
  let j = 0;
  let cdfA = 0;
  let cdfB = 0;
  let distance = 0;
  let x = Math.min(a.values[0]!, b.values[0]!);
  while (i < a.values.length || j < b.values.length) {
    // Step both CDFs past every value equal to x, then integrate up to the next value.
    while (i < a.values.length && a.values[i]! <= x) cdfA = a.cdf[i++]!;
    while (j < b.values.length && b.values[j]! <= x) cdfB = b.cdf[j++]!;
    const next = Math.min(a.values[i] ?? Number.POSITIVE_INFINITY, b.values[j] ?? Number.POSITIVE_INFINITY);
    if (next === Number.POSITIVE_INFINITY) break;
    distance += Math.abs(cdfA - cdfB) * (next - x);
    x = next;
  }
  return distance;
}

/**
 * Scale-free drift measure: W₁(reference, current) / max(σ, 0.001), σ the reference's
 * population standard deviation (divide by n). 0 means identical; 1 means the mass moved, on
 * average, one reference standard deviation.
 */
export function normalizedWasserstein(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  const sigma = standardDeviation(Array.from(reference));
  return wasserstein(reference, current) / Math.max(sigma, WASSERSTEIN_STD_FLOOR);
}
