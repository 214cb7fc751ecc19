// ── Offline: tabular files (CSV, JSONL, Parquet) ─────────────────────────────────────────────
export {
  type ColumnBatch,
  type ColumnType,
  listTableFiles,
  type ReadOptions,
  readBatches,
  readRows,
  type TableFormat,
  TableReadError,
  tableFormat,
  type WriteOptions,
  writeRows,
} from "./offline/tables.js";
// ── end offline ──────────────────────────────────────────────────────────────────────────────
