/**
 * Writing one roll of one partition: the rows of an offset range, split by event-time hour into
 * Parquet files, on a filesystem or in a bucket (the storage module of @tessera/stores), exactly once.
 *
 * There is no rename on S3, and a stalled archiver may wake up after another took its partition, so
 * the rule does not rest on renames or on who believes it owns the partition. Each roll is *claimed*
 * first, by a create-only write (If-None-Match: * on S3, link(2) on a filesystem) of
 *   <root>/<topic>/_rolls/part-<p>/<firstOffset>.json   {firstOffset, lastOffset, files}
 * so a roll starting at a given offset has exactly one range, whoever writes it. Then:
 *   1. claim [first, last] (or, if the claim is taken, take its range instead);
 *   2. if a claim starting later exists, this writer is stale: drop the claim, write nothing;
 *   3. write each file at its final key (PUT is atomic; locally temp + rename);
 *   4. commit offset last+1 to Kafka;
 *   5. delete the claims before this one (the latest is kept: it fences stale writers).
 * The file names and contents follow from the claimed range and the records, so writing a claimed
 * roll again rewrites the same keys with the same bytes. A new owner of the partition, finding the
 * latest claim not yet committed in Kafka, consumes from its first offset and rewrites exactly that
 * range ("adopts" it): a crash at any step, a replay or a zombie writer leaves no gap and no
 * duplicate, and a file a reader has seen is never taken back.
 */
import { basename, dirname } from "node:path";
import {
  ARCHIVE_COLUMNS,
  archiveFileName,
  createObject,
  deleteObject,
  HOUR_MS,
  joinLocation,
  listDirectory,
  readObject,
  StorageError,
  TOPIC_INFO,
  type TopicInfo,
  writeObject,
} from "@tessera/stores";
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

