/**
 * The Parquet archive's layout, shared by its writer (services/archiver) and its readers (snapshot,
 * backfill, consistency). One directory per topic, Hive-partitioned by event date and hour (UTC):
 *
 *   <root>/<topic>/date=YYYY-MM-DD/hour=HH/part-<partition>-<firstOffset>-<lastOffset>.parquet
 *
 * Partition and offsets are zero-padded (5 and 19 digits) so that sorted path order is log order
 * within an hour, and any Hive-aware engine (DuckDB, Spark, Trino, polars) reads the tree as is.
 * Names starting with "." or "_" (temp files, the roll claims under `_rolls/`, `_topic.json`) are not data.
 * `<root>` is a local directory or an `s3://bucket/prefix` URL (see storage.ts).
 */
import { TableReadError } from "./errors.js";
import { joinLocation, listDirectory, locationKind, readObject, StorageError } from "./storage.js";

/** Metadata columns the archiver adds to every row, after the event's own fields. */
export const ARCHIVE_COLUMNS = {
  partition: "_kafka_partition",
  offset: "_kafka_offset",
  /** The Kafka record timestamp: the broker's append time on topics with LogAppendTime. */
  appendTime: "_kafka_timestamp",
} as const;

export const HOUR_MS = 3_600_000;

export interface ArchiveFile {
  path: string;
  /** Start of the event-time hour the file holds (epoch ms, UTC). */
  hour: number;
  partition: number;
  firstOffset: number;
  lastOffset: number;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** Path of a data file relative to the topic directory ("/"-separated, as in a bucket). */
export function archiveFileName(
  hour: number,
  partition: number,
  firstOffset: number,
  lastOffset: number,
): string {
  const iso = new Date(hour).toISOString();
  return [
    `date=${iso.slice(0, 10)}`,
    `hour=${iso.slice(11, 13)}`,
    `part-${pad(partition, 5)}-${pad(firstOffset, 19)}-${pad(lastOffset, 19)}.parquet`,
  ].join("/");
}

const DATE_DIR = /^date=(\d{4}-\d{2}-\d{2})$/;
const HOUR_DIR = /^hour=(\d{2})$/;
const PART_FILE = /^part-(\d+)-(\d+)-(\d+)\.parquet$/;

/** Whether `dir` is laid out as an archive topic directory (`date=YYYY-MM-DD/hour=HH/` folders). */
export async function isArchiveDir(dir: string): Promise<boolean> {
  if ((await locationKind(dir)) !== "directory") return false;
  for (const date of await listDirectory(dir)) {
    if (!date.directory || !DATE_DIR.test(date.name)) continue;
    const hours = await listDirectory(joinLocation(dir, date.name));
    if (hours.some((h) => h.directory && HOUR_DIR.test(h.name))) return true;
  }
  return false;
}

export interface ArchiveRange {
  /** Only hours that can hold events with ts ≥ from (inclusive). */
  from?: number;
  /** Only hours that can hold events with ts < to (exclusive). */
  to?: number;
  /** Only files of the partitions this accepts (a shard's share of the topic). */
  partitions?: (partition: number) => boolean;
}

/**
 * The data files of an archive topic directory, in log order within each hour (hours ascending,
 * then partition, then offset). With a range, whole date and hour directories outside it are never
 * opened, nor files of other partitions: the pruning snapshots, shards and backfills rely on.
 */
export async function listArchive(dir: string, range: ArchiveRange = {}): Promise<ArchiveFile[]> {
  const kind = await locationKind(dir).catch((error) => {
    throw new TableReadError((error as Error).message, { file: dir });
  });
  if (kind !== "directory") throw new TableReadError("no such archive directory", { file: dir });
  const from = range.from ?? Number.NEGATIVE_INFINITY;
  const to = range.to ?? Number.POSITIVE_INFINITY;
  const keep = range.partitions ?? (() => true);
  const out: ArchiveFile[] = [];
  for (const date of await listDirectory(dir)) {
    const day = DATE_DIR.exec(date.name);
    if (!day || !date.directory) continue;
    const dayStart = Date.parse(`${day[1]}T00:00:00Z`);
    if (!overlaps(dayStart, 24 * HOUR_MS, from, to)) continue;
    for (const hourDir of await listDirectory(joinLocation(dir, date.name))) {
      const h = HOUR_DIR.exec(hourDir.name);
      if (!h || !hourDir.directory) continue;
      const hour = dayStart + Number(h[1]) * HOUR_MS;
      if (!overlaps(hour, HOUR_MS, from, to)) continue;
      for (const file of await listDirectory(joinLocation(dir, date.name, hourDir.name))) {
        const part = PART_FILE.exec(file.name);
        if (!part || file.directory || !keep(Number(part[1]))) continue;
        out.push({
          path: joinLocation(dir, date.name, hourDir.name, file.name),
          hour,
          partition: Number(part[1]),
          firstOffset: Number(part[2]),
          lastOffset: Number(part[3]),
        });
      }
    }
  }
  return out.sort((a, b) => a.hour - b.hour || a.partition - b.partition || a.firstOffset - b.firstOffset);
}

/** The partition of an archive data file, from its name; undefined for any other file. */
export function archivePartitionOf(file: string): number | undefined {
  const part = PART_FILE.exec(file.split(/[\\/]/).at(-1)!);
  return part ? Number(part[1]) : undefined;
}

/** What the archiver records about a topic beside its data (`<root>/<topic>/_topic.json`). */
export interface TopicInfo {
  topic: string;
  /** The topic's partition count when the archiver last joined (partition-aligned shards need it). */
  partitions: number;
}

export const TOPIC_INFO = "_topic.json";

/** The archive's topic info, or undefined when the archive has none (not written by the archiver). */
export async function readTopicInfo(dir: string): Promise<TopicInfo | undefined> {
  try {
    return JSON.parse(Buffer.from(await readObject(joinLocation(dir, TOPIC_INFO))).toString("utf8"));
  } catch (error) {
    if (error instanceof StorageError && error.missing) return undefined;
    throw new TableReadError(`unreadable ${TOPIC_INFO}: ${(error as Error).message}`, { file: dir });
  }
}

function overlaps(start: number, length: number, from: number, to: number): boolean {
  return start + length > from && start < to;
}

/**
 * The event-time range a point-in-time computation over spine times [minT, maxT] can read: a
 * feature at t aggregates events in [floor((t − W)/H)·H, t), so the earliest is floor((minT − W)/H)·H
 * for the longest W + H, and nothing at or after maxT counts.
 */
export function spineEventRange(
  minT: number,
  maxT: number,
  features: readonly { windowMs: number; hopMs: number }[],
): { from: number; to: number } {
  let from = minT;
  for (const f of features) from = Math.min(from, Math.floor((minT - f.windowMs) / f.hopMs) * f.hopMs);
  return { from, to: maxT };
}

/**
 * The files to read events from for a point-in-time computation over spine times [minT, maxT]:
 * for an archive topic directory, only the hours those times can read (see spineEventRange), and
 * only the partitions `partitions` accepts; anything else (a file, a plain directory) as is.
 */
export async function eventFiles(
  path: string,
  minT: number,
  maxT: number,
  features: readonly { windowMs: number; hopMs: number }[],
  partitions?: (partition: number) => boolean,
): Promise<string[]> {
  if (!(await isArchiveDir(path))) return [path];
  // An event at exactly maxT cannot count, but keep the bound inclusive of maxT's hour: cheap and safe.
  const range = spineEventRange(minT, maxT + 1, features);
  return (await listArchive(path, { ...range, ...(partitions ? { partitions } : {}) })).map((f) => f.path);
}
