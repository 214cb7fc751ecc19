import {
  type EventColumns,
  type FeatureValue,
  inputKind,
  type Op,
  type PreparedEvent,
  parseTimestamp,
  pointInTimeAsIngested,
  pointInTimeColumns,
  type Row,
  type View,
  type ViewRuntime,
  viewRuntime,
} from "@tessera/transforms";
import { ARCHIVE_COLUMNS, archivePartitionOf, eventFiles } from "./archive.js";
import { TableReadError } from "./errors.js";
import { readBatches, tableFormat, writeColumns } from "./tables.js";
import type { ColumnBatch, ColumnType } from "./types.js";

/** The features of one view to compute (indexes into view.features). */
export interface SnapshotSelection {
  view: View;
  features: number[];
}

export interface SnapshotProgress {
  phase: "spine" | "events" | "features" | "write";
  done: number;
  /** Known for the features phase (spine rows). */
  total?: number;
}

export interface SnapshotOptions {
  selections: SnapshotSelection[];
  /** Events: a file or a directory (e.g. the Hive-partitioned archive). */
  events: string;
  /** Label spine: the entity column(s) and `timestamp`; every column is passed through. */
  spine: string;
  out: string;
  /** Name feature columns `<view>__<feature>` instead of `<feature>`. */
  fullNames?: boolean;
  /**
   * "event" (default): windows over event time. "ingestion": what serving could have seen, from the
   * archive's append-time column (see pointInTimeAsIngested in @tessera/transforms).
   */
  asOf?: "event" | "ingestion";
  /** Read only some partitions of an archive (a partition-aligned shard; see PartitionShard). */
  shard?: PartitionShard;
  onProgress?: (progress: SnapshotProgress) => void;
}

/**
 * A shard's share of an archive: only the files of its partitions are opened. Its spine must hold
 * only entities whose records went to those partitions, so every event read is checked to have been
 * routed by its entity key (else the topic is not keyed by the entity and the shard would be wrong).
 */
export interface PartitionShard {
  partitions: (partition: number) => boolean;
  /** The partition Kafka's default partitioner sends a record keyed by this entity to. */
  partitionOf: (entity: string) => number;
}

export interface SnapshotSummary {
  out: string;
  spineRows: number;
  events: number;
  /** Events of entities that appear in the spine (the others cannot affect any row). */
  eventsUsed: number;
  eventsFiltered: number;
  entities: number;
  /** Event files opened (counted by the reader as it opens them). */
  eventFiles: number;
  views: { name: string; version: string; features: string[] }[];
  columns: string[];
  seconds: { spine: number; events: number; features: number; write: number; total: number };
}

export const SPINE_TIME = "timestamp";

/**
 * Point-in-time snapshot: for each spine row (entity, timestamp t) the value of each selected feature
 * over exactly the entity's events with windowStart(t) ≤ ts < t, computed by the transform library's
 * batch evaluator (a sort-merge per entity). Fails fast, naming file, row and column, on bad input.
 */
