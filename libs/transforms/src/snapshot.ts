/**
 * The compute of a point-in-time snapshot over millions of events, without an object per event:
 * events are prepared into growable columns (EventColumnsBuilder), gathered into entity order, and
 * each entity's spine times evaluated by the batch evaluators of batch.ts (pointInTimeSpine). Reading the
 * spine and the events and writing the table is @tessera/stores' runSnapshot.
 */
import { type FeatureValue, inputKind } from "./aggregators/index.js";
import { type EventColumns, pointInTimeAsIngested, pointInTimeEvaluator } from "./batch.js";
import type { Row } from "./definitions/types.js";
import type { PreparedEvent, ViewRuntime } from "./events.js";
import { parseTimestamp } from "./time.js";

/** An event row that cannot be used: the reader names its file and row. */
export class EventRowError extends Error {
  override name = "EventRowError";
  constructor(
    message: string,
    readonly column?: string,
  ) {
    super(message);
  }
}

/**
 * One view's events as columns, for entities of the spine only, in entity order: entity e's events
 * (in read order) are rows starts[e] … starts[e + 1] − 1, adjacent in memory, so the batch evaluator
 * reads and sorts them without a cache miss per access into 10M-long columns.
 */
export interface SpineEvents {
  /** Events dropped by the view's filter. */
  filtered: number;
  /** Events kept. */
  count: number;
  starts: Int32Array;
  columns: EventColumns;
  /** Append time of each event, for "as ingested" snapshots. */
  appended?: Float64Array;
}

/** The spine as one view sees it: times, and each row's entity id (dense from 0). */
export interface SpineRows {
  times: ArrayLike<number>;
  entityIds: Int32Array;
  entityCount: number;
}

const CHUNK_BITS = 16;
const CHUNK = 1 << CHUNK_BITS;

/**
 * A numeric column that grows in fixed-size chunks: growing never copies, so memory peaks at the
 * data (10M events: 80 MB a column), not at the old and the doubled buffer together.
 */
class ChunkedColumn<T extends Float64Array | Int32Array> {
  private chunks: T[] = [];
  private current: T | undefined;

  constructor(private readonly make: (n: number) => T) {}

  /** Writes value i, where i is the column's length so far (it grows by one). */
  put(i: number, value: number): void {
    const at = i & (CHUNK - 1);
    if (at === 0) {
      this.current = this.make(CHUNK);
      this.chunks.push(this.current);
    }
    this.current![at] = value;
  }

  /** Values order[0], order[1], … as one array; the chunks are released. */
  gather(order: Int32Array): T {
    const out = this.make(order.length);
    const { chunks } = this;
    for (let i = 0; i < order.length; i++) {
      const at = order[i]!;
      out[i] = chunks[at >>> CHUNK_BITS]![at & (CHUNK - 1)]!;
    }
    this.release();
    return out;
  }

  release(): void {
    this.chunks = [];
    this.current = undefined;
  }

  /** Calls visit(value, i) for the first n values. */
  forEach(n: number, visit: (value: number, i: number) => void): void {
    for (let i = 0; i < n; i++) visit(this.chunks[i >>> CHUNK_BITS]![i & (CHUNK - 1)]!, i);
  }
}

const float64s = (n: number) => new Float64Array(n);

/** Collects one view's prepared events into growable columns. */
export class EventColumnsBuilder {
  private n = 0;
  private filtered = 0;
  private readonly entityIds = new ChunkedColumn((n) => new Int32Array(n));
  private readonly ts = new ChunkedColumn(float64s);
  private readonly seq = new ChunkedColumn(float64s);
  private readonly appended: ChunkedColumn<Float64Array> | undefined;
  private readonly inputs: (ChunkedColumn<Float64Array> | unknown[] | null)[];
  private readonly kinds: ("number" | "any" | "event" | "unused")[];
  /** Per feature, the first requested feature sharing its input (runtime.sharedInput): they share its column. */
  private readonly owner: number[];
  /** Reused for every event: its fields are copied into the columns below. */
  private readonly scratch: PreparedEvent;

  /** `appendTimeColumn`: read each event's append time from it (for pointInTimeAsIngested). */
  constructor(
    private readonly runtime: ViewRuntime,
    features: readonly number[],
    private readonly appendTimeColumn?: string,
  ) {
    const { view } = runtime;
    if (appendTimeColumn) this.appended = new ChunkedColumn(float64s);
    this.kinds = view.features.map((f, i) => (features.includes(i) ? inputKind(f.op, f.column) : "unused"));
    // The first requested feature of each shared input owns its column.
    const first = new Map<number, number>();
    this.owner = view.features.map((_, i) => {
      if (this.kinds[i] !== "number" && this.kinds[i] !== "any") return i;
      const input = runtime.sharedInput[i]!;
      if (!first.has(input)) first.set(input, i);
      return first.get(input)!;
    });
    this.inputs = this.shared(
      this.kinds.map((kind) =>
        kind === "number" ? new ChunkedColumn(float64s) : kind === "any" ? ([] as unknown[]) : null,
      ),
    );
    this.scratch = { ok: true, entity: "", ts: 0, seq: 0, inputs: new Array(view.features.length) };
  }