/** A claimed roll: its offset range and its files (relative to the topic directory). */
export interface Claim {
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
export const topicDir = (root: string, topic: string) => joinLocation(root, topic);

const claimsDir = (root: string, topic: string, partition: number) =>
  joinLocation(topicDir(root, topic), "_rolls", `part-${String(partition).padStart(5, "0")}`);
const claimName = (firstOffset: number) => `${String(firstOffset).padStart(19, "0")}.json`;
const CLAIM_FILE = /^(\d{19})\.json$/;

/** The files a roll writes (relative to the topic directory), each with its rows: one per event hour. */
export function planRoll(roll: Pick<Roll, "partition" | "rows">): { file: string; rows: ArchivedRow[] }[] {
  const byHour = new Map<number, ArchivedRow[]>();
  for (const row of roll.rows) {
    const hour = Math.floor(row.eventTime / HOUR_MS) * HOUR_MS;
    const rows = byHour.get(hour);
    if (rows) rows.push(row);
    else byHour.set(hour, [row]);
  }
  return [...byHour].map(([hour, rows]) => ({
    rows,
    file: archiveFileName(hour, roll.partition, rows[0]!.offset, rows.at(-1)!.offset),
  }));
}

/** Writes a roll's files (step 3 above) at their final names; returns them as full locations. */
export async function writeRoll(root: string, roll: Roll): Promise<{ files: string[]; bytes: number }> {
  const dir = topicDir(root, roll.topic);
  const files: string[] = [];
  let bytes = 0;
  for (const { file, rows } of planRoll(roll)) {
    const data = encodeRows(roll, rows);
    bytes += data.byteLength;
    await writeObject(joinLocation(dir, file), data);
    files.push(joinLocation(dir, file));
  }
  return { files, bytes };
}

export type ClaimOutcome =
  | { kind: "claimed" }
  /** Another writer claimed a roll starting at this offset first: its range is the one to write. */
  | { kind: "taken"; claim: Claim }
  /** A roll starting later is claimed: this writer lost the partition and must write nothing. */
  | { kind: "stale"; newer: number };

/** Steps 1–2: claim a roll's range. */
export async function claimRoll(root: string, topic: string, claim: Claim): Promise<ClaimOutcome> {
  const dir = claimsDir(root, topic, claim.partition);
  const location = joinLocation(dir, claimName(claim.firstOffset));
  if (!(await createObject(location, JSON.stringify(claim)))) {
    return { kind: "taken", claim: await readClaim(location) };
  }
  const newer = (await claimOffsets(root, topic, claim.partition)).filter(
    (first) => first > claim.firstOffset,
  );
  if (newer.length > 0) {
    await deleteObject(location);
    return { kind: "stale", newer: Math.max(...newer) };
  }
  return { kind: "claimed" };
}

/** The latest claimed roll of a partition (committed or not), or undefined before the first. */
export async function latestClaim(
  root: string,
  topic: string,
  partition: number,
): Promise<Claim | undefined> {
  const offsets = await claimOffsets(root, topic, partition);
  if (offsets.length === 0) return undefined;
  return readClaim(joinLocation(claimsDir(root, topic, partition), claimName(Math.max(...offsets))));
}

/** Step 5: claims of rolls before `firstOffset` are committed and no longer fence anything. */
export async function pruneClaims(
  root: string,
  topic: string,
  partition: number,
  firstOffset: number,
): Promise<void> {
  const dir = claimsDir(root, topic, partition);
  for (const first of await claimOffsets(root, topic, partition)) {
    if (first < firstOffset) await deleteObject(joinLocation(dir, claimName(first)));
  }
}

async function claimOffsets(root: string, topic: string, partition: number): Promise<number[]> {
  const entries = await listDirectory(claimsDir(root, topic, partition));
  return entries.flatMap((e) => {
    const match = CLAIM_FILE.exec(e.name);
    return match && !e.directory ? [Number(match[1])] : [];
  });
}

async function readClaim(location: string): Promise<Claim> {
  try {
    return JSON.parse(Buffer.from(await readObject(location)).toString("utf8")) as Claim;
  } catch (error) {
    // A claim is written atomically, so an unreadable one is damage: stop and keep it for a human.
    throw new Error(`roll claim ${location} is unreadable: ${(error as Error).message}`);
  }
}

/** Records the topic's partition count beside its data (partition-aligned shards read it). */
export async function writeTopicInfo(root: string, info: TopicInfo): Promise<boolean> {
  const location = joinLocation(topicDir(root, info.topic), TOPIC_INFO);
  const current = await readObject(location).then(
    (bytes) => Buffer.from(bytes).toString("utf8"),
    (error) => {
      if (error instanceof StorageError && error.missing) return undefined;
      throw error;
    },
  );
  const text = JSON.stringify(info);
  if (current === text) return false;
  await writeObject(location, text);
  return true;
}

/**
 * Removes what the predecessor of an adopted claim left: its files this writer's roll did not
 * rewrite (e.g. another hour field), and the temporary files it was writing when it died (a
 * SIGKILL between write and rename leaves `.<file>.<pid>-<random>.tmp`; readers skip them, but
 * they would pile up). The claim fences that predecessor, so nothing of it is still needed.
 */
export async function removeOtherFiles(
  root: string,
  topic: string,
  claim: Claim,
  kept: string[],
): Promise<string[]> {
  const dir = topicDir(root, topic);
  const removed = claim.files
    .filter((f) => !kept.includes(joinLocation(dir, f)))
    .map((f) => joinLocation(dir, f));
  const folders = new Set(claim.files.map((f) => dirname(joinLocation(dir, f))));
  for (const folder of folders) {
    for (const entry of await listDirectory(folder)) {
      const ofClaim = claim.files.some((f) => entry.name.startsWith(`.${basename(f)}.`));
      if (!entry.directory && ofClaim && entry.name.endsWith(".tmp"))
        removed.push(joinLocation(folder, entry.name));
    }
  }
  for (const file of removed) await deleteObject(file);
  return removed;
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