export async function runSnapshot(options: SnapshotOptions): Promise<SnapshotSummary> {
  const clock = phaseClock();
  const progress = options.onProgress ?? (() => {});
  const plans = options.selections.map((s) => ({ ...s, runtime: viewRuntime(s.view) }));

  const spine = await readSpine(options.spine, plans, progress);
  const spineSeconds = clock();

  // Output columns: the spine's, then one per feature (checked before the long read of events).
  const columns: Record<string, ArrayLike<unknown>> = { ...spine.columns };
  const schema: Record<string, ColumnType> = {};
  const names: string[] = [];
  for (const plan of plans) {
    for (const f of plan.features) {
      const feature = plan.view.features[f]!;
      const name = options.fullNames ? `${plan.view.name}__${feature.name}` : feature.name;
      if (name in columns) {
        const message = "this output column is also a spine column or another feature: use --full-names";
        throw new TableReadError(message, { file: options.spine, column: name });
      }
      columns[name] = new Array(spine.length).fill(null);
      const type = outputType(feature.op);
      if (type) schema[name] = type;
      names.push(name);
    }
  }

  const events = await readEvents(options, plans, spine, progress);
  const eventsSeconds = clock();

  const jsonl = tableFormat(options.out) === "jsonl";
  let done = 0;
  const total = spine.length * plans.length;
  let column = 0;
  plans.forEach((plan, p) => {
    const outputs = plan.features.map((_, j) => columns[names[column + j]!] as FeatureValue[]);
    const byEntity = groupBy(spine.entityIds[p]!, spine.entityCount[p]!);
    const eventsByEntity = entityOrdered(events[p]!, spine.entityCount[p]!);
    events[p]!.columns = { ts: [], seq: [], inputs: [] }; // the entity-ordered copy replaces them
    for (let entity = 0; entity < spine.entityCount[p]!; entity++) {
      const rows = byEntity.rows(entity);
      const times = new Float64Array(rows.length);
      for (let i = 0; i < rows.length; i++) times[i] = spine.times[rows[i]!]!;
      const eventRows = eventsByEntity.rows(entity);
      const { columns: eventColumns, appended } = eventsByEntity;
      const values = appended
        ? pointInTimeAsIngested(plan.runtime, eventColumns, appended, eventRows, times, plan.features)
        : pointInTimeColumns(plan.runtime, eventColumns, eventRows, times, plan.features);
      for (let i = 0; i < rows.length; i++) {
        for (let j = 0; j < outputs.length; j++) {
          const value = values[i]![j]!;
          // Lists (last_k, top_k) stay lists in JSONL; Parquet and CSV get JSON text.
          outputs[j]![rows[i]!] = Array.isArray(value) && !jsonl ? JSON.stringify(value) : value;
        }
      }
      done += rows.length;
      if (entity % 1024 === 0) progress({ phase: "features", done, total });
    }
    column += plan.features.length;
  });
  progress({ phase: "features", done: total, total });
  const featureSeconds = clock();

  progress({ phase: "write", done: 0 });
  const metadata = {
    "tessera.views": JSON.stringify(plans.map((p) => ({ name: p.view.name, version: p.view.version }))),
  };
  await writeColumns(options.out, columns, { schema, metadata });
  const writeSeconds = clock();

  return {
    out: options.out,
    spineRows: spine.length,
    events: events[0]?.read ?? 0,
    eventsUsed: events.reduce((n, e) => n + e.entityIds.length, 0),
    eventsFiltered: events.reduce((n, e) => n + e.filtered, 0),
    entities: Math.max(0, ...spine.entityCount),
    eventFiles: events[0]?.files ?? 0,
    views: plans.map((p) => ({
      name: p.view.name,
      version: p.view.version,
      features: p.features.map((f) => p.view.features[f]!.name),
    })),
    columns: [...Object.keys(spine.columns), ...names],
    seconds: {
      spine: spineSeconds,
      events: eventsSeconds,
      features: featureSeconds,
      write: writeSeconds,
      total: spineSeconds + eventsSeconds + featureSeconds + writeSeconds,
    },
  };
}

function phaseClock(): () => number {
  let last = performance.now();
  return () => {
    const now = performance.now();
    const seconds = (now - last) / 1000;
    last = now;
    return seconds;
  };
}

/** Counts are integers; list ops (last_k, top_k) go to Parquet/CSV as JSON text; first/last keep their type. */
function outputType(op: Op): ColumnType | undefined {
  if (op === "count" || op === "approx_distinct") return "int64";
  if (op === "last_k" || op === "top_k") return "string";
  if (op === "first" || op === "last") return undefined; // inferred from the values
  return "float64";
}

type Plan = SnapshotSelection & { runtime: ViewRuntime };

interface Spine {
  length: number;
  columns: Record<string, unknown[]>;
  times: Float64Array;
  /** Per plan: entity id of each row, and the entity ids by key (ids are dense from 0). */
  entityIds: Int32Array[];
  entityCount: number[];
  ids: Map<string, number>[];
}

async function readSpine(
  path: string,
  plans: Plan[],
  progress: (p: SnapshotProgress) => void,
): Promise<Spine> {
  const columns: Record<string, unknown[]> = {};
  const times: number[] = [];
  const ids = plans.map(() => new Map<string, number>());
  const entityIds: number[][] = plans.map(() => []);
  let length = 0;
  for await (const batch of readBatches(path)) {
    const keys = [SPINE_TIME, ...plans.map((p) => p.view.source.entity)];
    const missing = keys.find((key) => !(key in batch.columns));
    if (missing)
      throw new TableReadError("the spine has no such column", { file: batch.file, column: missing });
    for (const [name, values] of Object.entries(batch.columns)) {
      columns[name] ??= new Array(length).fill(null);
      for (let i = 0; i < batch.length; i++) columns[name]!.push(values[i]);
    }
    for (let i = 0; i < batch.length; i++) {
      const where = { file: batch.file, row: batch.firstRow + i + 1 };
      const t = parseTimestamp(batch.columns[SPINE_TIME]![i]);
      if (t === undefined) {
        const shown = JSON.stringify(batch.columns[SPINE_TIME]![i] ?? null);
        throw new TableReadError(`bad timestamp ${shown} (epoch ms or ISO-8601)`, {
          ...where,
          column: SPINE_TIME,
        });
      }
      times.push(t);
      plans.forEach((plan, p) => {
        const key = plan.view.source.entity;
        const entity = batch.columns[key]![i];
        if (entity === null || entity === undefined || entity === "") {
          throw new TableReadError("missing entity key", { ...where, column: key });
        }
        entityIds[p]!.push(intern(ids[p]!, String(entity)));
      });
    }
    length += batch.length;
    for (const values of Object.values(columns)) if (values.length < length) values.length = length;
    progress({ phase: "spine", done: length });
  }
  return {
    length,
    columns,
    times: Float64Array.from(times),
    entityIds: entityIds.map((e) => Int32Array.from(e)),
    entityCount: ids.map((m) => m.size),
    ids,
  };
}

