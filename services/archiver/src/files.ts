/**
 * Writing one roll of one partition: the rows of an offset range, split by event-time hour into
 * Parquet files, made visible atomically and recoverably.
 *
 * The rule that keeps every record exactly once (docs/offline.md, "Crash and replay"):
 *   1. write `_inflight/part-<p>.json` naming every file of the roll (temp names included);
 *   2. write each file under a temp name (".part-….tmp"), then rename it to its final name;
 *   3. commit offset lastOffset+1 for the partition to Kafka;
 *   4. delete the in-flight marker.
 * A roll is committed iff Kafka's committed offset is past its lastOffset. The next owner of the
 * partition, before it writes anything, reads the marker: if the roll was not committed it deletes
 * the roll's files (they will be rewritten from the replayed records, whatever the new roll
 * boundaries are), then the marker. So a crash at any step leaves no duplicate and no gap.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ARCHIVE_COLUMNS, archiveFileName, HOUR_MS } from "@tessera/stores";
import {
  Field,
  Int32,
  Int64,
  makeBuilder,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  tableToIPC,
} from "apache-arrow";
import { Table as WasmTable, WriterPropertiesBuilder, writeParquet } from "parquet-wasm";
import type { MappedField } from "./avro-arrow.js";

/** A decoded record waiting in a roll. */
export interface ArchivedRow {
  value: Record<string, unknown>;
  offset: number;
  /** Kafka record timestamp (append time on LogAppendTime topics). */
  timestamp: number;
  /** Event time, epoch ms: decides the date/hour directory. */
  eventTime: number;
}

export interface Roll {
  topic: string;
  partition: number;
  firstOffset: number;
  lastOffset: number;
  schemaId: number;
  schemaText: string;
  fields: MappedField[];
  rows: ArchivedRow[];
}

interface Marker {
  partition: number;
  firstOffset: number;
  lastOffset: number;
  files: string[];
}

const META_FIELDS = [
  new Field(ARCHIVE_COLUMNS.partition, new Int32(), false),
  new Field(ARCHIVE_COLUMNS.offset, new Int64(), false),
  new Field(ARCHIVE_COLUMNS.appendTime, new TimestampMillisecond("UTC"), false),
];

/** Directory of a topic's archive: topic names are [a-zA-Z0-9._-], so they are safe path parts. */
export const topicDir = (root: string, topic: string) => join(root, topic);

const markerPath = (root: string, topic: string, partition: number) =>
  join(topicDir(root, topic), "_inflight", `part-${partition}.json`);

const tempOf = (file: string) => join(dirname(file), `.${basename(file)}.tmp`);

/**
 * Writes a roll's files (steps 1–2 above) and returns them. The caller commits the offset, then
 * calls `finishRoll`.
 */
export async function writeRoll(root: string, roll: Roll): Promise<{ files: string[]; bytes: number }> {
  const byHour = new Map<number, ArchivedRow[]>();
  for (const row of roll.rows) {
    const hour = Math.floor(row.eventTime / HOUR_MS) * HOUR_MS;
    const rows = byHour.get(hour);
    if (rows) rows.push(row);
    else byHour.set(hour, [row]);
  }
  const dir = topicDir(root, roll.topic);
  const planned = [...byHour].map(([hour, rows]) => ({
    rows,
    file: join(dir, archiveFileName(hour, roll.partition, rows[0]!.offset, rows.at(-1)!.offset)),
  }));
  const marker: Marker = {
    partition: roll.partition,
    firstOffset: roll.firstOffset,
    lastOffset: roll.lastOffset,
    files: planned.map((p) => p.file),
  };
  await writeAtomically(markerPath(root, roll.topic, roll.partition), JSON.stringify(marker));
  let bytes = 0;
  for (const { file, rows } of planned) {
    const data = encodeRows(roll, rows);
    bytes += data.byteLength;
    await writeAtomically(file, data);
  }
  return { files: marker.files, bytes };
}

/** Step 4: the roll is committed; forget its marker. */
export async function finishRoll(root: string, topic: string, partition: number): Promise<void> {
  await rm(markerPath(root, topic, partition), { force: true });
}

/**
 * Before a new owner writes a partition: undo an uncommitted roll (see the module comment).
 * `committed` is the partition's committed offset (the next offset to read), or -1 for none.
 * Returns the files removed.
 */
export async function recoverPartition(
  root: string,
  topic: string,
  partition: number,
  committed: number,
): Promise<string[]> {
  const path = markerPath(root, topic, partition);
  let marker: Marker;
  try {
    marker = JSON.parse(await readFile(path, "utf8")) as Marker;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    // A marker is written atomically, so an unreadable one is damage: keep it for a human.
    throw new Error(`in-flight marker ${path} is unreadable: ${(error as Error).message}`);
  }
  const removed: string[] = [];
  if (committed <= marker.lastOffset) {
    for (const file of marker.files) {
      await rm(tempOf(file), { force: true });
      await rm(file, { force: true });
      removed.push(file);
    }
  }
  await rm(path, { force: true });
  return removed;
}

async function writeAtomically(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temp = tempOf(file);
  await writeFile(temp, data);
  await rename(temp, file);
}

/** The roll's rows of one hour as a Parquet file: the event's fields, then the metadata columns. */
function encodeRows(roll: Roll, rows: ArchivedRow[]): Uint8Array {
  const fields = [...roll.fields.map((f) => f.field), ...META_FIELDS];
  const columns = roll.fields.map((mapped) => {
    const builder = makeBuilder({ type: mapped.field.type, nullValues: [null, undefined] });
    for (const row of rows) builder.append(mapped.convert(row.value[mapped.field.name] ?? null) as never);
    return builder.finish().toVector();
  });
  const meta = [
    rows.map(() => roll.partition),
    rows.map((r) => BigInt(r.offset)),
    rows.map((r) => r.timestamp),
  ].map((values, i) => {
    const builder = makeBuilder({ type: META_FIELDS[i]!.type });
    for (const v of values) builder.append(v as never);
    return builder.finish().toVector();
  });
  const schema = new Schema(fields);
  const data = makeData({
    type: new Struct(fields),
    length: rows.length,
    nullCount: 0,
    children: [...columns, ...meta].map((v) => v.data[0]!),
  });
  const table = new Table(schema, [new RecordBatch(schema, data)]);
  const props = new WriterPropertiesBuilder()
    .setKeyValueMetadata(
      new Map([
        ["tessera.topic", roll.topic],
        ["tessera.schema.id", String(roll.schemaId)],
        ["tessera.avro.schema", roll.schemaText],
      ]),
    )
    .build();
  return writeParquet(WasmTable.fromIPCStream(tableToIPC(table, "stream")), props);
}
