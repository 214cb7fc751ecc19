import { ByteReader, ByteWriter } from "../bytes.js";
import type { Aggregator, FeatureValue, InputKind } from "./aggregator.js";
import { approxDistinct } from "./hll.js";
import { lastK } from "./last-k.js";
import { approxQuantile } from "./quantile.js";
import {
  counter,
  earliest,
  type Finalize,
  finalizers,
  latest,
  maximum,
  minimum,
  moments,
  moments2,
  type SideList,
  type StateKind,
  sideKind,
} from "./slots.js";
import { topK } from "./topk.js";

export type { Aggregator, FeatureValue, InputKind } from "./aggregator.js";
export { HLL_PRECISION } from "./hll.js";
export { QUANTILE_ACCURACY } from "./quantile.js";
export type { Remap, SideCodec, SideList, SideSource, StateKind } from "./slots.js";

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

export interface OpSpec {
  op: Op;
  column?: string;
  k?: number;
  quantile?: number;
}

/**
 * The partial aggregate an op keeps: its state kind, and a key that is equal for ops that can share
 * one slot of a tile (same kind over the same input). `squares`: the moments of this column must
 * carry Σx² because a variance or stddev of it shares the slot.
 */
export function opState(spec: OpSpec, squares = false): { key: string; kind: StateKind; finalize: Finalize } {
  const column = spec.column ?? "";
  switch (spec.op) {
    case "count":
      return {
        key: spec.column === undefined ? "events" : `count:${column}`,
        kind: counter,
        finalize: finalizers.count,
      };
    case "sum":
    case "mean":
    case "variance":
    case "stddev": {
      const wide = squares || spec.op === "variance" || spec.op === "stddev";
      return { key: `moments:${column}`, kind: wide ? moments2 : moments, finalize: finalizers[spec.op] };
    }
    case "min":
      return { key: `min:${column}`, kind: minimum, finalize: finalizers.extreme };
    case "max":
      return { key: `max:${column}`, kind: maximum, finalize: finalizers.extreme };
    case "first":
      return { key: `first:${column}`, kind: earliest, finalize: finalizers.ordered };
    case "last":
      return { key: `last:${column}`, kind: latest, finalize: finalizers.ordered };
    default: {
      const agg = sketchAggregator(spec);
      return {
        key: `${spec.op}:${column}:${spec.k ?? ""}:${spec.quantile ?? ""}`,
        kind: sideKind(agg),
        finalize: finalizers.side(agg),
      };
    }
  }
}

function sketchAggregator(spec: OpSpec): Aggregator {
  switch (spec.op) {
    case "last_k":
      return lastK(spec.k!) as Aggregator;
    case "top_k":
      return topK(spec.k!) as Aggregator;
    case "approx_distinct":
      return approxDistinct as Aggregator;
    case "approx_quantile":
      return approxQuantile(spec.quantile!) as Aggregator;
    default:
      throw new RangeError(`${spec.op} has a fixed-width state`);
  }
}

/** One op's partial aggregate on its own: the words of one slot and their side list. */
export interface OpState {
  words: Float64Array;
  side: SideList;
}

const sideOf = (state: OpState) => ({ sideValue: (i: number) => state.side[i] });

/**
 * An op as a plain monoid over one slot (the form tiles hold it in), for tests and for callers that
 * aggregate outside a tile. `serialize` writes the words and the side values they reference.
 */
export function createAggregator(
  op: Op,
  params: { k?: number; quantile?: number } = {},
): Aggregator<OpState> {
  const { kind, finalize } = opState({ op, ...params, column: "x" });
  const init = (): OpState => {
    const state = { words: new Float64Array(kind.width), side: [] };
    kind.init(state.words, 0);
    return state;
  };
  return {
    init,
    add: (state, value, ts, seq) => {
      kind.add(state.words, 0, state.side, value, ts, seq);
      return state;
    },
    merge: (into, from) => {
      kind.merge(into.words, 0, into.side, from.words, 0, sideOf(from));
      return into;
    },
    finalize: (state) => finalize(state.words, 0, state.side) as FeatureValue,
    serialize: (state, out) => {
      out.varuint(kind.width);
      const words = state.words.slice();
      const values: Uint8Array[] = [];
      kind.refs(words, 0, (index, codec) => {
        const value = new ByteWriter();
        codec.encode(state.side[index], value);
        return values.push(value.finish()) - 1;
      });
      for (const w of words) out.f64(w);
      out.varuint(values.length);
      for (const v of values) out.bytes(v);
    },
    deserialize: (bytes) => {
      const input = new ByteReader(bytes);
      const words = new Float64Array(input.varuint());
      for (let i = 0; i < words.length; i++) words[i] = input.f64();
      const raw = Array.from({ length: input.varuint() }, () => input.bytes());
      const side: SideList = [];
      kind.refs(words, 0, (index, codec) => side.push(codec.decode(raw[index]!)) - 1);
      return { words, side };
    },
  };
}
