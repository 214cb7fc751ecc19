/**
 * Exact floating-point sums (Shewchuk's partials, as in Python's math.fsum). A running sum is a short
 * list of non-overlapping doubles whose exact total is the true sum; rounding it gives the correctly
 * rounded result. That makes sum, mean and variance independent of the order events were added in,
 * which is what lets the incremental and batch evaluators agree to the last bit.
 */

/**
 * Shewchuk's grow step, the one copy of it: the partials of (the `n` partials of `src` from `from`)
 * + x, written to `out` from 0; returns how many. `out` may be `src` itself with `from` 0 (each
 * write lands at or before the read). Tiles keep partials inline in their words, lists elsewhere.
 */
export function growPartials(
  src: ArrayLike<number>,
  from: number,
  n: number,
  x: number,
  out: { [i: number]: number },
): number {
  let k = 0;
  for (let j = 0; j < n; j++) {
    let y = src[from + j]!;
    if (Math.abs(x) < Math.abs(y)) {
      const t = x;
      x = y;
      y = t;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) out[k++] = lo;
    x = hi;
  }
  out[k++] = x;
  return k;
}

/** Adds x into partials in place. */
export function addExact(partials: number[], x: number): void {
  const n = growPartials(partials, 0, partials.length, x, partials);
  // Writing `length` is a slow path in V8: shrink only when partials were absorbed.
  if (partials.length > n) partials.length = n;
}

/** The correctly rounded (half-even) value of the partials' exact sum. */
export function roundExact(partials: readonly number[]): number {
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n]!;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // Half-way case: the next partial decides whether to round away.
  if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

const SPLITTER = 134217729; // 2^27 + 1 (Veltkamp split)

/** Adds the exact product a·b into partials (Dekker's two-product: the rounded product plus its error). */
export function addExactProduct(partials: number[], a: number, b: number): void {
  const p = a * b;
  const ca = SPLITTER * a;
  const ah = ca - (ca - a);
  const al = a - ah;
  const cb = SPLITTER * b;
  const bh = cb - (cb - b);
  const bl = b - bh;
  const err = ah * bh - p + ah * bl + al * bh + al * bl;
  addExact(partials, p);
  if (err !== 0) addExact(partials, err);
}
