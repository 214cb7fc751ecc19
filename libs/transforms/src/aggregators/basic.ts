import { ByteReader, ByteWriter } from "../bytes.js";
import { addExact, addExactProduct, roundExact } from "../exact.js";
import type { Aggregator } from "./aggregator.js";

export const count: Aggregator<number> = {
  init: () => 0,
  add: (n) => n + 1,
  merge: (a, b) => a + b,
  finalize: (n) => n,
  serialize: (n) => new ByteWriter().varuint(n).finish(),
  deserialize: (bytes) => new ByteReader(bytes).varuint(),
};

function writePartials(out: ByteWriter, partials: readonly number[]): ByteWriter {
  out.varuint(partials.length);
  for (const p of partials) out.f64(p);
  return out;
}

function readPartials(input: ByteReader): number[] {
  const length = input.varuint();
  const partials: number[] = [];
  for (let i = 0; i < length; i++) partials.push(input.f64());
  return partials;
}

function mergePartials(into: number[], from: readonly number[]): number[] {
  for (const p of from) addExact(into, p);
  return into;
}

/** Exact running sum (see exact.ts): the result does not depend on the order of events. */
export const sum: Aggregator<number[]> = {
  init: () => [],
  add: (partials, value) => {
    addExact(partials, value as number);
    return partials;
  },
  merge: mergePartials,
  finalize: roundExact,
  serialize: (partials) => writePartials(new ByteWriter(), partials).finish(),
  deserialize: (bytes) => readPartials(new ByteReader(bytes)),
};

/** n, exact Σx and exact Σx² (each x² added exactly): enough for mean and population variance. */
export interface Moments {
  n: number;
  sum: number[];
  squares: number[];
}

function momentsAggregator(finalize: (m: Moments) => number | null, squares: boolean): Aggregator<Moments> {
  return {
    init: () => ({ n: 0, sum: [], squares: [] }),
    add: (m, value) => {
      const x = value as number;
      m.n++;
      addExact(m.sum, x);
      if (squares) addExactProduct(m.squares, x, x);
      return m;
    },
    merge: (into, from) => {
      into.n += from.n;
      mergePartials(into.sum, from.sum);
      mergePartials(into.squares, from.squares);
      return into;
    },
    finalize,
    serialize: (m) => writePartials(writePartials(new ByteWriter().varuint(m.n), m.sum), m.squares).finish(),
    deserialize: (bytes) => {
      const input = new ByteReader(bytes);
      const n = input.varuint();
      const sum = readPartials(input);
      return { n, sum, squares: readPartials(input) };
    },
  };
}

export const mean = momentsAggregator((m) => (m.n === 0 ? null : roundExact(m.sum) / m.n), false);

/**
 * Population variance = (n·Σx² − (Σx)²) / n², with the numerator computed exactly from the partials and
 * rounded once: order-independent and free of the cancellation that sinks the textbook formula.
 */
export function populationVariance(m: Moments): number | null {
  if (m.n === 0) return null;
  const numerator: number[] = [];
  for (const q of m.squares) addExactProduct(numerator, m.n, q);
  for (const a of m.sum) for (const b of m.sum) addExactProduct(numerator, -a, b);
  return Math.max(0, roundExact(numerator)) / (m.n * m.n);
}

export const variance = momentsAggregator(populationVariance, true);
export const stddev = momentsAggregator((m) => {
  const v = populationVariance(m);
  return v === null ? null : Math.sqrt(v);
}, true);

function extremum(pick: (a: number, b: number) => number, empty: number): Aggregator<number> {
  return {
    init: () => empty,
    add: (state, value) => pick(state, value as number),
    merge: pick,
    finalize: (state) => (state === empty ? null : state),
    serialize: (state) => new ByteWriter().f64(state).finish(),
    deserialize: (bytes) => new ByteReader(bytes).f64(),
  };
}

export const min = extremum(Math.min, Number.POSITIVE_INFINITY);
export const max = extremum(Math.max, Number.NEGATIVE_INFINITY);
