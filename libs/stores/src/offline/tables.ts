import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import { csvLine, readCsv } from "./csv.js";
import { TableReadError } from "./errors.js";
import { NumberColumn, valueAt, type WritableColumn } from "./number-column.js";
import { encodeParquet, readParquetBatches } from "./parquet.js";
import {
  isS3,
  listFilesBelow,
  locationKind,
  openTextStream,
  readObject,
  reasonOf,
  StorageError,
  writeThroughTemp,
} from "./storage.js";
import type { ColumnBatch, ColumnType } from "./types.js";

export { TableReadError } from "./errors.js";
export type { ColumnBatch, ColumnType } from "./types.js";

export type TableFormat = "csv" | "jsonl" | "parquet";

const FORMATS: Record<string, TableFormat> = {
  ".csv": "csv",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
  ".parquet": "parquet",
};

/** The format a path's extension names, or undefined. */
export function tableFormat(path: string): TableFormat | undefined {
  return FORMATS[extname(path).toLowerCase()];
}

export interface ReadOptions {
  /** Only these columns; a column missing from a CSV header or Parquet schema is an error. */
  columns?: string[];
  /** Called as each file is opened: the reader's own count of what it read. */
  onOpen?: (file: string) => void;
}

/**
 * The table files under `path` (a local path or an s3:// URL): the file itself, or for a directory
 * every .csv/.jsonl/.ndjson/.parquet inside it, recursively, in sorted path order. Names starting
 * with "." or "_" are skipped (temp files, `_SUCCESS` markers), as Spark and DuckDB do.
 */
export async function listTableFiles(path: string): Promise<string[]> {
  const kind = await locationKind(path).catch((error) => {
    throw new TableReadError((error as Error).message, { file: path });
  });
  if (kind === undefined) throw new TableReadError("no such file or directory", { file: path });
  if (kind === "file") {
    if (!tableFormat(path))
      throw new TableReadError("unknown table format (use .csv, .jsonl or .parquet)", { file: path });
    return [path];
  }
  const base = isS3(path) ? path.replace(/\/+$/, "") : path;
  return (await listFilesBelow(base))
    .filter((file) => tableFormat(file))
    .filter(
      (file) =>
        !file
          .slice(base.length)
          .split(/[\\/]/)
          .some((part) => /^[._]/.test(part)),
    )
    .sort();
}

/** Rows of a CSV, JSONL or Parquet file, or of every such file in a directory (see listTableFiles). */
export async function* readRows(
  path: string,
  options: ReadOptions = {},
): AsyncGenerator<Record<string, unknown>> {
  for (const file of await listTableFiles(path)) {
    options.onOpen?.(file);
    const format = tableFormat(file)!;
    if (format === "csv") yield* readCsv(file, options.columns);
    else if (format === "jsonl") yield* readJsonl(file, options.columns);
    else {
      for await (const batch of readParquetBatches(file, options.columns)) yield* batchRows(batch);
    }
  }
}

/**
 * The same data as readRows, as column batches: Parquet row groups are passed on without building a
 * row object per record (the fast path for large snapshots); CSV/JSONL rows are gathered into batches.
 * `path`: a table (a file or a directory of files), or a list of them read in turn. The next Parquet
 * file's bytes are read while the current one is decoded and used: reading 490 small archive files
 * one after the other left a snapshot idle for a tenth of its time.
 */
