import { kolmogorovSf } from "./special.js";

/** Largest sample size for which the exact two-sample distribution is used (scipy's MAX_AUTO_N). */
export const KS_EXACT_MAX_N = 10_000;

export interface KsResult {
  /** D = sup_x |F₁(x) − F₂(x)|, the ECDFs right-continuous (ties counted together). */
  statistic: number;
  /** Two-sided p-value Pr(D ≥ observed) under H₀: same continuous distribution. */
  pValue: number;
  /** "exact" lattice-path count or the "asymptotic" finite-n Kolmogorov distribution. */
  method: "exact" | "asymptotic";
  n1: number;
  n2: number;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function sortedCopy(values: ArrayLike<number>, name: string): Float64Array {
  const out = Float64Array.from(values);
  if (out.length === 0) throw new RangeError(`ks2samp: ${name} is empty`);
  for (const v of out) if (Number.isNaN(v)) throw new RangeError(`ks2samp: ${name} contains NaN`);
  return out.sort();
}

/**
 * Two-sample Kolmogorov–Smirnov test, two-sided, matching `scipy.stats.ks_2samp(a, b)`
 * (method "auto"): D = max_x |F₁(x) − F₂(x)|; p-value exact when max(n₁, n₂) ≤ 10,000,
 * otherwise kstwo.sf(D, round(n₁n₂/(n₁+n₂))). NaN is rejected (drop nulls first).
 */
export function ks2samp(a: ArrayLike<number>, b: ArrayLike<number>): KsResult {
  const x = sortedCopy(a, "first sample");
  const y = sortedCopy(b, "second sample");
  const n1 = x.length;
  const n2 = y.length;
  // Walk the merged distinct values; the ECDF difference at v is (i·n₂ − j·n₁)/(n₁n₂),
  // kept as an integer so the lattice index h below is exact.
  let i = 0;
  let j = 0;
  let maxDiff = 0;
  while (i < n1 && j < n2) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < n1 && x[i]! <= v) i++;
    while (j < n2 && y[j]! <= v) j++;
    const diff = Math.abs(i * n2 - j * n1);
    if (diff > maxDiff) maxDiff = diff;
  }
  return ksFromDiff(maxDiff, n1, n2);
}

/**
 * The p-value for a statistic D computed elsewhere (e.g. from sketches), with scipy's rule:
 * on the exact path D is first rounded to the lattice h/lcm(n₁, n₂).
 */
export function ksPValue(statistic: number, n1: number, n2: number): KsResult {
  if (!(n1 >= 1 && n2 >= 1)) throw new RangeError("ksPValue: both samples must be non-empty");
  const g = gcd(n1, n2);
  if (Math.max(n1, n2) <= KS_EXACT_MAX_N) {
    return ksFromDiff(Math.round(statistic * (n1 / g) * n2) * g, n1, n2);
  }
  return { statistic, pValue: asymptoticPValue(statistic, n1, n2), method: "asymptotic", n1, n2 };
}

/** maxDiff = max |i·n₂ − j·n₁| over the ECDF steps; D = maxDiff / (n₁n₂). */
function ksFromDiff(maxDiff: number, n1: number, n2: number): KsResult {
  const statistic = maxDiff / (n1 * n2);
  if (Math.max(n1, n2) <= KS_EXACT_MAX_N) {
    const g = gcd(n1, n2);
    const h = maxDiff / g; // D · lcm(n₁, n₂), an integer
    const p = exactPValue(n1, n2, g, h);
    // Like scipy: a result outside [0, 1] means the exact computation failed numerically.
    if (p >= 0 && p <= 1) return { statistic, pValue: p, method: "exact", n1, n2 };
  }
  return { statistic, pValue: asymptoticPValue(statistic, n1, n2), method: "asymptotic", n1, n2 };
}

function asymptoticPValue(d: number, n1: number, n2: number): number {
  return kolmogorovSf(roundHalfEven((n1 * n2) / (n1 + n2)), d);
}

/** numpy's round(): halves go to the even neighbour (n₁ = n₂ = 10001 gives 5000.5 → 5000). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Pr(D ≥ h / lcm(n₁, n₂)) under H₀, by counting lattice paths (Hodges 1958). */
function exactPValue(n1: number, n2: number, g: number, h: number): number {
  if (h === 0) return 1;
  return n1 === n2 ? equalSizePValue(n1, h) : pathsLeavingBand(Math.max(n1, n2), Math.min(n1, n2), g, h);
}

/**
 * n₁ = n₂ = n: by the reflection principle Pr(D ≥ h/n) = 2 Σ_{k≥1} (−1)^{k+1} C(2n, n−kh) / C(2n, n).
 * Evaluated as 2·r₁(1 − r₂(1 − r₃(…))) with rₖ = C(2n, n−kh)/C(2n, n−(k−1)h), a product of h
 * factors ≤ 1, which avoids both the huge binomials and the alternating-sum cancellation.
 */
function equalSizePValue(n: number, h: number): number {
  let p = 0;
  for (let k = Math.floor(n / h); k >= 1; k--) {
    const base = (k - 1) * h;
    let ratio = 1;
    for (let j = 0; j < h; j++) ratio *= (n - base - j) / (n + base + j + 1);
    p = ratio * (1 - p);
  }
  return 2 * p;
}

/**
 * n₁ ≠ n₂: the share of monotone lattice paths from (0,0) to (m,n) that touch the region
 * |i/m − j/n| ≥ h/lcm, i.e. |(n/g)·i − (m/g)·j| ≥ h. With U(i,j) the share of paths to (i,j)
 * that have touched it, U = 1 on the region and U(i,j) = (i·U(i−1,j) + j·U(i,j−1)) / (i+j)
 * inside (a path to (i,j) comes from the left with probability i/(i+j)). Computing this
 * "1 − p" form directly keeps every value in [0,1] (Viehmann 2021, arXiv:2102.08037), column by
 * column and only over the band of inside cells: O(m · band width).
 */
function pathsLeavingBand(m: number, n: number, g: number, h: number): number {
  const mg = m / g;
  const ng = n / g;
  const u = new Float64Array(n + 1).fill(1); // cells not yet inside stay 1 ("touched")
  // Column i = 0: cells with mg·j < h are inside and reached without touching.
  for (let j = 0; j <= n && mg * j < h; j++) u[j] = 0;
  for (let i = 1; i <= m; i++) {
    // inside ⇔ ng·i − h < mg·j < ng·i + h
    const lo = Math.max(0, Math.floor((ng * i - h) / mg) + 1);
    const hi = Math.min(n, Math.ceil((ng * i + h) / mg) - 1);
    if (lo > hi) return 1;
    let below = lo === 0 ? 0 : 1; // the cell under lo is outside (or absent when lo = 0)
    for (let j = lo; j <= hi; j++) {
      below = (i * u[j]! + j * below) / (i + j);
      u[j] = below;
    }
  }
  return u[n]!;
}
