import { ByteReader, type ByteWriter } from "../bytes.js";
import type { Aggregator } from "./aggregator.js";

/**
 * approx_quantile: a log-bucket sketch (DDSketch-style) with relative accuracy α = 1%: the returned value
 * is within ±1% (relative) of the exact q-quantile, the item of rank ⌊q·(n−1)⌋ in sorted order.
 * Chosen over KLL and t-digest because its state is a plain count per bucket: it is the same whatever
 * order events arrive in, so the streaming and batch paths agree exactly (KLL and t-digest depend on
 * insertion order). Size: one counter per occupied bucket; values from 1e-3 to 1e9 span ≤ 1,382 buckets.
 */
export const QUANTILE_ACCURACY = 0.01;
const GAMMA = (1 + QUANTILE_ACCURACY) / (1 - QUANTILE_ACCURACY);
const LOG_GAMMA = Math.log(GAMMA);
/** Magnitudes below this are counted as zero (they are all within α of 0 anyway in absolute terms). */
const MIN_MAGNITUDE = 1e-12;

export interface QuantileState {
  n: number;
  zeros: number;
  positive: Map<number, number>;
  negative: Map<number, number>;
}

const bucketOf = (magnitude: number) => Math.ceil(Math.log(magnitude) / LOG_GAMMA);
const bucketValue = (index: number) => (2 * GAMMA ** index) / (GAMMA + 1);

function bump(buckets: Map<number, number>, index: number, by: number): void {
  buckets.set(index, (buckets.get(index) ?? 0) + by);
}

function writeBuckets(out: ByteWriter, buckets: Map<number, number>): void {
  out.varuint(buckets.size);
  for (const [index, n] of [...buckets].sort((a, b) => a[0] - b[0])) out.varint(index).varuint(n);
}

function readBuckets(input: ByteReader): Map<number, number> {
  const size = input.varuint();
  const buckets = new Map<number, number>();
  for (let i = 0; i < size; i++) buckets.set(input.varint(), input.varuint());
  return buckets;
}

export function approxQuantile(q: number): Aggregator<QuantileState> {
  return {
    init: () => ({ n: 0, zeros: 0, positive: new Map(), negative: new Map() }),
    add: (state, value) => {
      const x = value as number;
      state.n++;
      if (Math.abs(x) < MIN_MAGNITUDE) state.zeros++;
      else bump(x > 0 ? state.positive : state.negative, bucketOf(Math.abs(x)), 1);
      return state;
    },
    merge: (into, from) => {
      into.n += from.n;
      into.zeros += from.zeros;
      for (const [index, n] of from.positive) bump(into.positive, index, n);
      for (const [index, n] of from.negative) bump(into.negative, index, n);
      return into;
    },
    finalize: (state) => {
      if (state.n === 0) return null;
      const rank = Math.floor(q * (state.n - 1));
      let seen = 0;
      // Ascending order: most negative (largest |x| bucket) first, then zeros, then positives.
      for (const index of [...state.negative.keys()].sort((a, b) => b - a)) {
        seen += state.negative.get(index)!;
        if (seen > rank) return -bucketValue(index);
      }
      seen += state.zeros;
      if (seen > rank) return 0;
      for (const index of [...state.positive.keys()].sort((a, b) => a - b)) {
        seen += state.positive.get(index)!;
        if (seen > rank) return bucketValue(index);
      }
      throw new Error("quantile sketch counts are inconsistent");
    },
    serialize: (state, out) => {
      out.varuint(state.n).varuint(state.zeros);
      writeBuckets(out, state.positive);
      writeBuckets(out, state.negative);
    },
    deserialize: (bytes) => {
      const input = new ByteReader(bytes);
      const n = input.varuint();
      const zeros = input.varuint();
      const positive = readBuckets(input);
      return { n, zeros, positive, negative: readBuckets(input) };
    },
  };
}
