import { chiSquaredSf } from "./special.js";

export interface ChiSquaredResult {
  statistic: number;
  pValue: number;
  dof: number;
}

/**
 * Pearson's goodness-of-fit test, as `scipy.stats.chisquare(observed, expected, ddof)`:
 * χ² = Σ (Oᵢ − Eᵢ)² / Eᵢ with k − 1 − ddof degrees of freedom; E defaults to the uniform mean.
 * Like scipy, the observed and expected totals must agree (relative 1e-8); dof ≤ 0 is rejected.
 */
export function chisquare(
  observed: readonly number[],
  expected?: readonly number[],
  ddof = 0,
): ChiSquaredResult {
  const k = observed.length;
  if (k === 0) throw new RangeError("chisquare: no categories");
  const total = observed.reduce((s, v) => s + v, 0);
  const exp = expected ?? observed.map(() => total / k);
  if (exp.length !== k) throw new RangeError("chisquare: observed and expected differ in length");
  const expTotal = exp.reduce((s, v) => s + v, 0);
  if (Math.abs(total - expTotal) > 1e-8 * Math.max(Math.abs(total), Math.abs(expTotal))) {
    throw new RangeError(`chisquare: observed total ${total} differs from expected total ${expTotal}`);
  }
  let statistic = 0;
  for (let i = 0; i < k; i++) statistic += (observed[i]! - exp[i]!) ** 2 / exp[i]!;
  const dof = k - 1 - ddof;
  if (dof <= 0) throw new RangeError(`chisquare: ${dof} degrees of freedom (k=${k}, ddof=${ddof})`);
  return { statistic, pValue: chiSquaredSf(statistic, dof), dof };
}

/**
 * Pearson's test of independence on an r×c contingency table, as
 * `scipy.stats.chi2_contingency(table)`: Eᵢⱼ = rowᵢ · colⱼ / N, dof = (r−1)(c−1),
 * χ² = Σ (Oᵢⱼ − Eᵢⱼ)² / Eᵢⱼ. When dof = 1 Yates' correction moves each Oᵢⱼ toward Eᵢⱼ by
 * min(½, |Oᵢⱼ − Eᵢⱼ|) (disable with `correction: false`). dof = 0 gives χ² = 0, p = 1.
 * A zero row or column total makes E zero; that is rejected (scipy raises too).
 */
export function chi2Contingency(
  table: readonly (readonly number[])[],
  options: { correction?: boolean } = {},
): ChiSquaredResult {
  const r = table.length;
  const c = table[0]?.length ?? 0;
  if (r === 0 || c === 0 || table.some((row) => row.length !== c)) {
    throw new RangeError("chi2Contingency: the table must be a non-empty rectangle");
  }
  const rowSums = table.map((row) => row.reduce((s, v) => s + v, 0));
  const colSums = Array.from({ length: c }, (_, j) => table.reduce((s, row) => s + row[j]!, 0));
  const total = rowSums.reduce((s, v) => s + v, 0);
  if (rowSums.some((s) => s <= 0) || colSums.some((s) => s <= 0)) {
    throw new RangeError("chi2Contingency: a row or column total is zero, so an expected frequency is zero");
  }
  const dof = (r - 1) * (c - 1);
  if (dof === 0) return { statistic: 0, pValue: 1, dof: 0 };
  const yates = dof === 1 && (options.correction ?? true);
  let statistic = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      const expected = (rowSums[i]! * colSums[j]!) / total;
      let diff = Math.abs(table[i]![j]! - expected);
      if (yates) diff -= Math.min(0.5, diff);
      statistic += (diff * diff) / expected;
    }
  }
  return { statistic, pValue: chiSquaredSf(statistic, dof), dof };
}

/** Category → count. Maps keep insertion order, so results list categories deterministically. */
export type CategoryCounts = ReadonlyMap<string, number>;

export interface CategoricalChiSquaredResult extends ChiSquaredResult {
  /** Cramér's V = √(χ²_uncorrected / N) for a 2×K table: effect size in [0, 1]. */
  cramersV: number;
  /** The union of categories, in the column order of the table. */
  categories: string[];
}

/**
 * Categorical drift test: the 2×K table [reference counts; current counts] over the union of
 * categories seen in either sample (a new category has 0 in the reference row, a vanished one
 * 0 in the current row; categories absent from both are dropped, so no expected count is 0).
 * One category only (dof 0): χ² = 0, p = 1, V = 0 — nothing to compare.
 * Both samples must be non-empty.
 */
export function categoricalChiSquared(
  reference: CategoryCounts,
  current: CategoryCounts,
): CategoricalChiSquaredResult {
  const categories = [...new Set([...reference.keys(), ...current.keys()])].filter(
    (key) => (reference.get(key) ?? 0) + (current.get(key) ?? 0) > 0,
  );
  const refRow = categories.map((key) => reference.get(key) ?? 0);
  const curRow = categories.map((key) => current.get(key) ?? 0);
  const refTotal = refRow.reduce((s, v) => s + v, 0);
  const curTotal = curRow.reduce((s, v) => s + v, 0);
  if (refTotal === 0 || curTotal === 0) throw new RangeError("categoricalChiSquared: a sample is empty");
  const result = chi2Contingency([refRow, curRow]);
  const uncorrected = result.dof === 1 ? chi2Contingency([refRow, curRow], { correction: false }) : result;
  const cramersV = Math.min(1, Math.sqrt(uncorrected.statistic / (refTotal + curTotal)));
  return { ...result, cramersV, categories };
}
