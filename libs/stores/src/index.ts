// ── Offline: tabular files (CSV, JSONL, Parquet) ─────────────────────────────────────────────

export {
  ARCHIVE_COLUMNS,
  type ArchiveFile,
  type ArchiveRange,
  archiveFileName,
  archivePartitionOf,
  eventFiles,
  HOUR_MS,
  isArchiveDir,
  listArchive,
  readTopicInfo,
  spineEventRange,
  TOPIC_INFO,
  type TopicInfo,
} from "./offline/archive.js";
export {
  type PartitionShard,
  runSnapshot,
  type SnapshotOptions,
  type SnapshotProgress,
  type SnapshotSelection,
  type SnapshotSummary,
  SPINE_TIME,
} from "./offline/snapshot.js";
export {
  baseName,
  createObject,
  type DirectoryEntry,
  deleteObject,
  isS3,
  joinLocation,
  listDirectory,
  listFilesBelow,
  locationKind,
  readObject,
  StorageError,
  writeObject,
} from "./offline/storage.js";
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
  writeColumns,
  writeRows,
} from "./offline/tables.js";
// ── end offline ──────────────────────────────────────────────────────────────────────────────
// ── Online: tile and offset stores (Redis, Cassandra, memory) ────────────────────────────────
export { CassandraOnlineStore, type CassandraOnlineStoreConfig } from "./online/cassandra.js";
export {
  type OnlineBackend,
  OnlineStoreError,
  StoreFencedError,
  StoreRequestError,
  StoreUnavailableError,
} from "./online/errors.js";
export { createOnlineStore, type OnlineStoreConfig } from "./online/index.js";
export { MemoryOnlineStore, type MemoryOnlineStoreConfig } from "./online/memory.js";
export { RedisOnlineStore, type RedisOnlineStoreConfig } from "./online/redis.js";
export type {
  Claim,
  OnlineStore,
  OnlineView,
  PartitionOwner,
  StateWrite,
  WriteBatch,
} from "./online/types.js";
// ── end online ───────────────────────────────────────────────────────────────────────────────
