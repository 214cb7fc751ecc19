import type { FeatureValue } from "./aggregators/index.js";
import type { PreparedEvent, ViewRuntime } from "./events.js";
import { tileStart, windowStart } from "./windows.js";

/**
 * Point-in-time batch evaluator for one entity: a sort-merge of its events with its spine times.
 * Events are added to hop tiles in (ts, log position) order, and each spine time t reads its window
 * once every event with ts < t — and no other — has been added. So the tile holding t contains exactly
 * the events in [tile start, t), and no per-row scan of events is needed. No clock: every event counts.
 *
 * Returns, for each time in the order given, one value per feature (view order).
 */
export function pointInTime(
  runtime: ViewRuntime,
  events: readonly PreparedEvent[],
  times: readonly number[],
  features: readonly number[] = runtime.view.features.map((_, i) => i),
): FeatureValue[][] {
  const { view, aggregators, hopOf } = runtime;
  const sorted = [...events].sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  const order = times.map((_, i) => i).sort((a, b) => times[a]! - times[b]!);
  // One tile map per feature (a tile holds one state): simple, and spine rows far outnumber hops.
  const tiles = features.map(() => new Map<number, unknown>());
  const out: FeatureValue[][] = new Array(times.length);
  let next = 0;
  for (const row of order) {
    const t = times[row]!;
    for (; next < sorted.length && sorted[next]!.ts < t; next++) {
      const event = sorted[next]!;
      features.forEach((f, j) => {
        const input = event.inputs[f];
        if (input === null || input === undefined) return;
        const start = tileStart(event.ts, view.features[f]!.hopMs);
        const held = tiles[j]!.get(start);
        tiles[j]!.set(
          start,
          aggregators[f]!.add(held === undefined ? aggregators[f]!.init() : held, input, event.ts, event.seq),
        );
      });
    }
    out[row] = features.map((f, j) => {
      const feature = view.features[f]!;
      const aggregator = aggregators[f]!;
      const from = windowStart(t, feature.windowMs, runtime.hops[hopOf[f]!]!);
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
