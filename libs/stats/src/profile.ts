import { mean, standardDeviation } from "simple-statistics";
import { binShares, DEFAULT_BINS, quantileBinEdges } from "./binned.js";
import { CategoryCounter, type CategoryCounterJSON, DEFAULT_CATEGORY_CAPACITY } from "./frequent.js";
import { DEFAULT_KLL_K, KllSketch, type KllSketchJSON } from "./kll.js";

export type FeatureType = "numerical" | "categorical";

export interface NumericalProfile {
  type: "numerical";
  /** Non-null values seen. */
  count: number;
  nulls: number;
  mean: number;
  /** Population standard deviation (divide by n): the Wasserstein normaliser. */
  std: number;
  min: number;
  max: number;
  /** Interior PSI/JS bin edges: exact reference quantiles (numpy linear), deduplicated. */
  edges: number[];
  /** Reference share per bin (edges.length + 1 bins). */
  shares: number[];
  /** Quantile sketch of the reference, for KS and Wasserstein against a window. */
  sketch: KllSketchJSON;
}

export interface CategoricalProfile {
  type: "categorical";
  count: number;
  nulls: number;
  counts: CategoryCounterJSON;
}

export type FeatureProfile = NumericalProfile | CategoricalProfile;

/** A reference profile: what the drift tests compare a window against. Plain JSON. */
export interface ReferenceProfile {
  version: 1;
  rows: number;
  bins: number;
  features: Record<string, FeatureProfile>;
}

export interface ProfileOptions {
  /** PSI/JS bins (default 10). */
  bins?: number;
  /** KLL accuracy parameter (default 1024). */
  k?: number;
  /** Distinct categories tracked exactly per column (default 1000). */
  categoryCapacity?: number;
  /** Only these columns (default: every column seen). */
  columns?: string[];
}

/** A cell as a drift value: a number, a category, or null (missing, empty, NaN). */
export type Cell = { number: number } | { category: string } | null;

/**
 * How a cell counts: finite numbers, bigints and Dates (epoch ms) are numeric; strings and
 * booleans are categories; null, undefined, "" and NaN are nulls. Anything else (objects,
 * arrays) is a category by its JSON text.
 */
export function classifyCell(value: unknown): Cell {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return Number.isNaN(value) ? null : { number: value };
  if (typeof value === "bigint") return { number: Number(value) };
  if (value instanceof Date) return { number: value.getTime() };
  if (typeof value === "string") return { category: value };
  if (typeof value === "boolean") return { category: String(value) };
  return { category: JSON.stringify(value) };
}

/** Per-column accumulator: numbers and categories kept apart until the column's type is known. */
export class ColumnValues {
  numbers: number[] = [];
  categories = new Map<string, number>();
  nulls = 0;

  add(value: unknown): void {
    const cell = classifyCell(value);
    if (cell === null) this.nulls++;
    else if ("number" in cell) this.numbers.push(cell.number);
    else this.categories.set(cell.category, (this.categories.get(cell.category) ?? 0) + 1);
  }

  /** Numerical when every non-null value is numeric; a column with any text is categorical. */
  get type(): FeatureType | undefined {
    if (this.categories.size > 0) return "categorical";
    return this.numbers.length > 0 ? "numerical" : undefined;
  }

  /** Category counts, numbers included as their decimal text (for a categorical column). */
  categoryCounts(): Map<string, number> {
    const counts = new Map(this.categories);
    for (const v of this.numbers) counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
    return counts;
  }
}

/** Builds a reference profile from rows, one pass; the profile is JSON-serialisable as is. */
export class ProfileBuilder {
  private readonly columns = new Map<string, ColumnValues>();
  private rows = 0;

  constructor(private readonly options: ProfileOptions = {}) {
    for (const name of options.columns ?? []) this.columns.set(name, new ColumnValues());
  }

  add(row: Record<string, unknown>): void {
    this.rows++;
    if (this.options.columns) {
      for (const [name, column] of this.columns) column.add(row[name]);
      return;
    }
    for (const name of Object.keys(row)) {
      let column = this.columns.get(name);
      if (!column) {
        column = new ColumnValues();
        column.nulls = this.rows - 1; // rows before the column first appeared lacked it
        this.columns.set(name, column);
      }
      column.add(row[name]);
    }
    for (const [name, column] of this.columns) if (!(name in row)) column.nulls++;
  }

  finish(): ReferenceProfile {
    const bins = this.options.bins ?? DEFAULT_BINS;
    const features: Record<string, FeatureProfile> = {};
    for (const [name, column] of this.columns) {
      const type = column.type;
      if (type === "numerical")
        features[name] = numericalProfile(column, bins, this.options.k ?? DEFAULT_KLL_K);
      else if (type === "categorical") {
        const counter = new CategoryCounter(this.options.categoryCapacity ?? DEFAULT_CATEGORY_CAPACITY);
        for (const [category, count] of column.categoryCounts()) counter.add(category, count);
        features[name] = { type, count: counter.n, nulls: column.nulls, counts: counter.toJSON() };
      }
    }
    return { version: 1, rows: this.rows, bins, features };
  }
}

function numericalProfile(column: ColumnValues, bins: number, k: number): NumericalProfile {
  const values = column.numbers;
  const sketch = new KllSketch(k);
  for (const v of values) sketch.update(v);
  const edges = quantileBinEdges(values, bins);
  return {
    type: "numerical",
    count: values.length,
    nulls: column.nulls,
    mean: mean(values),
    std: standardDeviation(values),
    min: sketch.min,
    max: sketch.max,
    edges,
    shares: binShares(values, edges),
    sketch: sketch.toJSON(),
  };
}

/** Profile of an in-memory row set. */
export function buildProfile(
  rows: Iterable<Record<string, unknown>>,
  options: ProfileOptions = {},
): ReferenceProfile {
  const builder = new ProfileBuilder(options);
  for (const row of rows) builder.add(row);
  return builder.finish();
}
