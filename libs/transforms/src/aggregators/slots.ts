/**
 * Partial aggregates as fixed-width runs of float64 words: the form tile state takes everywhere
 * (tile-state.ts lays them out; docs/concepts.md has the diagram).
 *
 * A *state kind* says how a partial aggregate sits in `width` words and how to init, add and merge
 * it; an *op* finalises one. Features of a hop group that need the same state share one slot (sum,
 * mean and stddev of one column keep one n/Σx/Σx²), so a tile holds each partial aggregate once.
 * What has no fixed width (sketches, last_k, non-numeric first/last values, long exact sums) lives in
 * the entity's side list, and its slot word holds the index.
 */
import { ByteReader, type ByteWriter } from "../bytes.js";
import { addExact, addExactProduct, growPartials, roundExact } from "../exact.js";
import type { Aggregator, FeatureValue } from "./aggregator.js";

/** Side values of one entity in memory: the slot words hold indexes into it. */
export type SideList = unknown[];

/**
 * How a side value goes to bytes and back (the entity codec stores side values this way). `encode`
 * appends to a writer the caller reuses; `decode` gets a view into a reused buffer: it must copy
 * what it keeps.
 */
export interface SideCodec {
  encode(value: unknown, out: ByteWriter): void;
  decode(bytes: Uint8Array): unknown;
}

/** Where merges read a source's side values from: a list in memory, or bytes decoded on demand. */
export interface SideSource {
  sideValue(index: number, codec: SideCodec): unknown;
  /** The side value's encoded bytes, when the source holds bytes (valid until it changes). */
  sideBytes?(index: number): Uint8Array;
}

export type Remap = (index: number, codec: SideCodec) => number;

export interface StateKind {
  readonly width: number;
  init(w: Float64Array, at: number): void;
  add(w: Float64Array, at: number, side: SideList, value: unknown, ts: number, seq: number): void;
  /** Merges the state at (from, fromAt), whose side values come from `src`, into (w, at). */
  merge(
    w: Float64Array,
    at: number,
    side: SideList,
    from: Float64Array,
    fromAt: number,
    src: SideSource,
  ): void;
  /**
   * Hands each side index the state holds to `remap` and stores the index it returns (compaction,
   * encoding and decoding renumber side values this way).
   */
  refs(w: Float64Array, at: number, remap: Remap): void;
}

const noRefs = () => {};

// ── counts ───────────────────────────────────────────────────────────────────────────────────

/** One word: n. Adds 1 per non-null input (count(column)) or per event (count()). */
export const counter: StateKind = {
  width: 1,
  init: (w, at) => {
    w[at] = 0;
  },
  add: (w, at) => {
    w[at]! += 1;
  },
  merge: (w, at, _side, from, fromAt) => {
    w[at]! += from[fromAt]!;
  },
  refs: noRefs,
};

// ── exact sums ───────────────────────────────────────────────────────────────────────────────
// Shewchuk's partials (see exact.ts) in 1 + capacity words [len, p0, p1, …]: sums keep up to four
// partials inline, sums of squares eight, which covers nearly all everyday data (measured on amounts
// in cents, 1–20 per tile: Σx needs 1–5 partials, 0.7% five; Σx² 1–9, 0.1% nine); a longer list
// moves to the side list for good, and len = −(index + 1) points at it. Exact either way.

const SUM_INLINE = 4;
const SQUARES_INLINE = 8;
const scratchPartials = new Float64Array(SQUARES_INLINE + 1);

const partialsCodec: SideCodec = {
  encode: (value, out) => {
    const partials = value as number[];
    out.varuint(partials.length);
    for (const p of partials) out.f64(p);
  },
  decode: (bytes) => {
    const input = new ByteReader(bytes);
    const n = input.varuint();
    const partials: number[] = [];
    for (let i = 0; i < n; i++) partials.push(input.f64());
    return partials;
  },
};

