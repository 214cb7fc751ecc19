import type { FeatureValue } from "./aggregators/index.js";
import type { PreparedEvent, ViewRuntime } from "./events.js";
import { tileStart, windowStart } from "./windows.js";

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
  // One tile map per feature (a tile holds one state): spine rows far outnumber hops, so this is cheap.
  const tiles = features.map(() => new Map<number, unknown>());
  const out: FeatureValue[][] = new Array(times.length);
  let next = 0;
  for (const row of order) {
    const t = times[row]!;
    for (; next < sorted.length && ts[sorted[next]!]! < t; next++) {
      const e = sorted[next]!;
      for (let j = 0; j < features.length; j++) {
        const f = features[j]!;
        const column = inputs[f];
        const input = column === null ? true : column![e];
        if (input === null || input === undefined || Number.isNaN(input)) continue;
        const start = tileStart(ts[e]!, view.features[f]!.hopMs);
        const held = tiles[j]!.get(start);
        const state = held === undefined ? aggregators[f]!.init() : held;
        tiles[j]!.set(start, aggregators[f]!.add(state, input, ts[e]!, seq[e]!));
      }
    }
    out[row] = features.map((f, j) => {
      const feature = view.features[f]!;
      const aggregator = aggregators[f]!;
      const from = windowStart(t, feature.windowMs, feature.hopMs);
      let acc = aggregator.init();
      for (const [start, state] of tiles[j]!) {
        // Spine times ascend, so tiles before this window are never read again.
        if (start < from) tiles[j]!.delete(start);
        else acc = aggregator.merge(acc, state);
      }
      return aggregator.finalize(acc);
    });
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
