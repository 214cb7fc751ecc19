/**
 * The archiver: source topics → Parquet files on a filesystem or in a bucket, exactly once (see
 * files.ts for the roll claims that make it so).
 *
 * Each partition's records are buffered in offset order until the partition rolls (by record count,
 * payload bytes, age, or a change of writer schema); a roll is claimed, writes one file per
 * event-time hour, then commits the partition's offset. Offsets are never committed for records not
 * yet in a file. A roll claimed but not committed (a crash, a lost partition) is written again by the
 * partition's next owner with the same range, so the same files.
 * Records that cannot be archived (not Confluent-framed, unknown schema id, undecodable, no usable
 * event time) go to the dead-letter topic with a reason before the offset covering them is committed.
 */
import {
  AvroDecoder,
  type Bus,
  type BusBatch,
  type BusConsumer,
  type BusProducer,
  type BusRecord,
  ConsumerLoop,
  createKafka,
  type DeadLetter,
  DeadLetterPublisher,
  deadLetterOf,
  SchemaRegistry,
  type WriterSchema,
} from "@tessera/kafka";
import { createLogger, type Logger, type OpsServer, startOpsServer } from "@tessera/runtime";
import { parseTimestamp } from "@tessera/transforms";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { AvroMappingError, arrowFieldsOf, type MappedField } from "./avro-arrow.js";
import type { ArchiverConfig } from "./config.js";
import {
  type ArchivedRow,
  type Claim,
  claimRoll,
  latestClaim,
  planRoll,
  pruneClaims,
  removeOtherFiles,
  writeRoll,
  writeTopicInfo,
} from "./files.js";

export interface ArchiverDeps {
  kafka?: Bus;
  registry?: SchemaRegistry;
  metricsRegistry?: Registry;
  logger?: Logger;
  /** Start the ops HTTP server (default true; tests embedding several services may skip it). */
  ops?: boolean;
}

export interface ArchiverHandle {
  /** Settles when the archiver stops: resolves after stop(), rejects on a fatal error. */
  done: Promise<void>;
  opsUrl?: string;
  /** Rolls every buffered partition, commits, and leaves the group. */
  stop(): Promise<void>;
}

interface Schema {
  id: number;
  text: string;
  fields: MappedField[];
}

/** One partition's open roll. */
interface Pending {
  topic: string;
  partition: number;
  /** First offset not yet committed (the roll's first offset), or undefined when nothing is buffered. */
  first: number | undefined;
  /** Last offset seen: records at or below it are skipped when a batch is handed over again. */
  last: number;
  rows: ArchivedRow[];
  bytes: number;
  openedAt: number;
  schema: Schema | undefined;
  /** A claimed, uncommitted roll this owner writes again: it rolls exactly at its last offset. */
  adopting: Claim | undefined;
}

/** This archiver lost a partition: a later roll of it is claimed. It writes nothing more. */
export class FencedError extends Error {
  override name = "FencedError";
}

class Metrics {
  readonly records: Counter<"topic">;
  readonly files: Counter<"topic">;
  readonly bytes: Counter<"topic">;
  readonly rollSeconds: Histogram<"topic">;
  readonly buffered: Gauge<"topic">;
  readonly adopted: Counter<"topic">;

