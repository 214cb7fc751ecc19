/**
 * The stream processor: source topics → per-partition tiles → one atomic store write per flush
 * (absolute tile states + the partition's last applied offset) → Kafka offset commit → FeatureUpdate
 * records. Exactly-once in effect: on (re)assignment the stored offset says which events are
 * already in the store, and those are skipped.
 *
 * kafkajs has no revocation callback, so nothing un-flushed outlives a batch handler: every handler
 * ends with a flush, and a rebalance (GROUP_JOIN) drops all in-memory state, to be reloaded from
 * the store. A handler whose generation ended before its flush abandons its state instead of
 * writing it, so an old owner never overwrites a new one.
 */
import {
  type BatchContext,
  ConsumerLoop,
  createKafka,
  type DeadLetter,
  DeadLetterPublisher,
  deadLetterOf,
  isRetriable,
  SchemaRegistry,
} from "@tessera/kafka";
import { createLogger, type Logger, type Readiness, startOpsServer } from "@tessera/runtime";
import { createOnlineStore, type FreshnessWrite, type OnlineStore, type TileWrite } from "@tessera/stores";
import { type Definitions, type PreparedEvent, type Row, type View, viewRuntime } from "@tessera/transforms";
import type { Batch, Consumer, Kafka, KafkaMessage, Producer } from "kafkajs";
import { Registry } from "prom-client";
import {
  avroFeatureValue,
  type DeadReason,
  EventDecoder,
  FeatureUpdateEncoder,
  requiredColumns,
} from "./codec.js";
import { type ProcessorConfig, storeConfig } from "./config.js";
import { loadDefinitions, selectViews } from "./definitions.js";
import { type ProcessorMetrics, processorMetrics } from "./metrics.js";
import { ViewSlot } from "./state.js";
import { FlushTracing } from "./tracing.js"; // tracing

export interface ProcessorDeps {
  /** Default: the store the config names. */
  store?: OnlineStore;
  /** Default: a client for config.kafka.brokers. */
  kafka?: Kafka;
  /** Default: config.kafka.schemaRegistryUrl. */
  registry?: SchemaRegistry;
  /** Default: loaded from config.definitions. */
  definitions?: Definitions;
  /** Where the processor's metrics go (default: a registry of its own). */
  metricsRegistry?: Registry;
  logger?: Logger;
  /** Processing clock (late/future judgement); tests may drive it. */
  now?: () => number;
  /** Serve /metrics, /healthz, /readyz on config.ops (default true; an embedding app may mount opsRoutes itself). */
  ops?: boolean;
}

export interface Processor {
  groupId: string;
  views: View[];
  metricsRegistry: Registry;
  /** URL of the ops server, when it runs. */
  opsUrl?: string;
  readiness(): Readiness;
  /** Settles when the processor stops: resolves after stop(), rejects on a fatal error. */
  done: Promise<void>;
  /** Finishes the batch in hand (which ends with a flush), leaves the group, closes connections. */
  stop(): Promise<void>;
}

/** One partition of one source topic, owned during one group generation. */
class PartitionState {
  /** Last offset applied to the in-memory tiles (-1: none). */
  applied: number;
  /** Last offset the store holds. */
  stored: number;
  unflushedEvents = 0;
  lastFlush = Date.now();
  lastPrune = Date.now();
  /** Event times applied since the last store write, for the freshness histogram. */
  eventTimes: number[] = [];
  /** Taken from the slots but not yet written (a failed write keeps them for the retry). */
  writes: TileWrite[] = [];
  freshness: FreshnessWrite[] = [];
  /** Entities touched per slot since the last FeatureUpdate publish. */
  readonly touched: Set<string>[];
  deadLetters: DeadLetter[] = [];
  updates: { key: string; value: Buffer }[] = [];
  clock = Number.NEGATIVE_INFINITY;
  committing = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly generation: number,
    readonly slots: ViewSlot[],
    stored: number,
  ) {
    this.applied = stored;
    this.stored = stored;
    this.touched = slots.map(() => new Set());
  }

  get idle(): boolean {
    return (
      this.unflushedEvents === 0 &&
      this.applied === this.stored &&
      this.writes.length === 0 &&
      this.deadLetters.length === 0 &&
      this.updates.length === 0
    );
  }
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** A dead-letter or FeatureUpdate publish failed: retried with backoff like any broker outage. */
class PublishError extends Error {
  override name = "PublishError";
  readonly retriable = true;
  constructor(stage: string, cause: unknown) {
    super(
      `publishing ${stage === "features" ? "FeatureUpdates" : "dead letters"} failed: ${(cause as Error)?.message ?? cause}`,
      {
        cause,
      },
    );
  }
}

