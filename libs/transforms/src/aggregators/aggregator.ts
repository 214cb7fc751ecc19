import type { ByteWriter } from "../bytes.js";

/** A finalised feature value. Lists come from last_k and top_k. */
export type FeatureValue = number | string | boolean | null | unknown[];

/**
 * A commutative monoid over partial aggregates ("IR"). `add` and `merge` may mutate and return their
 * first argument; `merge` never keeps references into `from`, so tiles stay independent. Values passed
 * to `add` are never null (null inputs are skipped before), and numeric ops only get finite numbers.
 * `ts`/`seq` (event time, log position) order events for first/last/last_k.
 */
export interface Aggregator<S = unknown> {
  init(): S;
  add(state: S, value: unknown, ts: number, seq: number): S;
  merge(into: S, from: S): S;
  finalize(state: S): FeatureValue;
  /** Appends the state's bytes to `out` (one writer serves a whole tile state's side values). */
  serialize(state: S, out: ByteWriter): void;
  deserialize(bytes: Uint8Array): S;
  /**
   * merge(into, deserialize(bytes)) without building the decoded state: a window merge at serving
   * reads one such value per tile. Optional; ops without it decode.
   */
  mergeBytes?(into: S, bytes: Uint8Array): S;
}

/** Whether an op reads numbers (inputs are coerced, non-numeric values skipped as null). */
export type InputKind = "number" | "any" | "event";