  /**
   * Adds the event in `row` (`index`: its position in the whole read, the log order when the source
   * has no offset column) if its entity is in `spineIds`. Throws EventRowError on an unusable row.
   */
  add(row: Row, index: number, spineIds: Map<string, number>): void {
    const { source } = this.runtime.view;
    const seq = source.offset === undefined ? index : Number(row[source.offset]);
    const prepared = this.runtime.prepare(row, seq, this.scratch);
    if (!prepared.ok) {
      if (prepared.filtered) {
        this.filtered++;
        return;
      }
      throw new EventRowError(prepared.reason, prepared.column);
    }
    const entity = spineIds.get(prepared.entity);
    if (entity === undefined) return; // no spine row can read it
    const n = this.n;
    this.entityIds.put(n, entity);
    this.ts.put(n, prepared.ts);
    this.seq.put(n, seq);
    if (this.appended) {
      const appended = parseTimestamp(row[this.appendTimeColumn!]);
      if (appended === undefined) {
        throw new EventRowError(
          "no append time: --as-of ingestion needs the archive's metadata columns",
          this.appendTimeColumn,
        );
      }
      this.appended.put(n, appended);
    }
    for (let f = 0; f < this.kinds.length; f++) {
      if (this.owner[f] !== f) continue; // its owner's column holds the same input
      const input = prepared.inputs[f];
      const column = this.inputs[f];
      if (column instanceof ChunkedColumn) column.put(n, input === null ? Number.NaN : (input as number));
      else if (column) column.push(input);
    }
    this.n = n + 1;
  }

  /** `columns` with every feature pointed at its owner's column (one copy of a column read by many). */
  private shared<T>(columns: T[]): T[] {
    return columns.map((_, f) => columns[this.owner[f]!]!);
  }

  /**
   * The events collected, gathered into entity order (`entityCount`: the spine's entities, ids dense
   * from 0). The builder is spent; each column's chunks are released as it is gathered, so memory
   * peaks at the chunks plus one column.
   */
  finish(entityCount: number): SpineEvents {
    const { n } = this;
    // A counting sort of the events by entity: order[starts[e] …] are entity e's, in read order.
    const starts = new Int32Array(entityCount + 1);
    this.entityIds.forEach(n, (id) => {
      starts[id + 1]!++;
    });
    for (let e = 0; e < entityCount; e++) starts[e + 1]! += starts[e]!;
    const order = new Int32Array(n);
    const fill = starts.slice(0, entityCount);
    this.entityIds.forEach(n, (id, i) => {
      order[fill[id]!++] = i;
    });
    this.entityIds.release();
    const gathered = this.inputs.map((column, f) => {
      if (this.owner[f] !== f || column === null) return null;
      if (column instanceof ChunkedColumn) return column.gather(order);
      return Array.from(order, (i) => column[i]);
    });
    return {
      filtered: this.filtered,
      count: n,
      starts,
      columns: { ts: this.ts.gather(order), seq: this.seq.gather(order), inputs: this.shared(gathered) },
      ...(this.appended ? { appended: this.appended.gather(order) } : {}),
    };
  }
}

/**
 * Each spine row's values of `features`, entity by entity: `emit(row, j, value)` for the j-th of
 * `features`. By event time (pointInTimeColumns), or as ingested when the events carry append times
 * (pointInTimeAsIngested). `onEntity(rowsDone, entity)` after each entity, for progress.
 */
export function pointInTimeSpine(
  runtime: ViewRuntime,
  features: readonly number[],
  spine: SpineRows,
  events: SpineEvents,
  emit: (row: number, j: number, value: FeatureValue) => void,
  onEntity?: (rowsDone: number, entity: number) => void,
): void {
  const byEntity = groupBy(spine.entityIds, spine.entityCount);
  const { columns, appended, starts } = events;
  const positions = Int32Array.from({ length: events.count }, (_, i) => i);
  const evaluate = appended ? undefined : pointInTimeEvaluator(runtime, columns, features);
  let times = new Float64Array(64);
  let done = 0;
  for (let entity = 0; entity < spine.entityCount; entity++) {
    const rows = byEntity.rows(entity);
    if (times.length < rows.length) times = new Float64Array(rows.length * 2);
    const entityTimes = times.subarray(0, rows.length);
    for (let i = 0; i < rows.length; i++) entityTimes[i] = spine.times[rows[i]!]!;
    const eventRows = positions.subarray(starts[entity]!, starts[entity + 1]!);
    if (evaluate) evaluate(eventRows, entityTimes, (i, j, value) => emit(rows[i]!, j, value));
    else {
      const values = pointInTimeAsIngested(runtime, columns, appended!, eventRows, entityTimes, features);
      for (let i = 0; i < rows.length; i++) {
        for (let j = 0; j < features.length; j++) emit(rows[i]!, j, values[i]![j]!);
      }
    }
    done += rows.length;
    onEntity?.(done, entity);
  }
}

/** Row indexes grouped by id (a counting sort): rows(id) lists them in their original order. */
function groupBy(ids: Int32Array, count: number) {
  const starts = new Int32Array(count + 1);
  for (const id of ids) starts[id + 1]!++;
  for (let i = 0; i < count; i++) starts[i + 1]! += starts[i]!;
  const order = new Int32Array(ids.length);
  const fill = starts.slice(0, count);
  ids.forEach((id, row) => {
    order[fill[id]!++] = row;
  });
  return { order, starts, rows: (id: number) => order.subarray(starts[id]!, starts[id + 1]!) };
}
