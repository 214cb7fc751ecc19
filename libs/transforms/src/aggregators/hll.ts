import { ByteReader } from "../bytes.js";
import { murmur3 } from "../hash.js";
import type { Aggregator } from "./aggregator.js";

/**
 * approx_distinct: HyperLogLog with 2^12 = 4096 registers. Relative standard error 1.04/√4096 ≈ 1.6%
 * (so ~99.7% of estimates lie within ±4.9%); below 2.5·m distinct values linear counting is used,
 * which is near-exact for small sets (off by a register collision or two: ±2 up to 200 values). Values are hashed by their text, so 7 and "7" are one value.
 * A register set is order-independent (a max per register): merging is exact.
 */
export const HLL_PRECISION = 12;
const M = 1 << HLL_PRECISION;
/** Registers are kept sparse until a dense array is smaller. */
const SPARSE_LIMIT = M / 4;

/**
 * Sparse registers: one packed word per set register, `index·64 + rank` (ranks are at most 33),
 * sorted by index. A plain array of small integers: a tile holds a few registers, and a Map per tile
 * cost several times the memory (50k entities × 60 tiles each, all traced by every major GC).
 * Sorted, the bytes follow without a sort and two states merge in one pass.
 */
type Sparse = number[];
export type HllState = Sparse | Uint8Array;

/** Where index's word is in `words`, or −(insertion point + 1). */
function find(words: Sparse, index: number): number {
  let lo = 0;
  let hi = words.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = words[mid]! >>> 6;
    if (at < index) lo = mid + 1;
    else if (at > index) hi = mid - 1;
    else return mid;
  }
  return -(lo + 1);
}

function toDense(words: Sparse): Uint8Array {
  const dense = new Uint8Array(M);
  for (const word of words) dense[word >>> 6] = word & 63;
  return dense;
}

function setRegister(state: HllState, index: number, rank: number): HllState {
  if (state instanceof Uint8Array) {
    if (rank > state[index]!) state[index] = rank;
    return state;
  }
  // A tile's first register: an array literal is allocated at exactly its size (a grown `[]` holds 17).
  if (state.length === 0) return [index * 64 + rank];
  const i = find(state, index);
  if (i >= 0) {
    if (rank > (state[i]! & 63)) state[i] = index * 64 + rank;
    return state;
  }
  state.splice(-i - 1, 0, index * 64 + rank);
  return state.length <= SPARSE_LIMIT ? state : toDense(state);
}

/** Sparse `into` ∪ sparse `from`, register-wise max, in one pass over both sorted lists. */
function mergeSparse(into: Sparse, from: Sparse): HllState {
  const out: Sparse = [];
  let i = 0;
  let j = 0;
  while (i < into.length || j < from.length) {
    const a = i < into.length ? into[i]! : Number.POSITIVE_INFINITY;
    const b = j < from.length ? from[j]! : Number.POSITIVE_INFINITY;
    const ai = a >>> 6;
    const bi = b >>> 6;
    if (a !== Number.POSITIVE_INFINITY && (b === Number.POSITIVE_INFINITY || ai < bi)) {
      out.push(a);
      i++;
    } else if (a === Number.POSITIVE_INFINITY || bi < ai) {
      out.push(b);
      j++;
    } else {
      out.push(a >= b ? a : b); // same index: the higher rank is the higher word
      i++;
      j++;
    }
  }
  return out.length <= SPARSE_LIMIT ? out : toDense(out);
}

function forEachRank(state: HllState, visit: (rank: number) => void): void {
  if (state instanceof Uint8Array) {
    for (let i = 0; i < M; i++) if (state[i]! > 0) visit(state[i]!);
  } else for (const word of state) visit(word & 63);
}

export const approxDistinct: Aggregator<HllState> = {
  init: () => [],
  add: (state, value) => {
    const text = String(value);
    const index = murmur3(text, 0x9747b28c) >>> (32 - HLL_PRECISION);
    const rank = Math.clz32(murmur3(text, 0x5bd1e995)) + 1; // a second hash gives 32 rank bits
    return setRegister(state, index, rank);
  },
  merge: (into, from) => {
    if (!(into instanceof Uint8Array) && !(from instanceof Uint8Array)) {
      // A window merge adds tile after small tile to one growing state: insert those in place.
      if (from.length * 8 >= into.length) return mergeSparse(into, from);
      let out: HllState = into;
      for (const word of from) out = setRegister(out, word >>> 6, word & 63);
      return out;
    }
    let out = into instanceof Uint8Array ? into : toDense(into);
    if (from instanceof Uint8Array) {
      for (let i = 0; i < M; i++) if (from[i]! > out[i]!) out[i] = from[i]!;
    } else for (const word of from) out = setRegister(out, word >>> 6, word & 63) as Uint8Array;
    return out;
  },
  finalize: (state) => {
    let inverseSum = 0;
    let zeros = M;
    forEachRank(state, (rank) => {
      inverseSum += 2 ** -rank;
      zeros--;
    });
    if (zeros === M) return null; // an empty window: only count and sum are 0
    inverseSum += zeros; // each empty register contributes 2^0
    const alpha = 0.7213 / (1 + 1.079 / M);
    const raw = (alpha * M * M) / inverseSum;
    const estimate = raw <= 2.5 * M && zeros > 0 ? M * Math.log(M / zeros) : raw;
    return Math.round(estimate);
  },
  serialize: (state, out) => {
    if (state instanceof Uint8Array) {
      out.u8(1).bytes(state);
      return;
    }
    // Sparse registers in index order: the same registers always give the same bytes.
    out.u8(0).varuint(state.length);
    for (const word of state) out.varuint(word >>> 6).u8(word & 63);
  },
  deserialize: (bytes) => approxDistinct.mergeBytes!([], bytes),
  mergeBytes: (into, bytes) => {
    const input = new ByteReader(bytes);
    if (input.u8() === 1) {
      const dense = input.bytes();
      if (dense.length !== M) throw new RangeError(`HLL of ${dense.length} registers, not ${M}`);
      return approxDistinct.merge(into, dense); // merge keeps nothing of `from`
    }
    const size = input.varuint();
    // Written in index order by us; set one by one anyway, so foreign bytes cannot break the sorted,
    // deduplicated registers every other function relies on.
    let state = into;
    for (let i = 0; i < size; i++) {
      const index = input.varuint();
      const rank = input.u8();
      if (index >= M || rank === 0 || rank > 63)
        throw new RangeError(`HLL register ${index}:${rank} is out of range`);
      state = setRegister(state, index, rank);
    }
    return state;
  },
};