export async function* readBatches(
  path: string | string[],
  options: ReadOptions & { batchSize?: number } = {},
): AsyncGenerator<ColumnBatch> {
  const batchSize = options.batchSize ?? 65_536;
  // A listed entry without a table extension is a directory (or a bucket prefix): its files, in turn.
  const entries = typeof path === "string" ? [path] : path;
  const files: string[] = [];
  for (const entry of entries) {
    if (typeof path !== "string" && tableFormat(entry)) files.push(entry);
    else files.push(...(await listTableFiles(entry)));
  }
  const prefetch = (i: number) => {
    if (i >= files.length || tableFormat(files[i]!) !== "parquet") return undefined;
    const bytes = readObject(files[i]!);
    bytes.catch(() => {}); // observed when its file's turn comes
    return bytes;
  };
  let next = prefetch(0);
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    const bytes = next;
    next = prefetch(i + 1);
    options.onOpen?.(file);
    if (bytes) {
      yield* readParquetBatches(file, options.columns, bytes);
      continue;
    }
    const rows =
      tableFormat(file) === "csv" ? readCsv(file, options.columns) : readJsonl(file, options.columns);
    let pending: Record<string, unknown>[] = [];
    let firstRow = 0;
    for await (const row of rows) {
      pending.push(row);
      if (pending.length === batchSize) {
        yield rowsToBatch(file, firstRow, pending, options.columns);
        firstRow += pending.length;
        pending = [];
      }
    }
    if (pending.length > 0) yield rowsToBatch(file, firstRow, pending, options.columns);
  }
}

function rowsToBatch(
  file: string,
  firstRow: number,
  rows: Record<string, unknown>[],
  wanted?: string[],
): ColumnBatch {
  // A wanted column no row has is left out, so callers can tell "absent" from "all null" (JSONL has no header).
  const present = new Set(rows.flatMap((row) => Object.keys(row)));
  const names = wanted ? wanted.filter((name) => present.has(name)) : [...present];
  const columns: Record<string, unknown[]> = {};
  for (const name of names) columns[name] = rows.map((row) => row[name] ?? null);
  return { file, firstRow, length: rows.length, columns };
}

function* batchRows(batch: ColumnBatch): Generator<Record<string, unknown>> {
  const names = Object.keys(batch.columns);
  const columns = names.map((name) => batch.columns[name]!);
  for (let i = 0; i < batch.length; i++) {
    const row: Record<string, unknown> = {};
    for (let c = 0; c < names.length; c++) row[names[c]!] = columns[c]![i];
    yield row;
  }
}

async function* readJsonl(file: string, columns?: string[]): AsyncGenerator<Record<string, unknown>> {
  const input = await openTextStream(file).catch((error) => {
    throw new TableReadError(reasonOf(error, file), { file });
  });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let row = 0;
  for await (const line of lines) {
    if (line.trim() === "") continue;
    row++;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new TableReadError(`invalid JSON (${(error as Error).message})`, { file, row });
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TableReadError("a JSONL row must be an object", { file, row });
    }
    const record = value as Record<string, unknown>;
    if (!columns) {
      yield record;
      continue;
    }
    const out: Record<string, unknown> = {};
    for (const name of columns) if (name in record) out[name] = record[name];
    yield out;
  }
}

export interface WriteOptions {
  /** Column types (Parquet); columns not named here are inferred from their values. Also fixes column order. */
  schema?: Record<string, ColumnType>;
  /** Key-value metadata stored in a Parquet footer (ignored by CSV and JSONL). */
  metadata?: Record<string, string>;
}

/**
 * Writes rows to `path` (a local path or an s3:// URL), format by extension. The file appears
 * atomically (written to a temp name, then renamed beside it or uploaded), so readers never see half a file. Columns: those of `schema` first, then
 * every other key in first-seen order; a missing key is null. (CSV takes its columns from the schema
 * and the first row.)
 */
export async function writeRows(
  path: string,
  rows: Iterable<Record<string, unknown>> | AsyncIterable<Record<string, unknown>>,
  options: WriteOptions = {},
): Promise<void> {
  const format = formatOf(path);
  await writeAtomically(path, async (temp) => {
    if (format !== "parquet") return writeText(temp, format, rows, Object.keys(options.schema ?? {}));
    const columns = new Map<string, unknown[]>(Object.keys(options.schema ?? {}).map((name) => [name, []]));
    let count = 0;
    for await (const row of rows) {
      for (const key of Object.keys(row)) {
        if (!columns.has(key)) columns.set(key, new Array(count).fill(null));
      }
      for (const [name, values] of columns) values.push(row[name] ?? null);
      count++;
    }
    await writeParquetFile(temp, columns, options);
  });
}

