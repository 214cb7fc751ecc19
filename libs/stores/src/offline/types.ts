/** Column types a writer can be told (or will infer): int64 holds epoch-ms timestamps and counts. */
export type ColumnType = "float64" | "int64" | "string" | "boolean" | "timestamp";

/**
 * A slice of a table as columns. Values are plain JS: numbers (int64 is converted to number), strings,
 * booleans, null. Numeric columns without nulls may be typed arrays.
 */
export interface ColumnBatch {
  file: string;
  /** 0-based index of this batch's first row within `file`. */
  firstRow: number;
  length: number;
  columns: Record<string, ArrayLike<unknown>>;
}