  constructor(registers: Registry[]) {
    this.records = new Counter({
      name: "tessera_archiver_records_total",
      help: "Records written to committed Parquet files, by topic.",
      labelNames: ["topic"],
      registers,
    });
    this.files = new Counter({
      name: "tessera_archiver_files_total",
      help: "Parquet files written, by topic.",
      labelNames: ["topic"],
      registers,
    });
    this.bytes = new Counter({
      name: "tessera_archiver_bytes_total",
      help: "Parquet bytes written, by topic.",
      labelNames: ["topic"],
      registers,
    });
    this.rollSeconds = new Histogram({
      name: "tessera_archiver_roll_seconds",
      help: "Time to write, rename and commit one roll.",
      labelNames: ["topic"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.buffered = new Gauge({
      name: "tessera_archiver_buffered_records",
      help: "Records consumed but not yet in a committed file, by topic.",
      labelNames: ["topic"],
      registers,
    });
    this.adopted = new Counter({
      name: "tessera_archiver_adopted_rolls_total",
      help: "Claimed but uncommitted rolls found on partition assignment, written again from the replay.",
      labelNames: ["topic"],
      registers,
    });
  }
}

export async function startArchiver(
  config: ArchiverConfig,
  deps: ArchiverDeps = {},
): Promise<ArchiverHandle> {
  const logger = deps.logger ?? createLogger("archiver");
  const kafka = deps.kafka ?? createKafka({ clientId: "tessera-archiver" });
  const registry = deps.registry ?? new SchemaRegistry();
  const metricsRegistry = deps.metricsRegistry ?? new Registry();
  const metrics = new Metrics([metricsRegistry]);
  const producer: BusProducer = kafka.producer({ allowAutoTopicCreation: false });
  const admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
  const deadLetters = new DeadLetterPublisher({
    producer,
    registry,
    service: "archiver",
    topic: config.deadLetterTopic,
    metricsRegistry,
  });
  const decoder = new AvroDecoder(registry);
  /** Per writer schema id: its Arrow columns, or why it cannot be archived. */
  const schemas = new Map<number, Schema | AvroMappingError>();
  const pending = new Map<string, Pending>();
  let assigned = 0;
  let joined = false;

  // Batches and the age timer both roll partitions: one at a time.
  let lock: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const next = lock.then(work);
    lock = next.catch(() => {});
    return next;
  };

  const schemaOf = (writer: WriterSchema): Schema | AvroMappingError => {
    let schema = schemas.get(writer.id);
    if (!schema) {
      try {
        schema = { id: writer.id, text: writer.text, fields: arrowFieldsOf(JSON.parse(writer.text)) };
      } catch (error) {
        if (!(error instanceof AvroMappingError)) throw error;
        schema = error;
      }
      schemas.set(writer.id, schema);
    }
    return schema;
  };

  async function committedOffset(topic: string, partition: number): Promise<number> {
    const [offsets] = await admin.fetchOffsets({ groupId: config.groupId, topics: [topic] });
    const entry = offsets?.partitions.find((p) => p.partition === partition);
    return entry ? Number(entry.offset) : -1;
  }

  /** `_topic.json` (partition count, for partition-aligned shards): once per topic per assignment. */
  const topicInfoWritten = new Map<string, Promise<void>>();
  const recordTopicInfo = (topic: string) => {
    let written = topicInfoWritten.get(topic);
    if (!written) {
      written = admin.fetchTopicMetadata({ topics: [topic] }).then(async ({ topics }) => {
        const partitions = topics[0]?.partitions.length ?? 0;
        if (partitions > 0 && (await writeTopicInfo(config.root, { topic, partitions })))
          logger.info({ topic, partitions }, "recorded the topic's partition count in the archive");
      });
      written.catch(() => topicInfoWritten.delete(topic));
      topicInfoWritten.set(topic, written);
    }
    return written;
  };

  async function pendingOf(topic: string, partition: number): Promise<Pending> {
    const key = `${topic}\u0000${partition}`;
    let state = pending.get(key);
    if (!state) {
      await recordTopicInfo(topic);
      const committed = await committedOffset(topic, partition);
      const latest = await latestClaim(config.root, topic, partition);
      state = {
        topic,
        partition,
        first: undefined,
        last: -1,
        rows: [],
        bytes: 0,
        openedAt: 0,
        schema: undefined,
        adopting: undefined,
      };
      // Kafka commits a roll's end only after its files: a committed offset at or below the latest
      // claim's end means that roll may be partly written. Its records are consumed again (from the
      // committed offset, skipping what earlier, committed claims hold) and rolled at its end.
      if (latest && committed <= latest.lastOffset) {
        if (committed > latest.firstOffset) {
          throw new Error(
            `partition ${topic}/${partition}: committed offset ${committed} is inside the claimed roll ` +
              `[${latest.firstOffset}, ${latest.lastOffset}]; the archive at ${config.root} was written by another consumer group?`,
          );
        }
        state.last = latest.firstOffset - 1;
        state.adopting = latest;
        metrics.adopted.inc({ topic });
        logger.info(
          { topic, partition, committed, roll: [latest.firstOffset, latest.lastOffset] },
          "adopting an uncommitted roll: its records are written again to the same files",
        );
      }
      pending.set(key, state);
    }
    return state;
  }

  /**
   * Rolls the buffered offsets [first, end], end being the adopted claim's last offset or the last
   * offset seen. `forced`: the roll must end here (the next record has another schema); `past-end`:
   * a record after the adopted roll's end arrived, so all of it is here even if offsets skip.
   */
  async function roll(
    state: Pending,
    consumer: BusConsumer,
    how: "due" | "forced" | "past-end" = "due",
  ): Promise<void> {
    if (state.first === undefined) return;
    if (state.adopting && state.last < state.adopting.lastOffset) {
      if (how === "forced") throw schemaInsideClaim(state, state.adopting);
      if (how === "due") return; // the adopted roll is not all here yet: never write part of it
    }
    const started = performance.now();
    const { topic, partition } = state;
    const first = state.first;
    let last = state.adopting?.lastOffset ?? state.last;
    let adopted = state.adopting?.firstOffset === first ? state.adopting : undefined;
    if (!adopted) {
      const rows = state.rows.filter((r) => r.offset <= last);
      const files = rows.length > 0 ? planFiles(state, rows) : [];
      const outcome = await claimRoll(config.root, topic, {
        partition,
        firstOffset: first,
        lastOffset: last,
        files,
      });
      if (outcome.kind === "stale") {
        throw new FencedError(
          `${topic}/${partition}: a roll from offset ${outcome.newer} is claimed by another archiver, ` +
            `so this one lost the partition; its roll from ${first} is dropped (a restart rejoins)`,
        );
      }
      if (outcome.kind === "taken") {
        // Another writer (a crashed or stalled predecessor) claimed a roll from here: write its range.
        adopted = outcome.claim;
        if (adopted.lastOffset > last) {
          if (how === "forced") throw schemaInsideClaim(state, adopted);
          state.adopting = adopted; // keep consuming up to its end
          return;
        }
        last = adopted.lastOffset;
      }
    }
    const rows = state.rows.filter((r) => r.offset <= last);
    const rest = state.rows.filter((r) => r.offset > last);
    let files: string[] = [];
    if (rows.length > 0) {
      const schema = state.schema!;
      const written = await writeRoll(config.root, {
        topic,
        partition,
        firstOffset: first,
        lastOffset: last,
        schemaId: schema.id,
        schemaText: schema.text,
        fields: schema.fields,
        rows,
      });
      files = written.files;
      metrics.files.inc({ topic }, files.length);
      metrics.bytes.inc({ topic }, written.bytes);
    }
    if (adopted) {
      const removed = await removeOtherFiles(config.root, topic, adopted, files);
      if (removed.length > 0)
        logger.info({ topic, partition, removed }, "removed files of the adopted roll not written again");
    }
    await consumer.commitOffsets([{ topic, partition, offset: String(last + 1) }]);
    await pruneClaims(config.root, topic, partition, first);
    metrics.records.inc({ topic }, rows.length);
    metrics.buffered.dec({ topic }, rows.length);
    metrics.rollSeconds.observe({ topic }, (performance.now() - started) / 1000);
    state.adopting = undefined;
    state.first = state.last > last ? last + 1 : undefined;
    state.bytes = state.rows.length > 0 ? Math.round((state.bytes * rest.length) / state.rows.length) : 0;
    state.rows = rest;
  }

  const schemaInsideClaim = (state: Pending, claim: Claim) =>
    new Error(
      `${state.topic}/${state.partition}: the roll claimed at [${claim.firstOffset}, ${claim.lastOffset}] ` +
        `spans a change of writer schema after offset ${state.last}: archive and topic disagree`,
    );

  /** The files a roll of these rows writes, relative to the topic directory (as its claim lists them). */
  function planFiles(state: Pending, rows: ArchivedRow[]): string[] {
    return planRoll({ partition: state.partition, rows }).map((p) => p.file);
  }

  // An adopted roll ends where its claim ends, not by size or age.
  const due = (state: Pending, now: number) =>
    state.first !== undefined &&
    (state.adopting
      ? state.last >= state.adopting.lastOffset
      : state.rows.length >= config.roll.maxRecords ||
        state.bytes >= config.roll.maxBytes ||
        now - state.openedAt >= config.roll.maxAgeMs);

  async function decode(
    topic: string,
    partition: number,
    message: BusRecord,
  ): Promise<{ row: ArchivedRow; schema: Schema } | DeadLetter> {
    const source = { topic, partition, message };
    // A registry outage throws (retriable): the batch is handed over again.
    const decoded = await decoder.decode(message.value);
    if (!decoded.ok) return deadLetterOf(source, decoded.reason, decoded.detail);
    const schema = schemaOf(decoded.writer);
    if (schema instanceof AvroMappingError) {
      return deadLetterOf(source, "schema_mismatch", `schema id ${decoded.writer.id}: ${schema.message}`);
    }
    const value = decoded.value as Record<string, unknown>;
    const eventTime = parseTimestamp(value?.[config.timestampField]);
    if (eventTime === undefined) {
      return deadLetterOf(
        source,
        "missing_field",
        `${config.timestampField}: no event time (epoch ms or ISO-8601) to place the record by date and hour`,
      );
    }
    return {
      schema,
      row: { value, offset: Number(message.offset), timestamp: Number(message.timestamp), eventTime },
    };
  }

  async function handleBatch(batch: BusBatch, consumer: BusConsumer): Promise<void> {
    const state = await pendingOf(batch.topic, batch.partition);
    let letters: DeadLetter[] = [];
    const flushLetters = async () => {
      await deadLetters.publish(letters);
      letters = [];
    };
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      if (offset <= state.last) continue; // handed over again after a retry, or in an earlier claim
      // Past the end of an adopted roll (offsets may skip): roll it before this record.
      if (state.adopting && offset > state.adopting.lastOffset && state.first !== undefined) {
        await flushLetters();
        await roll(state, consumer, "past-end");
      }
      const decoded = await decode(batch.topic, batch.partition, message);
      if ("reason" in decoded) {
        letters.push(decoded);
      } else {
        if (state.schema && state.first !== undefined && decoded.schema.id !== state.schema.id) {
          // One file, one schema: close the roll before the first record of another schema.
          await flushLetters();
          await roll(state, consumer, "forced");
        }
        state.schema = decoded.schema;
        state.rows.push(decoded.row);
        state.bytes += message.value?.length ?? 0;
        metrics.buffered.inc({ topic: batch.topic });
      }
      if (state.first === undefined) {
        // An adopted roll starts at its claim even when its first offsets are gone (compaction).
        state.first = state.adopting?.firstOffset ?? offset;
        state.openedAt = Date.now();
      }
      state.last = offset;
    }
    await flushLetters();
    if (due(state, Date.now())) await roll(state, consumer);
  }

  const loop: ConsumerLoop = new ConsumerLoop({
    kafka,
    groupId: config.groupId,
    topics: config.topics,
    fromBeginning: true,
    autoCommit: false,
    handleSignals: false,
    metricsRegistry,
    consumerConfig: {
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: Math.max(100, Math.floor(config.sessionTimeoutMs / 10)),
    },
    // Our own commits only: a roll is committed after its files are in place.
    handleBatch: (batch) => exclusive(() => handleBatch(batch, loop.consumer)),
    onError: (error, info) => logger.error({ err: error, ...info }, "batch failed"),
  });
  loop.consumer.onGroupJoin((assignment) => {
    joined = true;
    topicInfoWritten.clear(); // a rebalance may follow added partitions
    assigned = Object.values(assignment).reduce((n, ps) => n + ps.length, 0);
    // Forget revoked partitions: their new owner replays them from the committed offset.
    void exclusive(async () => {
      for (const [key, state] of pending) {
        if (!assignment[state.topic]?.includes(state.partition)) {
          metrics.buffered.dec({ topic: state.topic }, state.rows.length);
          pending.delete(key);
        }
      }
      // Claims before a partition's latest are committed (a writer claims its next roll only after
      // committing the last); a predecessor killed between its commit and its prune left them.
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions) {
          const latest = await latestClaim(config.root, topic, partition);
          if (latest) await pruneClaims(config.root, topic, partition, latest.firstOffset);
        }
      }
    }).catch((error) => logger.warn({ err: error }, "could not prune committed roll claims"));
    logger.info({ assignment }, "partitions assigned");
  });
  // A crash for good also rejects the loop's `done`, so the archiver stops (and is restarted).
  loop.consumer.onCrash((error, restart) => {
    joined = false;
    logger.error(
      { err: error, restart },
      restart ? "consumer crashed: the client restarts it" : "consumer crashed for good",
    );
  });

  let failure: unknown;
  const timer = setInterval(
    () => {
      void exclusive(async () => {
        const now = Date.now();
        for (const state of pending.values()) if (due(state, now)) await roll(state, loop.consumer);
      }).catch((error) => {
        logger.error({ err: error }, "timed roll failed: stopping (a restart replays from the last commit)");
        failure = failure ?? error;
        loop.fail(error);
      });
    },
    Math.max(10, Math.min(1000, config.roll.maxAgeMs / 2)),
  );

  let ops: OpsServer | undefined;
  if (deps.ops ?? true) {
    ops = await startOpsServer({
      host: config.ops.host,
      port: config.ops.port,
      registry: metricsRegistry,
      readiness: () => ({
        ready: joined && failure === undefined,
        detail: { joined, assignedPartitions: assigned, bufferedPartitions: pending.size },
      }),
    });
  }
  await loop.start();
  logger.info(
    { topics: config.topics, root: config.root, groupId: config.groupId, ops: ops?.url },
    "archiver started",
  );

  const done = loop.done.then(() => {
    if (failure !== undefined) throw failure;
  });
  done.catch(() => {});

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(timer);
      // Finish what is buffered while we still own the partitions, then leave the group.
      await exclusive(async () => {
        for (const state of pending.values()) await roll(state, loop.consumer);
      }).catch((error) => logger.error({ err: error }, "final roll failed; the next owner replays it"));
      await loop.stop().catch(() => {});
      await Promise.allSettled([producer.disconnect(), admin.disconnect(), ops?.close()]);
      if (!deps.registry) registry.close();
    })();
    return stopping;
  };
  return { done, ...(ops ? { opsUrl: ops.url } : {}), stop };
}