function intern(ids: Map<string, number>, key: string): number {
  let id = ids.get(key);
  if (id === undefined) {
    id = ids.size;
    ids.set(key, id);
  }
  return id;
}

/** A plan's events, as columns: only entities present in the spine are kept. */
interface PlanEvents {
  read: number;
  files: number;
  filtered: number;
  entityIds: Int32Array;
  columns: EventColumns;
  /** Append time of each event, for `asOf: "ingestion"`. */
  appended?: Float64Array;
}

async function readEvents(
  options: SnapshotOptions,
  plans: Plan[],
  spine: Spine,
  progress: (p: SnapshotProgress) => void,
): Promise<PlanEvents[]> {
  const path = options.events;
  const ingestion = options.asOf === "ingestion";
  // Read only the columns the views need, unless a row transform may look at any of them.
  const needed = new Set<string>();
  let everything = false;
  for (const { view, features } of plans) {
    if (view.derive.length > 0 || view.filter) everything = true;
    needed.add(view.source.entity).add(view.source.timestamp);
    if (view.source.offset) needed.add(view.source.offset);
    for (const f of features) if (view.features[f]!.column) needed.add(view.features[f]!.column!);
  }
  if (ingestion) needed.add(ARCHIVE_COLUMNS.appendTime);
  const derived = new Set(plans.flatMap((p) => p.view.derive.map((d) => d.name)));
  const required = [...needed].filter((name) => !derived.has(name));

  const builders = plans.map((plan) => new EventBuilder(plan, ingestion));
  let read = 0;
  let opened = 0;
  const onOpen = () => void opened++;
  const readOptions = everything ? { onOpen } : { columns: required, onOpen };
  // An archive directory is pruned to the hours the spine can read (and to a shard's partitions).
  let [minT, maxT] = [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const t of spine.times) [minT, maxT] = [Math.min(minT, t), Math.max(maxT, t)];
  const features = plans.flatMap((p) => p.features.map((f) => p.view.features[f]!));
  const { shard } = options;
  const files =
    spine.length === 0 && !shard ? [path] : await eventFiles(path, minT, maxT, features, shard?.partitions);
  const checkRouting = shard ? routingCheck(shard, plans[0]!.view.source.entity) : undefined;
  for await (const batch of readEach(files, readOptions)) {
    const missing = required.find((name) => !(name in batch.columns));
    if (missing)
      throw new TableReadError("the events have no such column", { file: batch.file, column: missing });
    checkRouting?.(batch);
    const names = Object.keys(batch.columns);
    const values = names.map((name) => batch.columns[name]!);
    const row: Row = {}; // one row object per batch, refilled: prepare() keeps no reference to it
    for (let i = 0; i < batch.length; i++) {
      for (let c = 0; c < names.length; c++) row[names[c]!] = values[c]![i];
      for (let p = 0; p < builders.length; p++) builders[p]!.add(row, read + i, spine.ids[p]!, batch, i);
    }
    read += batch.length;
    progress({ phase: "events", done: read });
  }
  return builders.map((b) => ({ ...b.finish(read), files: opened }));
}

/** Fails on an event whose entity key does not route to the partition of the file it was read from. */
function routingCheck(shard: PartitionShard, entity: string) {
  const routed = new Map<string, number>();
  return (batch: ColumnBatch) => {
    const partition = archivePartitionOf(batch.file);
    const keys = batch.columns[entity];
    if (partition === undefined || !keys) return;
    for (let i = 0; i < batch.length; i++) {
      const key = String(keys[i]);
      let p = routed.get(key);
      if (p === undefined) {
        p = shard.partitionOf(key);
        routed.set(key, p);
      }
      if (p !== partition) {
        throw new TableReadError(
          `${entity} ${key} was read from partition ${partition}, but its key routes to partition ${p}: ` +
            "the topic is not keyed by this entity, or its partition count changed; shard by entity (--shard-by entity) instead",
          { file: batch.file, row: batch.firstRow + i + 1, column: entity },
        );
      }
    }
  };
}

async function* readEach(files: string[], options: { columns?: string[] }): AsyncGenerator<ColumnBatch> {
  for (const file of files) yield* readBatches(file, options);
}