/** Adds x to the partials at (w, at): addExact on the inline words, spilling past `capacity`. */
function addPartial(w: Float64Array, at: number, side: SideList, x: number, capacity: number): void {
  const len = w[at]!;
  if (len < 0) {
    addExact(side[-len - 1] as number[], x);
    return;
  }
  if (len <= 1) {
    // Zero or one partial, nearly every tile and every merge: growPartials' step inline, same result.
    if (len === 0) {
      w[at] = 1;
      w[at + 1] = x;
      return;
    }
    let big = x;
    let small = w[at + 1]!;
    if (Math.abs(big) < Math.abs(small)) {
      big = small;
      small = x;
    }
    const hi = big + small;
    const lo = small - (hi - big);
    if (lo === 0) w[at + 1] = hi;
    else {
      w[at] = 2;
      w[at + 1] = lo;
      w[at + 2] = hi;
    }
    return;
  }
  const out = scratchPartials;
  const n = growPartials(w, at + 1, len, x, out);
  if (n <= capacity) {
    w[at] = n;
    for (let i = 0; i < n; i++) w[at + 1 + i] = out[i]!;
  } else {
    side.push(Array.from(out.subarray(0, n)));
    w[at] = -side.length;
  }
}

function mergePartials(
  w: Float64Array,
  at: number,
  side: SideList,
  from: Float64Array,
  fromAt: number,
  src: SideSource,
  capacity: number,
): void {
  const len = from[fromAt]!;
  if (len >= 0) {
    for (let j = 0; j < len; j++) addPartial(w, at, side, from[fromAt + 1 + j]!, capacity);
    return;
  }
  for (const p of src.sideValue(-len - 1, partialsCodec) as number[]) addPartial(w, at, side, p, capacity);
}

