import type { Aggregator, InputKind } from "./aggregator.js";
import { count, max, mean, min, stddev, sum, variance } from "./basic.js";
import { approxDistinct } from "./hll.js";
import { first, last, lastK } from "./ordered.js";
import { approxQuantile } from "./quantile.js";
import { topK } from "./topk.js";

export type { Aggregator, FeatureValue, InputKind } from "./aggregator.js";
export { HLL_PRECISION } from "./hll.js";
export { QUANTILE_ACCURACY } from "./quantile.js";

export const OPS = [
  "count",
  "sum",
  "mean",
  "min",
  "max",
  "variance",
  "stddev",
  "first",
  "last",
  "last_k",
  "approx_distinct",
  "approx_quantile",
  "top_k",
] as const;
export type Op = (typeof OPS)[number];

/** What an op reads: numbers (coerced), any non-null value, or (count without a column) the event itself. */
export function inputKind(op: Op, column: string | undefined): InputKind {
  if (op === "count") return column === undefined ? "event" : "any";
  return ["first", "last", "last_k", "approx_distinct", "top_k"].includes(op) ? "any" : "number";
}

/** Ops that need a parameter. */
export const NEEDS_K: ReadonlySet<Op> = new Set(["last_k", "top_k"]);
export const NEEDS_QUANTILE: ReadonlySet<Op> = new Set(["approx_quantile"]);

/** The aggregator for an op (k for last_k/top_k, quantile for approx_quantile). */
export function createAggregator(op: Op, params: { k?: number; quantile?: number } = {}): Aggregator {
  const table: Record<Op, () => unknown> = {
    count: () => count,
    sum: () => sum,
    mean: () => mean,
    min: () => min,
    max: () => max,
    variance: () => variance,
    stddev: () => stddev,
    first: () => first,
    last: () => last,
    last_k: () => lastK(params.k!),
    approx_distinct: () => approxDistinct,
    approx_quantile: () => approxQuantile(params.quantile!),
    top_k: () => topK(params.k!),
  };
  return table[op]() as Aggregator;
}
