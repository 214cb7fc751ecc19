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
  const out: FeatureValue[][] = Array.from({ length: times.length }, () => new Array(features.length));
  pointInTimeEvaluator(runtime, columns, features)(rows, times, (i, j, value) => {
    out[i]![j] = value;
  });
  return out;
}

/**
 * pointInTimeColumns for entity after entity over one set of columns, allocation-free per entity: one
 * tile state and one set of buffers, reused. `emit(i, j, value)`: the value at times[i] of features[j].
 */
export function pointInTimeEvaluator(
  runtime: ViewRuntime,
  columns: EventColumns,
  features: readonly number[],
): (
  rows: ArrayLike<number>,
  times: ArrayLike<number>,
  emit: (i: number, j: number, value: FeatureValue) => void,
) => void {
  const { layout } = runtime;
  const { ts, seq, inputs } = columns;
  const state = new TileState(layout);
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
  const values: FeatureValue[] = new Array(runtime.view.features.length);
  let sorted = new Int32Array(64);
  let order = new Int32Array(64);
  const byTime = (a: number, b: number) => ts[a]! - ts[b]! || seq[a]! - seq[b]!;
  return (rows, times, emit) => {
    if (sorted.length < rows.length) sorted = new Int32Array(rows.length * 2);
    if (order.length < times.length) order = new Int32Array(times.length * 2);
    const events = sorted.subarray(0, rows.length);
    events.set(rows);
    events.sort(byTime);
    const spine = order.subarray(0, times.length);
    for (let i = 0; i < spine.length; i++) spine[i] = i;
    spine.sort((a, b) => times[a]! - times[b]!);
    state.clear();
    let next = 0;
    for (const row of spine) {
      const t = times[row]!;
      for (; next < events.length && ts[events[next]!]! < t; next++) {
        const e = events[next]!;
        state.addToTiles(ts[e]!, seq[e]!, readInputs(e));
      }
      for (let g = 0; g < reach.length; g++) {
        state.dropBefore(g, Math.floor((t - reach[g]!) / layout.groups[g]!.hopMs));
      }
      finalizeTiles(layout, state, t, values, undefined, features);
      for (let j = 0; j < features.length; j++) emit(row, j, values[features[j]!]!);
    }
  };
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
