import { ByteReader } from "../bytes.js";
import type { Aggregator } from "./aggregator.js";

/**
 * top_k: the k most frequent values, most frequent first (ties: smaller text first). Exact: a tile keeps
 * a count per distinct value (so its size grows with the distinct values seen in one hop), which keeps
 * the result independent of arrival order — a bounded Space-Saving sketch would not be.
 */
export type TopKState = Map<string, { value: unknown; n: number }>;

const keyOf = (value: unknown) => (typeof value === "string" ? `s${value}` : `j${JSON.stringify(value)}`);

function bump(state: TopKState, value: unknown, by: number): TopKState {
  const key = keyOf(value);
  const held = state.get(key);
  if (held) held.n += by;
  else state.set(key, { value, n: by });
  return state;
}

export function topK(k: number): Aggregator<TopKState> {
  return {
    init: () => new Map(),
    add: (state, value) => bump(state, value, 1),
    merge: (into, from) => {
      for (const { value, n } of from.values()) bump(into, value, n);
      return into;
    },
    finalize: (state) => {
      if (state.size === 0) return null;
      return [...state]
        .sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .slice(0, k)
        .map(([, held]) => held.value);
    },
    serialize: (state, out) => {
      out.varuint(state.size);
      for (const { value, n } of state.values()) out.value(value).varuint(n);
    },
    deserialize: (bytes) => {
      const input = new ByteReader(bytes);
      const size = input.varuint();
      const state: TopKState = new Map();
      for (let i = 0; i < size; i++) bump(state, input.value(), input.varuint());
      return state;
    },
  };
}
