/** Default number of distinct categories tracked exactly. */
export const DEFAULT_CATEGORY_CAPACITY = 1000;
/** The bucket that holds the mass of categories the counter had to drop. */
export const OTHER_CATEGORY = "(other)";

export interface CategoryCounterJSON {
  kind: "misra-gries";
  capacity: number;
  n: number;
  /** Total amount subtracted from every counter so far: each estimate is at most this low. */
  offset: number;
  items: [string, number][];
}

/**
 * Frequent-items counter (Misra–Gries, mergeable as in Agarwal et al. 2012). Exact while at
 * most `capacity` distinct categories are seen; beyond that it keeps `capacity` counters and
 * every estimate c'(x) satisfies c(x) − offset ≤ c'(x) ≤ c(x), with offset ≤ n / (capacity + 1).
 */
export class CategoryCounter {
  readonly capacity: number;
  private counts = new Map<string, number>();
  n = 0;
  offset = 0;

  constructor(capacity = DEFAULT_CATEGORY_CAPACITY) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new RangeError(`capacity must be ≥ 1, got ${capacity}`);
    this.capacity = capacity;
  }

  add(category: string, count = 1): void {
    if (!(count > 0)) return;
    this.n += count;
    this.counts.set(category, (this.counts.get(category) ?? 0) + count);
    if (this.counts.size > this.capacity) this.shrink();
  }

  merge(other: CategoryCounter): this {
    for (const [category, count] of other.counts)
      this.counts.set(category, (this.counts.get(category) ?? 0) + count);
    this.n += other.n;
    this.offset += other.offset;
    if (this.counts.size > this.capacity) this.shrink();
    return this;
  }

  /** Estimated count of one category (a lower bound, exact while nothing was dropped). */
  estimate(category: string): number {
    return this.counts.get(category) ?? 0;
  }

  /**
   * Counts for a chi-squared table: the tracked categories plus, when anything was dropped,
   * OTHER_CATEGORY with the remainder, so the counts still sum to n.
   */
  toCounts(): Map<string, number> {
    const out = new Map(this.counts);
    const tracked = [...this.counts.values()].reduce((s, v) => s + v, 0);
    if (this.n - tracked > 0) out.set(OTHER_CATEGORY, (out.get(OTHER_CATEGORY) ?? 0) + this.n - tracked);
    return out;
  }

  toJSON(): CategoryCounterJSON {
    return {
      kind: "misra-gries",
      capacity: this.capacity,
      n: this.n,
      offset: this.offset,
      items: [...this.counts],
    };
  }

  static fromJSON(json: CategoryCounterJSON): CategoryCounter {
    if (json.kind !== "misra-gries") throw new RangeError(`not a category counter: ${String(json.kind)}`);
    const counter = new CategoryCounter(json.capacity);
    counter.counts = new Map(json.items);
    counter.n = json.n;
    counter.offset = json.offset;
    return counter;
  }

  /** Subtracts the (capacity+1)-th largest count from every counter and drops those ≤ 0. */
  private shrink(): void {
    const sorted = [...this.counts.values()].sort((a, b) => b - a);
    const cut = sorted[this.capacity]!;
    this.offset += cut;
    for (const [category, count] of this.counts) {
      if (count <= cut) this.counts.delete(category);
      else this.counts.set(category, count - cut);
    }
  }
}
