/** Binned drift measures: PSI and Jensen–Shannon on reference-quantile bins. */

export const DEFAULT_BINS = 10;
/** A zero bin share is replaced by this in PSI, so ln(0) never appears. */
export const PSI_ZERO_SHARE = 1e-4;

/**
 * Quantile of an ascending-sorted sample with numpy's default ("linear") method:
 * position p·(n−1), linearly interpolated between the neighbouring order statistics.
 */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError("quantileSorted: empty sample");
  const pos = p * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const frac = pos - lo;
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  // numpy's lerp form, exact at both ends
  return frac >= 0.5 ? b - (b - a) * (1 - frac) : a + (b - a) * frac;
}

/**
 * Interior bin edges: the reference quantiles at i/B for i = 1…B−1 (numpy linear), duplicates
 * removed. With edges e₁ < … < e_k the bins are (−∞, e₁), [e₁, e₂), …, [e_k, +∞): k + 1 bins.
 */
export function quantileBinEdges(reference: ArrayLike<number>, bins = DEFAULT_BINS): number[] {
  if (!(Number.isInteger(bins) && bins >= 1))
    throw new RangeError(`bins must be a positive integer, got ${bins}`);
  const sorted = Float64Array.from(reference).sort();
  const edges: number[] = [];
  for (let i = 1; i < bins; i++) {
    const q = quantileSorted(sorted, i / bins);
    if (edges.length === 0 || q > edges[edges.length - 1]!) edges.push(q);
  }
  return edges;
}

/** Index of the bin holding v: the number of edges ≤ v (binary search). */
export function binIndex(edges: readonly number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Counts per bin for the given interior edges (edges.length + 1 bins). */
export function binCounts(values: ArrayLike<number>, edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) counts[binIndex(edges, values[i]!)]!++;
  return counts;
}

/** Shares per bin (counts / n). */
export function binShares(values: ArrayLike<number>, edges: readonly number[]): number[] {
  if (values.length === 0) throw new RangeError("binShares: empty sample");
  return binCounts(values, edges).map((c) => c / values.length);
}

/**
 * Population Stability Index of two share vectors over the same bins:
 * PSI = Σ (cᵢ − rᵢ) · ln(cᵢ / rᵢ), a zero share replaced by 1e-4 (no renormalisation).
 * Rule of thumb: < 0.1 stable, 0.1–0.25 moderate shift, ≥ 0.25 major shift.
 */
export function psiFromShares(reference: readonly number[], current: readonly number[]): number {
  if (reference.length !== current.length) throw new RangeError("psi: share vectors differ in length");
  let psi = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i]! === 0 ? PSI_ZERO_SHARE : reference[i]!;
    const c = current[i]! === 0 ? PSI_ZERO_SHARE : current[i]!;
    psi += (c - r) * Math.log(c / r);
  }
  return psi;
}

/**
 * Jensen–Shannon distance, as `scipy.spatial.distance.jensenshannon(p, q, base)`; base 2 by
 * default (range 0…1): p and q are normalised to sum 1, m = (p + q)/2,
 * JS = √((KL(p‖m) + KL(q‖m)) / 2 / ln base), with 0·ln 0 = 0 (raw shares: no zero replacement).
 */
export function jensenShannon(p: readonly number[], q: readonly number[], base = 2): number {
  if (p.length !== q.length) throw new RangeError("jensenShannon: vectors differ in length");
  const sp = p.reduce((s, v) => s + v, 0);
  const sq = q.reduce((s, v) => s + v, 0);
  if (!(sp > 0 && sq > 0)) throw new RangeError("jensenShannon: a vector sums to zero");
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]! / sp;
    const b = q[i]! / sq;
    const m = (a + b) / 2;
    if (a > 0) kl += a * Math.log(a / m);
    if (b > 0) kl += b * Math.log(b / m);
  }
  // Rounding can leave a tiny negative sum for identical vectors.
  return Math.sqrt(Math.max(0, kl / 2) / Math.log(base));
}

export interface BinnedDrift {
  /** Interior edges (reference quantiles, deduplicated). */
  edges: number[];
  referenceShares: number[];
  currentShares: number[];
  psi: number;
  /** Jensen–Shannon distance (base 2) on the same bins. */
  js: number;
}

/** PSI and JS of `current` against `reference`, on B reference-quantile bins (default 10). */
export function binnedDrift(
  reference: ArrayLike<number>,
  current: ArrayLike<number>,
  bins = DEFAULT_BINS,
): BinnedDrift {
  const edges = quantileBinEdges(reference, bins);
  const referenceShares = binShares(reference, edges);
  const currentShares = binShares(current, edges);
  return {
    edges,
    referenceShares,
    currentShares,
    psi: psiFromShares(referenceShares, currentShares),
    js: jensenShannon(referenceShares, currentShares),
  };
}

/** PSI of `current` against `reference` on B reference-quantile bins. */
export function psi(reference: ArrayLike<number>, current: ArrayLike<number>, bins = DEFAULT_BINS): number {
  return binnedDrift(reference, current, bins).psi;
}