/** `older` then `newer`, one item per key, the newer one winning (a store batch must not repeat a key). */
function latest<T>(older: T[], newer: T[], key: (item: T) => string): T[] {
  const byKey = new Map<string, T>();
  for (const item of older) byKey.set(key(item), item);
  for (const item of newer) byKey.set(key(item), item);
  return [...byKey.values()];
}

export async function startProcessor(config: ProcessorConfig, deps: ProcessorDeps = {}): Promise<Processor> {
  const logger = deps.logger ?? createLogger("stream-processor");
  const now = deps.now ?? Date.now;
  const groupId = `tessera-processor-${config.name}`;
  const definitions = deps.definitions ?? (await loadDefinitions(config.definitions));
  const views = selectViews(definitions, config.views);
  if (views.length === 0) throw new Error("no views to run: the definitions have none");
  const runtimes = views.map(viewRuntime);
  const byTopic = new Map<string, number[]>();
  views.forEach((view, i) => {
    byTopic.set(view.source.topic, [...(byTopic.get(view.source.topic) ?? []), i]);
  });
  const topics = [...byTopic.keys()];
  // Records per flush: each can touch one tile per feature of every view of its topic.
  const flushEvery = new Map(
    topics.map((topic) => {
      const features = byTopic.get(topic)!.reduce((n, i) => n + views[i]!.features.length, 0);
      return [
        topic,
        Math.max(1, Math.min(config.flush.maxEvents, Math.floor(config.flush.maxTiles / features))),
      ];
    }),
  );

  const metricsRegistry = deps.metricsRegistry ?? new Registry();
  const partitions = new Map<string, PartitionState>();
  const entitiesHeld = () => {
    let entities = 0;
    for (const part of partitions.values()) for (const slot of part.slots) entities += slot.entities.size;
    return entities;
  };
  // Counting tiles serialises a sample of entities: only at scrape time, never on the hot path.
  const held = () => {
    let tiles = 0;
    for (const part of partitions.values()) for (const slot of part.slots) tiles += slot.tilesHeld();
    return { entities: entitiesHeld(), tiles };
  };
  const metrics: ProcessorMetrics = processorMetrics(metricsRegistry, held);
  const flushTracing = new FlushTracing(groupId); // tracing: flush spans linked to the events' contexts

  const store = deps.store ?? createOnlineStore(storeConfig(config));
  const ownsStore = deps.store === undefined;
  const kafka = deps.kafka ?? createKafka({ brokers: config.kafka.brokers, clientId: config.kafka.clientId });
  const registry = deps.registry ?? new SchemaRegistry(config.kafka.schemaRegistryUrl);
  const ownsRegistry = deps.registry === undefined;
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const admin = kafka.admin();
  const deadLetters = new DeadLetterPublisher({
    producer,
    registry,
    service: "stream-processor",
    topic: config.topics.deadLetter,
    metricsRegistry,
  });
  const decoder = new EventDecoder(
    registry,
    new Map(topics.map((t) => [t, requiredColumns(byTopic.get(t)!.map((i) => views[i]!))])),
  );
  const updates = new FeatureUpdateEncoder(registry, config.topics.features);

  // Everything that can be checked before consuming is checked now, so a bad setting fails the start.
  for (const view of views) {
    await store.applyView({ name: view.name, version: view.version, retentionMs: view.retentionMs });
  }
  await Promise.all([producer.connect(), admin.connect()]);
  const existing = new Set(await admin.listTopics());
  const absent = [
    ...topics,
    config.topics.deadLetter,
    ...(config.publishFeatures ? [config.topics.features] : []),
  ].filter((t) => !existing.has(t));
  if (absent.length > 0) {
    await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
    throw new Error(`topic(s) ${absent.join(", ")} do not exist: create them first (tessera topics create)`);
  }
  if (config.publishFeatures) await updates.register();

  let generation = 0;
  let joined = false;
  let stopping = false;
  let paused = false;
  const lag = new Map<string, number>();
  const storedOffsets = new Map<string, Promise<Map<number, number>>>();

  /** Stored offsets of a topic, read once per generation. */
  const readStored = (topic: string): Promise<Map<number, number>> => {
    let found = storedOffsets.get(topic);
    if (!found) {
      found = store.readOffsets(groupId, topic);
      storedOffsets.set(topic, found);
      found.catch(() => storedOffsets.delete(topic));
    }
    return found;
  };

  const loop = new ConsumerLoop({
    kafka,
    groupId,
    topics,
    fromBeginning: config.fromBeginning,
    autoCommit: false,
    handleSignals: false,
    partitionsConsumedConcurrently: config.concurrency,
    // Retriable failures (store or broker away) are retried for as long as they last.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialMs: 100, maxMs: 5000 },
    consumerConfig: {
      maxWaitTimeInMs: Math.min(config.flush.maxDelayMs, 5000),
      sessionTimeout: config.kafka.sessionTimeoutMs,
      heartbeatInterval: config.kafka.heartbeatIntervalMs,
      maxBytesPerPartition: config.kafka.maxBytesPerPartition,
      maxBytes: Math.max(config.kafka.maxBytesPerPartition * 4, 10 * 1024 * 1024),
    },
    metricsRegistry,
    onError: (error, info) =>
      logger[info.willRetry ? "warn" : "error"]({ err: error, attempt: info.attempt }, "batch failed"),
    handleBatch: (batch, context) => handleBatch(batch, context),
  });
  const consumer: Consumer = loop.consumer;

  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    generation++;
    joined = true;
    partitions.clear();
    storedOffsets.clear();
    lag.clear();
    const assignment = event.payload.memberAssignment;
    logger.info({ generation, assignment }, "partitions assigned");
    void seekToStored(assignment).catch((error) =>
      logger.warn(
        { err: error },
        "reading stored offsets after assignment failed (events are still skipped)",
      ),
    );
  });
  // kafkajs restarts its consumer after a retriable crash; after any other the processor is done.
  let crash: (error: unknown) => void = () => {};
  const crashed = new Promise<never>((_, reject) => {
    crash = reject;
  });
  crashed.catch(() => {});
  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart } = event.payload;
    logger.error(
      { err: error, restart },
      restart ? "consumer crashed: kafkajs restarts it" : "consumer crashed for good",
    );
    if (!restart) crash(error);
  });

  /** Start each assigned partition after its stored offset, which may be ahead of the committed one (backfill). */
  async function seekToStored(assignment: Record<string, number[]>): Promise<void> {
    for (const [topic, assigned] of Object.entries(assignment)) {
      const [stored, ends] = await Promise.all([readStored(topic), admin.fetchTopicOffsets(topic)]);
      for (const partition of assigned) {
        const offset = stored.get(partition);
        if (offset !== undefined) consumer.seek({ topic, partition, offset: String(offset + 1) });
        const high = Number(ends.find((e) => e.partition === partition)?.high ?? 0);
        if (!lag.has(partitionKey(topic, partition))) {
          lag.set(partitionKey(topic, partition), Math.max(0, high - (offset ?? -1) - 1));
        }
      }
    }
  }

  async function handleBatch(batch: Batch, context: BatchContext): Promise<void> {
    const { topic, partition } = batch;
    const key = partitionKey(topic, partition);
    let part = partitions.get(key);
    if (!part || part.generation !== generation) {
      const stored = (await readStored(topic)).get(partition) ?? -1;
      part = new PartitionState(
        topic,
        partition,
        generation,
        byTopic.get(topic)!.map((i) => new ViewSlot(runtimes[i]!)),
        stored,
      );
      partitions.set(key, part);
    }
    const { messages } = batch;
    const every = flushEvery.get(topic)!;
    for (let i = 0; i < messages.length; i += every) {
      await ingest(part, messages.slice(i, i + every));
      const due = part.unflushedEvents >= every || Date.now() - part.lastFlush >= config.flush.maxDelayMs;
      if (due) await flush(part);
      // A long batch must not cost the membership. (A rebalance signalled here waits for the batch.)
      await context.heartbeat().catch(() => {});
      if (stopping) break;
    }
    await flush(part);
    const behind = Math.max(0, Number(batch.highWatermark) - part.applied - 1);
    lag.set(key, behind);
    metrics.lag.set({ topic, partition: String(partition) }, behind);
  }

  /** Decode, judge and apply one slice of a batch to the partition's tiles (no store write). */
  async function ingest(part: PartitionState, messages: KafkaMessage[]): Promise<void> {
    const { topic, partition, slots } = part;
    const fresh = messages.filter((m) => Number(m.offset) > part.applied);
    if (fresh.length < messages.length) metrics.skipped.inc({ topic }, messages.length - fresh.length);
    if (fresh.length === 0) return;
    metrics.eventsIn.inc({ topic }, fresh.length);
    flushTracing.collect(part, fresh); // tracing
    await decoder.prepare(
      topic,
      fresh.map((m) => m.value),
    );
    // Processing time only moves forward within a partition, like the tiles' own clock.
    part.clock = Math.max(part.clock, now());
    const clock = part.clock;
    const dead = (message: KafkaMessage, reason: DeadReason, detail: string) => {
      part.deadLetters.push(deadLetterOf({ topic, partition, message }, reason, detail));
      metrics.deadLettered.inc({ topic, reason });
    };

    // Pass 1: decode and judge every record, and find the entities to load from the store.
    const accepted: (PreparedEvent | null)[][] = [];
    const toLoad = slots.map(() => new Set<string>());
    for (const message of fresh) {
      const decoded = decoder.decode(message.value);
      if (!decoded.ok) {
        dead(message, decoded.reason, decoded.detail);
        continue;
      }
      const rejected = judgeRow(decoded.row);
      if (rejected) {
        dead(message, rejected.reason, rejected.detail);
        continue;
      }
      const offset = Number(message.offset);
      const events: (PreparedEvent | null)[] = [];
      let refused: { reason: DeadReason; detail: string } | undefined;
      let untimely: { reason: DeadReason; detail: string } | undefined;
      for (const slot of slots) {
        const prepared = slot.runtime.prepare(decoded.row, offset);
        if (!prepared.ok) {
          if (prepared.filtered) {
            metrics.filtered.inc({ view: slot.runtime.view.name });
            events.push(null);
            continue;
          }
          const value = prepared.column === undefined ? undefined : decoded.row[prepared.column];
          refused = {
            reason:
              prepared.column === undefined
                ? "transform_error"
                : value == null || value === ""
                  ? "missing_field"
                  : "invalid_value",
            detail: `view ${slot.runtime.view.name}: ${prepared.reason}`,
          };
          break;
        }
        const event = prepared;
        if (event.entity.length > config.maxEntityKeyLength) {
          refused = {
            reason: "invalid_value",
            detail: `entity key of ${event.entity.length} characters is longer than maxEntityKeyLength ${config.maxEntityKeyLength}`,
          };
          break;
        }
        const judged = slot.judge(event, clock, config.maxSkewMs);
        if (judged) {
          untimely ??= judged;
          events.push(null);
          continue;
        }
        events.push(event);
      }
      if (refused) {
        dead(message, refused.reason, refused.detail);
        continue;
      }
      // Late for one view is not late for another with a longer retention: those still apply it.
      if (untimely) dead(message, untimely.reason, untimely.detail);
      events.forEach((event, s) => {
        if (event && !slots[s]!.has(event.entity)) toLoad[s]!.add(event.entity);
      });
      accepted.push(events);
    }

    // Entities not in memory carry on from their stored state (after a restart, rebalance or eviction).
    await Promise.all(
      slots.map(async (slot, s) => {
        const entities = [...toLoad[s]!];
        if (entities.length === 0) return;
        const { name, version, retentionMs } = slot.runtime.view;
        const stored = await store.readTiles(name, version, entities, clock - retentionMs);
        for (const entity of entities) slot.restore(entity, stored.get(entity)!);
        metrics.loaded.inc(entities.length);
      }),
    );

    // Pass 2: apply, in log order.
    const applied = slots.map(() => 0);
    for (const events of accepted) {
      for (let s = 0; s < slots.length; s++) {
        const event = events[s];
        if (!event) continue;
        slots[s]!.apply(event, clock);
        part.touched[s]!.add(event.entity);
        part.eventTimes.push(event.ts);
        applied[s]!++;
      }
    }
    slots.forEach((slot, s) => {
      if (applied[s]! > 0) metrics.applied.inc({ view: slot.runtime.view.name }, applied[s]);
    });
    part.applied = Number(fresh[fresh.length - 1]!.offset);
    part.unflushedEvents += fresh.length;
  }

  /** Record-level checks no view makes itself: non-finite numbers anywhere a feature reads. */
  const numericColumns = [
    ...new Set(views.flatMap((v) => v.features.map((f) => f.column)).filter((c) => c !== undefined)),
  ];
  function judgeRow(row: Row): { reason: DeadReason; detail: string } | undefined {
    for (const column of numericColumns) {
      const value = row[column];
      if (typeof value === "number" && !Number.isFinite(value)) {
        return { reason: "invalid_value", detail: `${column} is ${value}` };
      }
    }
    return undefined;
  }

  /**
   * Dead letters first (a crash after them replays the records, so none is lost), then tiles +
   * offset in one atomic store write, then FeatureUpdates, then the Kafka commit. Each step keeps
   * its input until it succeeds, so a retried batch (same records, now skipped) finishes the flush.
   */
  async function flush(part: PartitionState): Promise<void> {
    if (part.idle) return;
    const started = performance.now();
    const at = now();
    const tiles: TileWrite[] = [];
    const freshness: FreshnessWrite[] = [];
    for (const slot of part.slots) {
      const taken = slot.takeDirty(at);
      for (const t of taken.tiles) tiles.push(t);
      for (const f of taken.freshness) freshness.push(f);
    }
    // Usually nothing is left from a failed flush; when something is, newer states replace older.
    part.writes =
      part.writes.length === 0
        ? tiles
        : latest(
            part.writes,
            tiles,
            (t) => `${t.view}\u0000${t.entity}\u0000${t.aggregation}\u0000${t.tileStart}`,
          );
    part.freshness =
      part.freshness.length === 0
        ? freshness
        : latest(part.freshness, freshness, (f) => `${f.view}\u0000${f.entity}`);
    part.unflushedEvents = 0;
    part.lastFlush = Date.now();
    if (part.generation !== generation) {
      // The group moved on while this batch ran: another owner may hold the partition now.
      logger.warn(
        { topic: part.topic, partition: part.partition },
        "generation ended before the flush: state dropped",
      );
      return;
    }
    const traced = flushTracing.begin(part); // tracing
    let stage = "dead_letter";
    try {
      while (part.deadLetters.length > 0) {
        const chunk = letterChunk(part.deadLetters);
        await deadLetters.publish(chunk);
        part.deadLetters = part.deadLetters.slice(chunk.length);
      }
      stage = "store";
      if (part.applied > part.stored || part.writes.length > 0) {
        await store.writeBatch({
          tiles: part.writes,
          freshness: part.freshness,
          offsets: [
            { consumerGroup: groupId, topic: part.topic, partition: part.partition, offset: part.applied },
          ],
        });
        const written = Date.now();
        for (const ts of part.eventTimes) metrics.freshness.observe(Math.max(0, written - ts) / 1000);
        part.eventTimes = [];
        part.writes = [];
        part.freshness = [];
        part.stored = part.applied;
        if (config.publishFeatures) collectUpdates(part, written);
      }
      stage = "features";
      if (part.updates.length > 0) {
        // tracing: traced.headers stamps the flush's trace context on the FeatureUpdates
        await producer.send({
          topic: config.topics.features,
          acks: -1,
          messages: traced.headers(part.updates),
        });
        part.updates = [];
      }
      commit(part);
      traced.end(); // tracing
    } catch (error) {
      traced.end(error); // tracing
      metrics.flushErrors.inc({ stage });
      pause();
      // kafkajs gives up on an unreachable broker with a non-retriable error; for a service that must
      // outlive a broker restart, any failure to publish is one more retry (paused, not ready).
      if (stage !== "store" && !isRetriable(error)) throw new PublishError(stage, error);
      throw error;
    }
    resume();
    metrics.flushSeconds.observe((performance.now() - started) / 1000);
    if (Date.now() - part.lastPrune > 60_000) {
      for (const slot of part.slots) slot.prune(at);
      part.lastPrune = Date.now();
    }
    evict(part);
  }

  /**
   * The store's offset is what counts; the Kafka commit only saves re-reading after a restart, so
   * it runs in the background (one at a time per partition) and never holds up the next flush.
   */
  function commit(part: PartitionState): void {
    if (part.committing) return;
    const offset = part.stored + 1;
    part.committing = true;
    consumer
      .commitOffsets([{ topic: part.topic, partition: part.partition, offset: String(offset) }])
      .catch((error) => {
        metrics.flushErrors.inc({ stage: "commit" });
        logger.warn({ err: error, topic: part.topic, partition: part.partition }, "offset commit failed");
      })
      .finally(() => {
        part.committing = false;
      });
  }

  /** Leading letters of at most ~256 kB: a produce request must stay under the broker's size limit. */
  function letterChunk(letters: DeadLetter[]): DeadLetter[] {
    let bytes = 0;
    let n = 0;
    while (n < letters.length && (n === 0 || bytes < 256 * 1024)) {
      bytes += (letters[n]!.key?.length ?? 0) + (letters[n]!.value?.length ?? 0);
      n++;
    }
    return letters.slice(0, n);
  }

  function collectUpdates(part: PartitionState, t: number): void {
    part.slots.forEach((slot, s) => {
      const { name, version } = slot.runtime.view;
      for (const entity of part.touched[s]!) {
        const values: Record<string, ReturnType<typeof avroFeatureValue>> = {};
        for (const [feature, value] of Object.entries(slot.valueAt(entity, t)))
          values[feature] = avroFeatureValue(value);
        part.updates.push({
          key: entity,
          value: updates.encode({
            view: name,
            version,
            entity,
            event_time: slot.newestOf(entity),
            computed_at: t,
            values,
          }),
        });
      }
      part.touched[s]!.clear();
    });
  }

  /** Keep memory bounded: drop flushed entities of this partition, least recently touched first. */
  function evict(part: PartitionState): void {
    let over = entitiesHeld() - config.memory.maxEntities;
    if (over <= 0) return;
    // A tenth of headroom, so the next batch does not evict again at once.
    over += Math.floor(config.memory.maxEntities / 10);
    for (const slot of part.slots) {
      const gone = slot.evict(over);
      metrics.evicted.inc(gone);
      over -= gone;
      if (over <= 0) break;
    }
  }

  /** While flushes fail, stop fetching: memory must not grow behind a store or broker outage. */
  function pause(): void {
    if (paused) return;
    paused = true;
    metrics.paused.set(1);
    consumer.pause(topics.map((topic) => ({ topic })));
    logger.warn("flush failed: source partitions paused until a flush succeeds");
  }

  function resume(): void {
    if (!paused) return;
    paused = false;
    metrics.paused.set(0);
    consumer.resume(topics.map((topic) => ({ topic })));
    logger.info("flush succeeded: source partitions resumed");
  }

  await loop.start();
  logger.info(
    { groupId, topics, views: views.map((v) => `${v.name}@${v.version}`) },
    "stream processor started",
  );

  const readiness = (): Readiness => {
    if (stopping) return { ready: false, detail: { reason: "stopping" } };
    if (!joined) return { ready: false, detail: { reason: "not assigned yet" } };
    let maxLag = 0;
    for (const l of lag.values()) maxLag = Math.max(maxLag, l);
    return {
      ready: maxLag <= config.readyMaxLag && !paused,
      detail: { generation, partitions: lag.size, maxLag, paused },
    };
  };

  const ops =
    (deps.ops ?? true)
      ? await startOpsServer({
          host: config.ops.host,
          port: config.ops.port,
          registry: metricsRegistry,
          readiness,
        })
      : undefined;

  const done = Promise.race([loop.done, crashed]).finally(() => closeAll());
  done.catch(() => {});
  let closed: Promise<void> | undefined;
  function closeAll(): Promise<void> {
    closed ??= (async () => {
      await Promise.allSettled([producer.disconnect(), admin.disconnect(), ops?.close()]);
      if (ownsStore) await store.close().catch(() => {});
      if (ownsRegistry) registry.close();
    })();
    return closed;
  }

  return {
    groupId,
    views,
    metricsRegistry,
    opsUrl: ops?.url,
    readiness,
    done,
    async stop() {
      stopping = true;
      await loop.stop().catch(() => {});
      await closeAll();
    },
  };
}