/** The correctly rounded sum of the partials at (w, at): roundExact on the inline words. */
function sumPartials(w: Float64Array, at: number, side: SideList): number {
  const len = w[at]!;
  if (len < 0) return roundExact(side[-len - 1] as number[]);
  if (len <= 1) return len === 0 ? 0 : w[at + 1]!;
  let n = len;
  let hi = w[at + n]!;
  let lo = 0;
  while (n > 1) {
    const x = hi;
    const y = w[at + --n]!;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // Half-way case: the next partial decides whether to round away.
  if (n > 1) {
    const next = w[at + n - 1]!;
    if ((lo < 0 && next < 0) || (lo > 0 && next > 0)) {
      const y = lo * 2;
      const x = hi + y;
      if (y === x - hi) hi = x;
    }
  }
  return hi;
}

/** The partials at (w, at) without copying: inline words, or the spilled list. */
function partialsOf(w: Float64Array, at: number, side: SideList): ArrayLike<number> {
  const len = w[at]!;
  return len < 0 ? (side[-len - 1] as number[]) : w.subarray(at + 1, at + 1 + len);
}

function partialRefs(w: Float64Array, at: number, remap: Remap): void {
  if (w[at]! < 0) w[at] = -remap(-w[at]! - 1, partialsCodec) - 1;
}

const SUM = 1; // word offset of Σx in a moments slot
const SQUARES = SUM + 1 + SUM_INLINE; // and of Σx² in moments2

/** [n, Σx as partials]: sum and mean. */
export const moments: StateKind = {
  width: SQUARES,
  init: (w, at) => {
    w[at] = 0;
    w[at + SUM] = 0;
  },
  add: (w, at, side, value) => {
    w[at]! += 1;
    addPartial(w, at + SUM, side, value as number, SUM_INLINE);
  },
  merge: (w, at, side, from, fromAt, src) => {
    w[at]! += from[fromAt]!;
    mergePartials(w, at + SUM, side, from, fromAt + SUM, src, SUM_INLINE);
  },
  refs: (w, at, remap) => partialRefs(w, at + SUM, remap),
};

/** [n, Σx, Σx² (each x² added exactly)]: variance and stddev, and sum/mean of the same column. */
export const moments2: StateKind = {
  width: SQUARES + 1 + SQUARES_INLINE,
  init: (w, at) => {
    w[at] = 0;
    w[at + SUM] = 0;
    w[at + SQUARES] = 0;
  },
  add: (w, at, side, value) => {
    const x = value as number;
    w[at]! += 1;
    addPartial(w, at + SUM, side, x, SUM_INLINE);
    addSquare(w, at + SQUARES, side, x);
  },
  merge: (w, at, side, from, fromAt, src) => {
    w[at]! += from[fromAt]!;
    mergePartials(w, at + SUM, side, from, fromAt + SUM, src, SUM_INLINE);
    mergePartials(w, at + SQUARES, side, from, fromAt + SQUARES, src, SQUARES_INLINE);
  },
  refs: (w, at, remap) => {
    partialRefs(w, at + SUM, remap);
    partialRefs(w, at + SQUARES, remap);
  },
};

const SPLITTER = 134217729; // 2^27 + 1 (Veltkamp split), as in exact.ts

/** Adds x² exactly: the rounded product and its error (Dekker's two-product). */
function addSquare(w: Float64Array, at: number, side: SideList, x: number): void {
  const p = x * x;
  const c = SPLITTER * x;
  const h = c - (c - x);
  const l = x - h;
  const err = h * h - p + 2 * h * l + l * l;
  addPartial(w, at, side, p, SQUARES_INLINE);
  if (err !== 0) addPartial(w, at, side, err, SQUARES_INLINE);
}

/**
 * Population variance = (n·Σx² − (Σx)²) / n², with the numerator computed exactly from the partials
 * and rounded once: order-independent and free of the cancellation that sinks the textbook formula.
 */
export function populationVariance(
  n: number,
  sum: ArrayLike<number>,
  squares: ArrayLike<number>,
): number | null {
  if (n === 0) return null;
  const numerator = varianceScratch;
  numerator.length = 0;
  for (let i = 0; i < squares.length; i++) addExactProduct(numerator, n, squares[i]!);
  for (let i = 0; i < sum.length; i++)
    for (let j = 0; j < sum.length; j++) addExactProduct(numerator, -sum[i]!, sum[j]!);
  return Math.max(0, roundExact(numerator)) / (n * n);
}
const varianceScratch: number[] = [];

// ── extremes ─────────────────────────────────────────────────────────────────────────────────

function extreme(pick: (a: number, b: number) => number, empty: number): StateKind {
  return {
    width: 1,
    init: (w, at) => {
      w[at] = empty;
    },
    add: (w, at, _side, value) => {
      w[at] = pick(w[at]!, value as number);
    },
    merge: (w, at, _side, from, fromAt) => {
      w[at] = pick(w[at]!, from[fromAt]!);
    },
    refs: noRefs,
  };
}

export const minimum = extreme(Math.min, Number.POSITIVE_INFINITY);
export const maximum = extreme(Math.max, Number.NEGATIVE_INFINITY);

// ── first / last ─────────────────────────────────────────────────────────────────────────────
// [ts, seq, tag, num]: tag 0 none, 1 number (num), 2 side value (num = index), 3 true, 4 false.

const valueCodec: SideCodec = {
  encode: (value, out) => {
    out.value(value);
  },
  decode: (bytes) => new ByteReader(bytes).value(),
};

function holdValue(w: Float64Array, at: number, side: SideList, value: unknown): void {
  if (typeof value === "number") {
    w[at] = 1;
    w[at + 1] = value;
  } else if (typeof value === "boolean") {
    w[at] = value ? 3 : 4;
    w[at + 1] = 0; // not left holding a replaced number or side index: the same events, the same bytes
  } else if (w[at] === 2) {
    side[w[at + 1]!] = value; // this slot's own side entry: overwrite, never grow
  } else {
    side.push(value);
    w[at] = 2;
    w[at + 1] = side.length - 1;
  }
}

function heldValue(w: Float64Array, at: number, side: SideSource | SideList): FeatureValue {
  switch (w[at]) {
    case 1:
      return w[at + 1]!;
    case 2:
      return (
        Array.isArray(side) ? side[w[at + 1]!] : side.sideValue(w[at + 1]!, valueCodec)
      ) as FeatureValue;
    case 3:
      return true;
    case 4:
      return false;
    default:
      return null;
  }
}

/** Smallest ts wins (`first`) or largest (`last`); on equal ts, the event later in the log. */
function ordered(first: boolean): StateKind {
  const wins = (w: Float64Array, at: number, ts: number, seq: number) => {
    if (w[at + 2] === 0) return true;
    const held = w[at]!;
    return (first ? ts < held : ts > held) || (ts === held && seq > w[at + 1]!);
  };
  return {
    width: 4,
    init: (w, at) => {
      w[at + 2] = 0;
    },
    add: (w, at, side, value, ts, seq) => {
      if (!wins(w, at, ts, seq)) return;
      w[at] = ts;
      w[at + 1] = seq;
      holdValue(w, at + 2, side, value);
    },
    merge: (w, at, side, from, fromAt, src) => {
      if (from[fromAt + 2] === 0 || !wins(w, at, from[fromAt]!, from[fromAt + 1]!)) return;
      w[at] = from[fromAt]!;
      w[at + 1] = from[fromAt + 1]!;
      holdValue(w, at + 2, side, heldValue(from, fromAt + 2, src));
    },
    refs: (w, at, remap) => {
      if (w[at + 2] === 2) w[at + 3] = remap(w[at + 3]!, valueCodec);
    },
  };
}

export const earliest = ordered(true);
export const latest = ordered(false);

// ── sketches and lists: an object monoid in the side list, one word holding its index (−1: empty) ─

export function sideKind(agg: Aggregator): StateKind & { codec: SideCodec; aggregator: Aggregator } {
  const codec: SideCodec = {
    encode: (state, out) => agg.serialize(state, out),
    decode: (bytes) => agg.deserialize(bytes),
  };
  return {
    width: 1,
    codec,
    aggregator: agg,
    init: (w, at) => {
      w[at] = -1;
    },
    add: (w, at, side, value, ts, seq) => {
      const ref = w[at]!;
      if (ref < 0) {
        side.push(agg.add(agg.init(), value, ts, seq));
        w[at] = side.length - 1;
      } else side[ref] = agg.add(side[ref], value, ts, seq);
    },
    merge: (w, at, side, from, fromAt, src) => {
      const ref = from[fromAt]!;
      if (ref < 0) return;
      const into = w[at]!;
      const acc = into < 0 ? agg.init() : side[into];
      const merged =
        agg.mergeBytes && src.sideBytes
          ? agg.mergeBytes(acc, src.sideBytes(ref))
          : agg.merge(acc, src.sideValue(ref, codec));
      if (into < 0) {
        side.push(merged);
        w[at] = side.length - 1;
      } else side[into] = merged;
    },
    refs: (w, at, remap) => {
      if (w[at]! >= 0) w[at] = remap(w[at]!, codec);
    },
  };
}

// ── finalising: each op reads one kind's words ──────────────────────────────────────────────

export type Finalize = (w: Float64Array, at: number, side: SideList) => FeatureValue;

export const finalizers = {
  count: ((w, at) => w[at]!) as Finalize,
  sum: ((w, at, side) => sumPartials(w, at + SUM, side)) as Finalize,
  mean: ((w, at, side) => (w[at] === 0 ? null : sumPartials(w, at + SUM, side) / w[at]!)) as Finalize,
  variance: ((w, at, side) =>
    populationVariance(w[at]!, partialsOf(w, at + SUM, side), partialsOf(w, at + SQUARES, side))) as Finalize,
  stddev: ((w, at, side) => {
    const v = populationVariance(w[at]!, partialsOf(w, at + SUM, side), partialsOf(w, at + SQUARES, side));
    return v === null ? null : Math.sqrt(v);
  }) as Finalize,
  extreme: ((w, at) => (Number.isFinite(w[at]!) ? w[at]! : null)) as Finalize,
  ordered: ((w, at, side) => heldValue(w, at + 2, side)) as Finalize,
  side:
    (agg: Aggregator): Finalize =>
    (w, at, side) => {
      const ref = w[at]!;
      return agg.finalize(ref < 0 ? agg.init() : side[ref]);
    },
};
