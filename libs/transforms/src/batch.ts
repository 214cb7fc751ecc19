import type { FeatureValue } from "./aggregators/index.js";
import type { PreparedEvent, ViewRuntime } from "./events.js";

/**
 * One entity's events as columns, for snapshots over millions of events without an object per event.
 * `inputs[f]` holds feature f's input per event (null, undefined or NaN = skip); `null` instead of an
 * array means "every event counts" (count without a column).
 */
export interface EventColumns {
  ts: ArrayLike<number>;
  seq: ArrayLike<number>;
  inputs: (ArrayLike<unknown> | null)[];
}

/**
 * Point-in-time batch evaluator for one entity: a sort-merge of its events with its spine times.
 * Events are added to hop tiles in (ts, log position) order, and each spine time t reads its window
 * once every event with ts < t — and no other — has been added. So the tile holding t contains exactly
 * the events in [tile start, t), and no per-row scan of events is needed. No clock: every event counts.
 *
 * `rows` are the entity's event indexes into `columns`, in any order; `times` any order.
 * Returns, for each time in the order given, one value per feature of `features` (default: all).
 */
export function pointInTimeColumns(
  runtime: ViewRuntime,
  columns: EventColumns,
  rows: ArrayLike<number>,
  times: ArrayLike<number>,
  features: readonly number[] = runtime.view.features.map((_, i) => i),
): FeatureValue[][] {
  const { view, aggregators } = runtime;
  const { ts, seq, inputs } = columns;
  const sorted = Int32Array.from(rows).sort((a, b) => ts[a]! - ts[b]! || seq[a]! - seq[b]!);
  const order = Int32Array.from({ length: times.length }, (_, i) => i).sort((a, b) => times[a]! - times[b]!);
  const n = features.length;
  const hops = features.map((f) => view.features[f]!.hopMs);
  const windows = features.map((f) => view.features[f]!.windowMs);
  const aggs = features.map((f) => aggregators[f]!);
  const cols = features.map((f) => inputs[f]!);
  // Per feature, its tiles in time order: events arrive sorted, so a tile is either the last one or a
  // new one at the end, and windows only move forward, so expired tiles leave from the front.
  const tileIndex: number[][] = features.map(() => []);
  const tileState: unknown[][] = features.map(() => []);
  const head = new Int32Array(n);
  const out: FeatureValue[][] = new Array(times.length);
  let next = 0;
  for (const row of order) {
    const t = times[row]!;
    for (; next < sorted.length && ts[sorted[next]!]! < t; next++) {
      const e = sorted[next]!;
      const time = ts[e]!;
      for (let j = 0; j < n; j++) {
        const column = cols[j];
        const input = column === null ? true : column![e];
        if (input === null || input === undefined || Number.isNaN(input)) continue;
        const k = Math.floor(time / hops[j]!);
        const index = tileIndex[j]!;
        const states = tileState[j]!;
        const last = index.length - 1;
        if (last >= head[j]! && index[last] === k)
          states[last] = aggs[j]!.add(states[last], input, time, seq[e]!);
        else {
          index.push(k);
          states.push(aggs[j]!.add(aggs[j]!.init(), input, time, seq[e]!));
        }
      }
    }
    const values: FeatureValue[] = new Array(n);
    for (let j = 0; j < n; j++) {
      const from = Math.floor((t - windows[j]!) / hops[j]!); // windowStart(t) / hop
      const index = tileIndex[j]!;
      const states = tileState[j]!;
      let h = head[j]!;
      while (h < index.length && index[h]! < from) states[h++] = undefined; // release expired tiles
      head[j] = h;
      let acc = aggs[j]!.init();
      for (let i = h; i < states.length; i++) acc = aggs[j]!.merge(acc, states[i]);
      values[j] = aggs[j]!.finalize(acc);
    }
    out[row] = values;
  }
  return out;
}

/** pointInTimeColumns over prepared events (one entity's, any order). */
export function pointInTime(
  runtime: ViewRuntime,
  events: readonly PreparedEvent[],
  times: readonly number[],
  features?: readonly number[],
): FeatureValue[][] {
  const columns: EventColumns = {
    ts: events.map((e) => e.ts),
    seq: events.map((e) => e.seq),
    inputs: runtime.view.features.map((_, f) => events.map((e) => e.inputs[f])),
  };
  return pointInTimeColumns(
    runtime,
    columns,
    Int32Array.from(events, (_, i) => i),
    times,
    features,
  );
}
