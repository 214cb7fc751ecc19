import {
  EventColumnsBuilder,
  EventRowError,
  type FeatureValue,
  type Op,
  parseTimestamp,
  pointInTimeSpine,
  type Row,
  type SpineEvents,
  type View,
  type ViewRuntime,
  viewRuntime,
} from "@tessera/transforms";
import { ARCHIVE_COLUMNS, archivePartitionOf, eventFiles } from "./archive.js";
import { TableReadError } from "./errors.js";
import { NumberColumn, type WritableColumn } from "./number-column.js";
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
  const columns: Record<string, WritableColumn> = { ...spine.columns };
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
      const type = outputType(feature.op);
      // Numbers in typed buffers: at 1M rows a JS array of floats costs 24 B a value, this 8.
      const numeric = type === "float64" || type === "int64";
      columns[name] = numeric ? new NumberColumn(spine.length) : new Array(spine.length).fill(null);
      if (type) schema[name] = type;
      names.push(name);
    }
  }

  // Each plan's event columns are let go once its features are computed (before the write).
  const events: (PlanEvents | undefined)[] = await readEvents(options, plans, spine, progress);
  const eventsSeconds = clock();
  const eventStats = {
    read: events[0]?.read ?? 0,
    files: events[0]?.files ?? 0,
    used: events.reduce((n, e) => n + e!.count, 0),
    filtered: events.reduce((n, e) => n + e!.filtered, 0),
  };

  const jsonl = tableFormat(options.out) === "jsonl";
  let done = 0;
  const total = spine.length * plans.length;
  let column = 0;
  plans.forEach((plan, p) => {
    const outputs = plan.features.map((_, j) => columns[names[column + j]!] as NumberColumn | FeatureValue[]);
    const rows = { times: spine.times, entityIds: spine.entityIds[p]!, entityCount: spine.entityCount[p]! };
    const emit = (row: number, j: number, value: FeatureValue) => {
      const output = outputs[j]!;
      if (output instanceof NumberColumn) output.set(row, value as number | null);
      // Lists (last_k, top_k) stay lists in JSONL; Parquet and CSV get JSON text.
      else output[row] = Array.isArray(value) && !jsonl ? JSON.stringify(value) : value;
    };
    const before = done;
    pointInTimeSpine(plan.runtime, plan.features, rows, events[p]!, emit, (rowsDone, entity) => {
      done = before + rowsDone;
      if (entity % 1024 === 0) progress({ phase: "features", done, total });
    });
    events[p] = undefined;
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
    events: eventStats.read,
    eventsUsed: eventStats.used,
    eventsFiltered: eventStats.filtered,
    entities: Math.max(0, ...spine.entityCount),
    eventFiles: eventStats.files,
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
interface PlanEvents extends SpineEvents {
  read: number;
  files: number;
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

  const appendTime = ingestion ? ARCHIVE_COLUMNS.appendTime : undefined;
  const builders = plans.map((plan) => new EventColumnsBuilder(plan.runtime, plan.features, appendTime));
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
  for await (const batch of readBatches(files, readOptions)) {
    const missing = required.find((name) => !(name in batch.columns));
    if (missing)
      throw new TableReadError("the events have no such column", { file: batch.file, column: missing });
    checkRouting?.(batch);
    const names = Object.keys(batch.columns);
    const values = names.map((name) => batch.columns[name]!);
    const row: Row = {}; // one row object per batch, refilled: prepare() keeps no reference to it
    for (let i = 0; i < batch.length; i++) {
      for (let c = 0; c < names.length; c++) row[names[c]!] = values[c]![i];
      try {
        for (let p = 0; p < builders.length; p++) builders[p]!.add(row, read + i, spine.ids[p]!);
      } catch (error) {
        if (!(error instanceof EventRowError)) throw error;
        const where = { file: batch.file, row: batch.firstRow + i + 1 };
        throw new TableReadError(error.message, error.column ? { ...where, column: error.column } : where);
      }
    }
    read += batch.length;
    progress({ phase: "events", done: read });
  }
  return builders.map((b, p) => ({ ...b.finish(spine.entityCount[p]!), read, files: opened }));
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
