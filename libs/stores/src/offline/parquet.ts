import {
  Table as ArrowTable,
  Bool,
  type DataType,
  Float64,
  Int64,
  makeData,
  makeVector,
  type Timestamp,
  TimestampMillisecond,
  TimeUnit,
  Type,
  tableFromIPC,
  tableToIPC,
  Utf8,
  type Vector,
  vectorFromArray,
} from "apache-arrow";
import {
  ParquetFile,
  transformParquetStream,
  Table as WasmTable,
  WriterPropertiesBuilder,
  writeParquet,
} from "parquet-wasm";
import { TableReadError } from "./errors.js";
import { NumberColumn } from "./number-column.js";
import { readObject, reasonOf } from "./storage.js";
import type { ColumnBatch, ColumnType } from "./types.js";

/**
 * Reads a Parquet file (a path or an s3:// URL) one row group at a time, as columns of plain JS
 * values (int64 → number). `bytes`: the file's contents, already being read (a prefetch).
 */
export async function* readParquetBatches(
  file: string,
  columns?: string[],
  prefetched?: Promise<Uint8Array>,
): AsyncGenerator<ColumnBatch> {
  const bytes = await (prefetched ?? readObject(file)).catch((error) => {
    throw new TableReadError(reasonOf(error, file), { file });
  });
  let handle: ParquetFile;
  let groupRows: number[];
  let names: string[];
  try {
    handle = await ParquetFile.fromFile(new Blob([bytes]));
    const metadata = handle.metadata();
    groupRows = Array.from({ length: metadata.numRowGroups() }, (_, g) => metadata.rowGroup(g).numRows());
    names = tableFromIPC(handle.schema().intoIPCStream()).schema.fields.map((field) => field.name);
  } catch (error) {
    throw new TableReadError(`not a Parquet file (${(error as Error).message ?? error})`, { file });
  }
  try {
    const missing = columns?.find((name) => !names.includes(name));
    if (missing !== undefined) throw new TableReadError("no such column", { file, column: missing });
    const wanted = columns ?? names;
    let firstRow = 0;
    for (let group = 0; group < groupRows.length; group++) {
      // Only the wanted columns (an archive row carries every event field and metadata), and the group
      // as one record batch: the reader's default of 1,024 rows per batch leaves chunked vectors that
      // are read value by value.
      const batchSize = Math.max(1, groupRows[group]!);
      const read = await handle.read({ rowGroups: [group], columns: wanted, batchSize });
      const table = tableFromIPC(read.intoIPCStream());
      const out: Record<string, ArrayLike<unknown>> = {};
      for (const name of wanted) out[name] = plainValues(table.getChild(name)!);
      yield { file, firstRow, length: table.numRows, columns: out };
      firstRow += table.numRows;
    }
  } finally {
    handle.free();
  }
}

/** Arrow vector → array of numbers/strings/booleans/null; typed arrays where there are no nulls (fast path). */
function plainValues(vector: Vector): ArrayLike<unknown> {
  const type = vector.type as DataType;
  // Millisecond timestamps are int64 epoch ms underneath: read them as numbers too, not one get() each.
  const typeId =
    type.typeId === Type.Timestamp && (type as Timestamp).unit === TimeUnit.MILLISECOND
      ? Type.Int
      : type.typeId;
  if (vector.nullCount === 0 && (typeId === Type.Float || typeId === Type.Int)) {
    const raw = vector.toArray() as ArrayLike<number | bigint>;
    if (raw instanceof BigInt64Array) return int64ToNumbers(raw);
    if (raw instanceof BigUint64Array) return Float64Array.from(raw, Number);
    return raw as ArrayLike<number>;
  }
  if ((typeId === Type.Float || typeId === Type.Int) && vector.data.length === 1) {
    // Numbers with nulls: the typed values plus the validity bitmap, not one get() per value.
    const raw = vector.toArray() as ArrayLike<number | bigint>;
    const numbers = raw instanceof BigInt64Array ? int64ToNumbers(raw) : raw;
    const data = vector.data[0]!;
    const out = new Array<number | null>(vector.length);
    for (let i = 0; i < vector.length; i++) out[i] = data.getValid(i) ? Number(numbers[i]) : null;
    return out;
  }
  if (typeId === Type.Utf8 && vector.data.length === 1) {
    const ascii = asciiStrings(vector);
    if (ascii) return ascii;
  }
  const out = new Array<unknown>(vector.length);
  for (let i = 0; i < vector.length; i++) out[i] = plainValue(vector.get(i));
  return out;
}

/** int64 → number without a BigInt per value: high word · 2^32 + low word (exact below 2^53). */
function int64ToNumbers(raw: BigInt64Array): Float64Array {
  const words = new Int32Array(raw.buffer, raw.byteOffset, raw.length * 2);
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = words[2 * i + 1]! * 4294967296 + (words[2 * i]! >>> 0);
  return out;
}

/**
 * Fast path for ASCII text columns (ids, codes): decode the whole buffer once and slice it, instead of
 * one TextDecoder call per value. Undefined when any byte is non-ASCII (offsets would not be chars).
 */
function asciiStrings(vector: Vector): (string | null)[] | undefined {
  const data = vector.data[0]!;
  const bytes = data.values as Uint8Array;
  const offsets = data.valueOffsets as Int32Array;
  const start = offsets[0]!;
  const end = offsets[data.length]!;
  for (let i = start; i < end; i++) if (bytes[i]! > 0x7f) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("latin1");
  const out = new Array<string | null>(data.length);
  for (let i = 0; i < data.length; i++) {
    out[i] = data.getValid(i) ? text.slice(offsets[i]! - start, offsets[i + 1]! - start) : null;
  }
  return out;
}

function plainValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Date) return value.getTime();
  if (typeof value === "object" && "toJSON" in value && typeof value.toJSON === "function")
    return value.toJSON();
  return value;
}

const ROW_GROUP = 128 * 1024;

/**
 * Encodes columns as one Parquet file (parquet-wasm's default compression), row groups of 128k rows,
 * yielded in pieces. A larger table is encoded one row group at a time, so what it costs beyond the
 * columns themselves is one group's Arrow and Parquet buffers, not a copy of the whole table in each.
 */
export async function* encodeParquet(
  columns: Map<string, unknown[] | NumberColumn>,
  types: Map<string, ColumnType>,
  metadata: Record<string, string>,
): AsyncGenerator<Uint8Array> {
  const length = Math.max(0, ...[...columns.values()].map((values) => values.length));
  const props = () =>
    new WriterPropertiesBuilder()
      .setMaxRowGroupSize(ROW_GROUP)
      .setKeyValueMetadata(new Map(Object.entries(metadata)))
      .build();
  const group = (from: number, to: number) => {
    const vectors: Record<string, Vector> = {};
    for (const [name, values] of columns) {
      const type = types.get(name)!;
      vectors[name] =
        values instanceof NumberColumn && (type === "float64" || type === "int64")
          ? numberColumnVector(values, from, to, type)
          : toVector(rowsOf(values, from, to), type);
    }
    return WasmTable.fromIPCStream(tableToIPC(new ArrowTable(vectors), "stream"));
  };
  if (length <= ROW_GROUP) {
    yield writeParquet(group(0, length), props());
    return;
  }
  let from = 0;
  const batches = new ReadableStream({
    pull(controller) {
      if (from >= length) return controller.close();
      const to = Math.min(length, from + ROW_GROUP);
      for (const batch of group(from, to).recordBatches()) controller.enqueue(batch);
      from = to;
    },
  });
  for await (const piece of await transformParquetStream(batches, props())) yield piece as Uint8Array;
}

function rowsOf(column: unknown[] | NumberColumn, from: number, to: number): unknown[] {
  if (!(column instanceof NumberColumn)) return column.slice(from, to);
  return Array.from({ length: to - from }, (_, i) => column.get(from + i));
}

/**
 * Rows [from, to) of a NumberColumn as an Arrow vector, its buffers shared, not rebuilt. `from` is a
 * multiple of 8 (row groups are), so the validity bitmap's slice starts on a byte.
 */
function numberColumnVector(
  column: NumberColumn,
  from: number,
  to: number,
  type: "float64" | "int64",
): Vector {
  const n = to - from;
  const nullCount = column.nullsIn(from, to);
  const nullBitmap = nullCount > 0 ? column.validity.subarray(from >> 3, (to + 7) >> 3) : undefined;
  const values = column.values.subarray(from, to);
  if (type === "float64")
    return makeVector(makeData({ type: new Float64(), length: n, nullCount, nullBitmap, data: values }));
  const words = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) setInt64(words, i, values[i]!);
  const data = new BigInt64Array(words.buffer);
  return makeVector(makeData({ type: new Int64(), length: n, nullCount, nullBitmap, data }));
}

function toVector(values: unknown[], type: ColumnType): Vector {
  switch (type) {
    case "float64":
    case "int64":
      return numericVector(values, type);
    case "boolean":
      return vectorFromArray(
        values.map((v) => (v === null || v === undefined ? null : Boolean(v))),
        new Bool(),
      );
    case "timestamp":
      return vectorFromArray(
        values.map((v) =>
          v === null || v === undefined ? null : new Date(v as number | string | Date).getTime(),
        ),
        new TimestampMillisecond(),
      );
    case "string":
      return vectorFromArray(values.map(toText), new Utf8());
  }
}

/**
 * float64/int64 columns written straight into Arrow buffers (values + validity bitmap): Arrow's
 * generic builders cost more than the whole Parquet encode. int64 is written as two 32-bit words,
 * exact for integers below 2^53, with no BigInt per value.
 */
function numericVector(values: unknown[], type: "float64" | "int64"): Vector {
  const n = values.length;
  const validity = new Uint8Array((n + 7) >> 3);
  const floats = type === "float64" ? new Float64Array(n) : undefined;
  const words = type === "int64" ? new Int32Array(2 * n) : undefined;
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      nullCount++;
      continue;
    }
    validity[i >> 3]! |= 1 << (i & 7);
    const x = Number(v);
    if (floats) floats[i] = x;
    else setInt64(words!, i, x);
  }
  const nullBitmap = nullCount > 0 ? validity : undefined;
  if (floats)
    return makeVector(makeData({ type: new Float64(), length: n, nullCount, nullBitmap, data: floats }));
  const data = new BigInt64Array(words!.buffer);
  return makeVector(makeData({ type: new Int64(), length: n, nullCount, nullBitmap, data }));
}

/** Integer x as the i-th int64 of `words` (little-endian 32-bit halves), exact below 2^53. */
function setInt64(words: Int32Array, i: number, x: number): void {
  const whole = Math.trunc(x);
  const high = Math.floor(whole / 4294967296);
  words[2 * i] = whole - high * 4294967296;
  words[2 * i + 1] = high;
}

function toText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value;
  if (value instanceof Date) return value.toISOString();
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}
