import type { FeatureValue } from "./aggregators/index.js";
import type { PreparedEvent, ViewRuntime } from "./events.js";
import { finalizeTiles, TileState } from "./tile-state.js";
import { DEFAULT_MAX_SKEW_MS, isLate } from "./windows.js";

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
 * Point-in-time batch evaluator for one entity: a sort-merge of its events with its spine times, on
 * the same tile state as the stream processor and the feature server. Events are added in (ts, log
 * position) order, and each spine time t is finalised once every event with ts < t — and no other —
 * has been added, so the tile holding t contains exactly the events in [tile start, t). Tiles that no
 * later window can reach are dropped as the spine advances, so memory stays bounded by the windows.
 * No clock: every event counts.
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
  const { layout } = runtime;
  const { ts, seq, inputs } = columns;
  const sorted = Int32Array.from(rows).sort((a, b) => ts[a]! - ts[b]! || seq[a]! - seq[b]!);
  const order = Int32Array.from({ length: times.length }, (_, i) => i).sort((a, b) => times[a]! - times[b]!);
  const state = new TileState(layout);
  const nFeatures = runtime.view.features.length;
  const readInputs = columnInputs(runtime, inputs, features);
  // Per hop group, the longest window of the requested features: tiles before its start are done with.
  const reach = layout.groups.map((group) =>
    Math.max(
      0,
      ...features
        .filter((f) => layout.features[f]!.hopMs === group.hopMs)
        .map((f) => layout.features[f]!.windowMs),
    ),
  );
  const values: FeatureValue[] = new Array(nFeatures);
  const out: FeatureValue[][] = new Array(times.length);
  let next = 0;
  for (const row of order) {
    const t = times[row]!;
    for (; next < sorted.length && ts[sorted[next]!]! < t; next++) {
      const e = sorted[next]!;
      state.addToTiles(ts[e]!, seq[e]!, readInputs(e));
    }
    layout.groups.forEach((group, g) => {
      state.dropBefore(g, Math.floor((t - reach[g]!) / group.hopMs));
    });
    finalizeTiles(layout, state, t, values, undefined, features);
    out[row] = features.map((f) => values[f]!);
  }
  return out;
}

/**
 * Event e's inputs as tile slots read them (one array, reused). A slot adds the input of its first
 * feature; it is taken from a requested feature that shares the slot (unrequested features may have
 * no column at all), and slots nobody asked for stay empty.
 */
export function columnInputs(
  runtime: ViewRuntime,
  inputs: EventColumns["inputs"],
  features: readonly number[],
): (e: number) => unknown[] {
  const { layout } = runtime;
  const reads: { into: number; column: ArrayLike<unknown> | null }[] = [];
  for (const f of features) {
    const fl = layout.features[f]!;
    const slot = layout.groups[fl.group]!.slots.find((s) => s.offset === fl.offset)!;
    if (!reads.some((r) => r.into === slot.input))
      reads.push({ into: slot.input, column: inputs[f] ?? null });
  }
  const out: unknown[] = new Array(runtime.view.features.length).fill(null);
  return (e) => {
    for (const { into, column } of reads) {
      const input = column === null ? true : column[e];
      out[into] = input === undefined || (typeof input === "number" && Number.isNaN(input)) ? null : input;
    }
    return out;
  };
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

/**
 * `--as-of ingestion`: the values serving could have had at each time t. Online, an event counts
 * at t only once it has arrived (append time < t), and only if the processor took it: not late
 * (older than the view's retention) and not beyond the skew ahead of its arrival. Its tile is still
 * that of its event time. So, per entity, events are applied in arrival order with processing time
 * = append time, through the incremental evaluator, and read at each t. (The processor's own lag
 * after the append is not in the archive, so it is taken to be zero.)
 *
 * `columns` as for pointInTimeColumns (NaN inputs are skipped); `appended[i]` is event i's append time.
 */
export function pointInTimeAsIngested(
  runtime: ViewRuntime,
  columns: EventColumns,
  appended: ArrayLike<number>,
  rows: ArrayLike<number>,
  times: ArrayLike<number>,
  features: readonly number[] = runtime.view.features.map((_, i) => i),
  maxSkewMs: number = DEFAULT_MAX_SKEW_MS,
): FeatureValue[][] {
  const { view, layout } = runtime;
  const { ts, seq, inputs } = columns;
  const sorted = Int32Array.from(rows).sort((a, b) => appended[a]! - appended[b]! || seq[a]! - seq[b]!);
  const order = Int32Array.from({ length: times.length }, (_, i) => i).sort((a, b) => times[a]! - times[b]!);
  const state = new TileState(layout);
  const readInputs = columnInputs(runtime, inputs, features);
  const event: PreparedEvent = { ok: true, entity: "", ts: 0, seq: 0, inputs: [] };
  const values: FeatureValue[] = [];
  const out: FeatureValue[][] = new Array(times.length);
  let next = 0;
  for (const row of order) {
    const t = times[row]!;
    for (; next < sorted.length && appended[sorted[next]!]! < t; next++) {
      const e = sorted[next]!;
      const now = appended[e]!;
      if (isLate(ts[e]!, now, view.retentionMs) || ts[e]! > now + maxSkewMs) continue;
      event.ts = ts[e]!;
      event.seq = seq[e]!;
      event.inputs = readInputs(e);
      state.add(event, now);
    }
    state.fold(t);
    state.prune(t);
    finalizeTiles(layout, state, t, values, undefined, features);
    out[row] = features.map((f) => values[f]!);
  }
  return out;
}
