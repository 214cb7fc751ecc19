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
/** Registers are kept sparse (index → rank) until a dense array is smaller. */
const SPARSE_LIMIT = M / 4;
const sparseScratch = new Uint32Array(SPARSE_LIMIT + 1);

export type HllState = Map<number, number> | Uint8Array;

function setRegister(state: HllState, index: number, rank: number): HllState {
  if (state instanceof Uint8Array) {
    if (rank > state[index]!) state[index] = rank;
    return state;
  }
  if (rank > (state.get(index) ?? 0)) state.set(index, rank);
  if (state.size <= SPARSE_LIMIT) return state;
  const dense = new Uint8Array(M);
  for (const [i, r] of state) dense[i] = r;
  return dense;
}

function registers(state: HllState): Iterable<[number, number]> {
  if (!(state instanceof Uint8Array)) return state;
  const out: [number, number][] = [];
  state.forEach((rank, index) => {
    if (rank > 0) out.push([index, rank]);
  });
  return out;
}

export const approxDistinct: Aggregator<HllState> = {
  init: () => new Map(),
  add: (state, value) => {
    const text = String(value);
    const index = murmur3(text, 0x9747b28c) >>> (32 - HLL_PRECISION);
    const rank = Math.clz32(murmur3(text, 0x5bd1e995)) + 1; // a second hash gives 32 rank bits
    return setRegister(state, index, rank);
  },
  merge: (into, from) => {
    let out = into;
    for (const [index, rank] of registers(from)) out = setRegister(out, index, rank);
    return out;
  },
  finalize: (state) => {
    let inverseSum = 0;
    let zeros = M;
    for (const [, rank] of registers(state)) {
      inverseSum += 2 ** -rank;
      zeros--;
    }
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
    // Sparse registers in index order (the same registers always give the same bytes), sorted as
    // packed index·64 + rank words: ranks are at most 33.
    out.u8(0).varuint(state.size);
    // (A map decoded from foreign bytes may hold more than the limit: never drop a register.)
    const packed =
      state.size <= sparseScratch.length
        ? sparseScratch.subarray(0, state.size)
        : new Uint32Array(state.size);
    let i = 0;
    for (const [index, rank] of state) packed[i++] = index * 64 + rank;
    packed.sort();
    for (const word of packed) out.varuint(word >>> 6).u8(word & 63);
  },
  deserialize: (bytes) => {
    const input = new ByteReader(bytes);
    if (input.u8() === 1) return input.bytes().slice();
    const size = input.varuint();
    const state = new Map<number, number>();
    for (let i = 0; i < size; i++) state.set(input.varuint(), input.u8());
    return state;
  },
};