/** Collects one plan's prepared events into growable columns. */
class EventBuilder {
  private n = 0;
  private filtered = 0;
  private entityIds = new Int32Array(1024);
  private ts = new Float64Array(1024);
  private seq = new Float64Array(1024);
  private appended: Float64Array | undefined;
  private inputs: (Float64Array | unknown[] | null)[];
  private readonly kinds: ("number" | "any" | "event" | "unused")[];
  /** Reused for every event: its fields are copied into the columns below. */
  private readonly scratch: PreparedEvent;

  constructor(
    private readonly plan: Plan,
    ingestion = false,
  ) {
    if (ingestion) this.appended = new Float64Array(1024);
    this.kinds = plan.view.features.map((f, i) =>
      plan.features.includes(i) ? inputKind(f.op, f.column) : "unused",
    );
    this.inputs = this.kinds.map((kind) =>
      kind === "number" ? new Float64Array(1024) : kind === "any" ? [] : null,
    );
    this.scratch = { ok: true, entity: "", ts: 0, seq: 0, inputs: new Array(plan.view.features.length) };
  }

  add(row: Row, index: number, spineIds: Map<string, number>, batch: ColumnBatch, i: number): void {
    const { source } = this.plan.view;
    const seq = source.offset === undefined ? index : Number(row[source.offset]);
    const prepared = this.plan.runtime.prepare(row, seq, this.scratch);
    if (!prepared.ok) {
      if (prepared.filtered) {
        this.filtered++;
        return;
      }
      const where = { file: batch.file, row: batch.firstRow + i + 1 };
      throw new TableReadError(
        prepared.reason,
        prepared.column ? { ...where, column: prepared.column } : where,
      );
    }
    const entity = spineIds.get(prepared.entity);
    if (entity === undefined) return; // no spine row can read it
    if (this.n === this.ts.length) this.grow();
    this.entityIds[this.n] = entity;
    this.ts[this.n] = prepared.ts;
    this.seq[this.n] = seq;
    if (this.appended) {
      const appended = parseTimestamp(row[ARCHIVE_COLUMNS.appendTime]);
      if (appended === undefined) {
        const where = { file: batch.file, row: batch.firstRow + i + 1, column: ARCHIVE_COLUMNS.appendTime };
        throw new TableReadError(
          "no append time: --as-of ingestion needs the archive's metadata columns",
          where,
        );
      }
      this.appended[this.n] = appended;
    }
    for (let f = 0; f < this.kinds.length; f++) {
      const input = prepared.inputs[f];
      const column = this.inputs[f];
      if (column instanceof Float64Array) column[this.n] = input === null ? Number.NaN : (input as number);
      else if (column) column.push(input);
    }
    this.n++;
  }

  private grow(): void {
    const size = this.ts.length * 2;
    const grown = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(a);
      return next;
    };
    this.entityIds = grown(this.entityIds, (n) => new Int32Array(n));
    this.ts = grown(this.ts, (n) => new Float64Array(n));
    this.seq = grown(this.seq, (n) => new Float64Array(n));
    if (this.appended) this.appended = grown(this.appended, (n) => new Float64Array(n));
    this.inputs = this.inputs.map((c) =>
      c instanceof Float64Array ? grown(c, (n) => new Float64Array(n)) : c,
    );
  }

  finish(read: number): Omit<PlanEvents, "files"> {
    return {
      read,
      filtered: this.filtered,
      entityIds: this.entityIds.subarray(0, this.n),
      columns: {
        ts: this.ts.subarray(0, this.n),
        seq: this.seq.subarray(0, this.n),
        inputs: this.inputs.map((c) => (c instanceof Float64Array ? c.subarray(0, this.n) : c)),
      },
      ...(this.appended ? { appended: this.appended.subarray(0, this.n) } : {}),
    };
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

/**
 * The events copied into entity order, so each entity's events are adjacent in memory: the batch
 * evaluator then reads (and sorts) them without a cache miss per access into 10M-long columns.
 */
function entityOrdered(events: PlanEvents, count: number) {
  const { order, starts } = groupBy(events.entityIds, count);
  const permute = <T extends ArrayLike<unknown> | null>(column: T): T => {
    if (column === null) return column;
    const out = column instanceof Float64Array ? new Float64Array(order.length) : new Array(order.length);
    for (let i = 0; i < order.length; i++) out[i] = column[order[i]!] as number;
    return out as unknown as T;
  };
  const columns: EventColumns = {
    ts: permute(events.columns.ts),
    seq: permute(events.columns.seq),
    inputs: events.columns.inputs.map(permute),
  };
  const appended = events.appended ? permute(events.appended) : undefined;
  const positions = Int32Array.from({ length: order.length }, (_, i) => i);
  return { columns, appended, rows: (id: number) => positions.subarray(starts[id]!, starts[id + 1]!) };
}