/** writeRows for data already in columns of equal length: Parquet is encoded without row objects. */
export async function writeColumns(
  path: string,
  columns: Record<string, WritableColumn>,
  options: WriteOptions = {},
): Promise<void> {
  const names = [...new Set([...Object.keys(columns), ...Object.keys(options.schema ?? {})])];
  const length = Math.max(0, ...names.map((name) => columns[name]?.length ?? 0));
  const format = formatOf(path);
  await writeAtomically(path, async (temp) => {
    if (format === "parquet") {
      const data = new Map(
        names.map((name) => {
          const values = columns[name];
          if (Array.isArray(values) || values instanceof NumberColumn) return [name, values];
          return [name, Array.from(values ?? new Array(length).fill(null))];
        }),
      );
      return writeParquetFile(temp, data, options);
    }
    function* rows() {
      for (let i = 0; i < length; i++) {
        const row: Record<string, unknown> = {};
        for (const name of names) row[name] = valueAt(columns[name], i) ?? null;
        yield row;
      }
    }
    await writeText(temp, format, rows(), names);
  });
}

function formatOf(path: string): TableFormat {
  const format = tableFormat(path);
  if (!format) throw new Error(`${path}: unknown table format (use .csv, .jsonl or .parquet)`);
  return format;
}

async function writeAtomically(path: string, write: (temp: string) => Promise<void>): Promise<void> {
  try {
    await writeThroughTemp(path, write);
  } catch (error) {
    if (error instanceof StorageError) throw new Error(error.message);
    throw error;
  }
}

/** Writes columns to `file` as Parquet, piece by piece as they are encoded. */
async function writeParquetFile(
  file: string,
  columns: Map<string, unknown[] | NumberColumn>,
  options: WriteOptions,
) {
  const types = new Map<string, ColumnType>();
  for (const [name, values] of columns) {
    const inferred = () => (values instanceof NumberColumn ? "float64" : inferType(values));
    types.set(name, options.schema?.[name] ?? inferred());
  }
  const out = await open(file, "w");
  try {
    for await (const piece of encodeParquet(columns, types, options.metadata ?? {})) await out.write(piece);
  } finally {
    await out.close();
  }
}

/** Integers → int64, other numbers → float64, Date → timestamp; mixed or all-null → string. */
function inferType(values: unknown[]): ColumnType {
  let type: ColumnType | undefined;
  for (const value of values) {
    if (value === null || value === undefined) continue;
    let own: ColumnType;
    if (typeof value === "number") own = Number.isSafeInteger(value) ? "int64" : "float64";
    else if (typeof value === "bigint") own = "int64";
    else if (typeof value === "boolean") own = "boolean";
    else if (value instanceof Date) own = "timestamp";
    else own = "string";
    if (type === undefined || type === own) type = own;
    else if ((type === "int64" && own === "float64") || (type === "float64" && own === "int64"))
      type = "float64";
    else return "string";
  }
  return type ?? "string";
}

async function writeText(
  file: string,
  format: "csv" | "jsonl",
  rows: Iterable<Record<string, unknown>> | AsyncIterable<Record<string, unknown>>,
  leading: string[],
): Promise<void> {
  const out = createWriteStream(file, { encoding: "utf8" });
  const failed = once(out, "error").then(([error]) => Promise.reject(error));
  failed.catch(() => {});
  let header: string[] | undefined;
  const write = async (text: string) => {
    if (!out.write(text)) await Promise.race([once(out, "drain"), failed]);
  };
  for await (const row of rows) {
    if (format === "jsonl") {
      await write(JSON.stringify(row, jsonValue) + "\n");
      continue;
    }
    if (!header) {
      // CSV needs its columns up front: the leading ones, then the first row's.
      header = [...new Set([...leading, ...Object.keys(row)])];
      await write(csvLine(header));
    }
    await write(csvLine(header.map((name) => row[name])));
  }
  if (format === "csv" && !header) await write(csvLine(leading));
  out.end();
  await Promise.race([once(out, "finish"), failed]);
}

/** JSON cannot hold bigint; write it as a number (ids beyond 2^53 should be strings upstream). */
function jsonValue(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? Number(value) : value;
}
