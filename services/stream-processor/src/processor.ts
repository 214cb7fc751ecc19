/**
 * The stream processor: source topics → per-partition tile state → one fenced store write per flush
 * (each changed entity's whole state + the partition's last applied offset) → FeatureUpdate records
 * → Kafka offset commit. Exactly-once in effect, enforced by the store: a replica takes a partition
 * over with a claim (a new owner epoch and the stored offset, atomically), and every flush lands only
 * while that epoch still owns the partition. Stored states carry the offset they include, so an
 * entity reloaded after a partial flush skips what it already holds.
 *
 * The path an event takes, one module each: ingest.ts (decode, judge, load, apply), partition.ts
 * (what a partition's owner holds), flush.ts (dead letters, fenced write, FeatureUpdates, commit).
 * kafkajs has no revocation callback, so nothing un-flushed outlives a batch handler: every handler
 * ends with a flush, and a rebalance (onGroupJoin) drops all in-memory state, to be reloaded.
 */
import {
  type BatchContext,
  type Bus,
  type BusBatch,
  type BusConsumer,
  type BusProducer,
  ConsumerLoop,
  createKafka,
  DeadLetterPublisher,
  SchemaRegistry,
} from "@tessera/kafka";
import { createLogger, type Logger, loadDefinitions, type Readiness, startOpsServer } from "@tessera/runtime";
import { createOnlineStore, type OnlineStore, StoreFencedError } from "@tessera/stores";
import { type Definitions, type View, viewRuntime } from "@tessera/transforms";
import { Registry } from "prom-client";
import { EventDecoder, FeatureUpdateEncoder, requiredColumns } from "./codec.js";
import { type ProcessorConfig, storeConfig } from "./config.js";
import { selectViews } from "./definitions.js";
import { Flusher, UpdatePublisher } from "./flush.js";
import { Ingest } from "./ingest.js";
import { type ProcessorMetrics, processorMetrics } from "./metrics.js";
import { PartitionState } from "./partition.js";
import { FlushTracing } from "./tracing.js";

export interface ProcessorDeps {
  /** Default: the store the config names. */
  store?: OnlineStore;
  /** Default: a client for config.kafka.brokers. */
  kafka?: Bus;
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

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

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
    for (const part of partitions.values()) entities += part.entities;
    return entities;
  };
  const held = () => {
    let tiles = 0;
    for (const part of partitions.values()) for (const view of part.views) tiles += view.tilesHeld();
    return { entities: entitiesHeld(), tiles };
  };
  const metrics: ProcessorMetrics = processorMetrics(metricsRegistry, held);

  const store = deps.store ?? createOnlineStore(storeConfig(config));
  const ownsStore = deps.store === undefined;
  const kafka = deps.kafka ?? createKafka({ brokers: config.kafka.brokers, clientId: config.kafka.clientId });
  const registry = deps.registry ?? new SchemaRegistry(config.kafka.schemaRegistryUrl);
  const ownsRegistry = deps.registry === undefined;
  const producer: BusProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
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
  const encoder = new FeatureUpdateEncoder(registry, config.topics.features);

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
  if (config.publishFeatures) await encoder.register();
  const publisher = config.publishFeatures
    ? new UpdatePublisher(producer, config.topics.features)
    : undefined;

  let generation = 0;
  let joined = false;
  let stopping = false;
  let paused = false;
  const lag = new Map<string, number>();
  /** Partitions another owner claimed since this generation began: left alone until a rejoin. */
  const fenced = new Map<string, { generation: number; at: number }>();

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
      rebalanceTimeout: config.kafka.rebalanceTimeoutMs,
      maxBytesPerPartition: config.kafka.maxBytesPerPartition,
      maxBytes: Math.max(config.kafka.maxBytesPerPartition * 4, 10 * 1024 * 1024),
    },
    metricsRegistry,
    onError: (error, info) =>
      logger[info.willRetry ? "warn" : "error"]({ err: error, attempt: info.attempt }, "batch failed"),
    handleBatch: (batch, context) => handleBatch(batch, context),
  });
  const consumer: BusConsumer = loop.consumer;
  const tracing = new FlushTracing(groupId);
  const ingest = new Ingest(
    { decoder, tracing, store, metrics, now, maxEntityKeyLength: config.maxEntityKeyLength },
    views,
  );
  const flusher = new Flusher({
    tracing,
    store,
    consumer,
    deadLetters,
    updates: publisher ? { publisher, encoder } : undefined,
    metrics,
    logger,
  });

  consumer.onGroupJoin((assignment) => {
    generation++;
    joined = true;
    partitions.clear();
    fenced.clear();
    lag.clear();
    logger.info({ generation, assignment }, "partitions assigned");
    void seekToStored(assignment).catch((error) =>
      logger.warn({ err: error }, "reading stored offsets after assignment failed (a claim corrects it)"),
    );
  });
  // The client restarts its consumer after a retriable crash; after any other the loop's `done`
  // rejects and the processor is done.
  consumer.onCrash((error, restart) => {
    logger.error(
      { err: error, restart },
      restart ? "consumer crashed: the client restarts it" : "consumer crashed for good",
    );
  });

  /** Start each assigned partition after its stored offset, which may be ahead of the committed one (backfill). */
  async function seekToStored(assignment: Record<string, number[]>): Promise<void> {
    for (const [topic, assigned] of Object.entries(assignment)) {
      const [stored, ends] = await Promise.all([
        store.readOffsets(groupId, topic),
        admin.fetchTopicOffsets(topic),
      ]);
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

  /**
   * The partition's state in this generation, claimed in the store on its first batch (undefined
   * while another owner holds it: after a fence, until the group rebalances or a session timeout
   * has passed, so two replicas never take turns stealing it).
   */
  async function own(topic: string, partition: number): Promise<PartitionState | undefined> {
    const key = partitionKey(topic, partition);
    const part = partitions.get(key);
    if (part && part.generation === generation) return part;
    const wasFenced = fenced.get(key);
    if (wasFenced?.generation === generation && Date.now() - wasFenced.at < config.kafka.sessionTimeoutMs) {
      return undefined;
    }
    const claimedIn = generation;
    const claim = await store.claimPartition(groupId, topic, partition);
    logger.debug({ topic, partition, generation, claimedIn, ...claim }, "partition claimed");
    if (claimedIn !== generation) return undefined; // the group moved on while claiming: the next batch claims
    const claimed = new PartitionState(
      { consumerGroup: groupId, topic, partition, epoch: claim.epoch },
      generation,
      byTopic.get(topic)!.map((i) => runtimes[i]!),
      claim.offset,
      config.maxSkewMs,
    );
    partitions.set(key, claimed);
    fenced.delete(key);
    return claimed;
  }

  async function handleBatch(batch: BusBatch, context: BatchContext): Promise<void> {
    await handlePartitionBatch(batch, context);
    // Any outcome short of a failure ends a pause, not only a flush: a retry that is fenced, skipped
    // or sent back has reached the store or found nothing to write, and a pause that outlived its
    // failure would hold this replica's partitions with nothing consumed, for good.
    resume();
  }

  async function handlePartitionBatch(batch: BusBatch, context: BatchContext): Promise<void> {
    const { topic, partition, messages } = batch;
    const key = partitionKey(topic, partition);
    const part = await own(topic, partition);
    if (!part) {
      logger.debug(
        { topic, partition, first: messages[0]?.offset },
        "batch skipped: another replica owns the partition",
      );
      return unconsumed(batch);
    }
    // Kafka's position is past what the store holds (it lost writes, or the seek read an older
    // offset than the claim): go back, so no event is skipped.
    if (part.stored >= 0 && Number(messages[0]!.offset) > part.applied + 1) {
      logger.debug(
        { topic, partition, first: messages[0]!.offset, applied: part.applied },
        "batch ahead of the stored offset: seeking back",
      );
      consumer.seek({ topic, partition, offset: String(part.applied + 1) });
      return;
    }
    const every = flushEvery.get(topic)!;
    const end = Number(batch.highWatermark) - 1;
    let catchingUp = false;
    try {
      for (let i = 0; i < messages.length; ) {
        const last = messages[Math.min(i + every, messages.length) - 1]!;
        catchingUp = end - Number(last.offset) > config.flush.catchUpLag;
        // A slice is only as long as the flush has room for: `every` records, or far behind, `every`
        // changed entities per view.
        const held = catchingUp ? part.mostDirty : part.unflushedEvents;
        const slice = messages.slice(i, i + Math.max(1, every - held));
        i += slice.length;
        await ingest.run(part, slice);
        if (flushDue(part, every, catchingUp)) {
          await flusher.flush(part);
          evict(part);
        }
        // A long batch must not cost the membership. (A rebalance signalled here waits for the batch.)
        await context.heartbeat().catch(() => {});
        if (stopping) break;
      }
      // Caught up, a batch ends in a flush (freshness); far behind, its state waits for the next one.
      // A rebalance drops what is held and goes back to the stored offset (the assignment seeks
      // there) or, with none stored, to where a new group starts: with fromBeginning off that is the
      // end, past the held records, so then a partition's first batch is flushed, storing an offset.
      if (!catchingUp || stopping || (part.stored < 0 && !config.fromBeginning)) await flusher.flush(part);
    } catch (error) {
      if (error instanceof StoreFencedError) {
        fencedOut(part, error);
        return unconsumed(batch);
      }
      pause();
      throw error;
    }
    if (Date.now() - part.lastPrune > 60_000) {
      for (const view of part.views) view.prune(part.clock);
      part.lastPrune = Date.now();
    }
    evict(part);
    const behind = Math.max(0, Number(batch.highWatermark) - part.applied - 1);
    lag.set(key, behind);
    metrics.lag.set({ topic, partition: String(partition) }, behind);
  }

  /**
   * Caught up: after `every` records or maxDelayMs, so events are servable soon. Far behind (the
   * records still ahead are the cost, not the wait), only once about as many entities changed as a
   * flush may hold records, after catchUpMaxDelayMs, or when memory is over its bound (eviction needs
   * a flush): an entity that takes many events in a backlog is then encoded, written and published
   * once. "About": with less than an eighth of the room left, slices would shrink towards single
   * records (a partition whose active entities nearly fill a flush), so it flushes then.
   */
  function flushDue(part: PartitionState, every: number, catchingUp: boolean): boolean {
    const since = Date.now() - part.lastFlush;
    if (!catchingUp) return part.unflushedEvents >= every || since >= config.flush.maxDelayMs;
    return (
      part.writes.length > 0 || // a failed flush's retry finishes it first
      every - part.mostDirty < Math.ceil(every / 8) ||
      since >= config.flush.catchUpMaxDelayMs ||
      entitiesHeld() > config.memory.maxEntities
    );
  }

  /**
   * A batch not applied here stays unconsumed: the position goes back to its first offset. Else a
   * later claim that finds nothing stored (no offset to seek back to) would start past it and lose
   * it. The short wait makes a hold-off poll rather than spin.
   */
  async function unconsumed(batch: BusBatch): Promise<void> {
    consumer.seek({ topic: batch.topic, partition: batch.partition, offset: batch.messages[0]!.offset });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  /** The store refused a flush: this replica's state of the partition is no longer the truth. */
  function fencedOut(part: PartitionState, error: StoreFencedError): void {
    const key = partitionKey(part.topic, part.partition);
    partitions.delete(key);
    metrics.fenced.inc({ topic: part.topic, reason: error.reason });
    if (error.reason === "epoch") {
      // Another replica claimed it while this one stalled: leave it to that one until the group says otherwise.
      fenced.set(key, { generation, at: Date.now() });
      logger.warn(
        { topic: part.topic, partition: part.partition, epoch: part.owner.epoch, err: error },
        "another replica owns this partition now: state dropped, not written; rejoining",
      );
    } else {
      // The store holds an older offset than this owner wrote (lost writes): claim again and replay from it.
      logger.warn(
        { topic: part.topic, partition: part.partition, err: error },
        "the store lost writes of this partition: state dropped; reloading and replaying from the stored offset",
      );
    }
  }

  /** Keep memory bounded: drop flushed entities of this partition, least recently touched first. */
  function evict(part: PartitionState): void {
    let over = entitiesHeld() - config.memory.maxEntities;
    if (over <= 0) return;
    // A tenth of headroom, so the next batch does not evict again at once.
    over += Math.floor(config.memory.maxEntities / 10);
    for (const view of part.views) {
      const gone = view.evict(over);
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

  /**
   * After the last batch handler of a stop: what partitions catching up still hold goes to the store
   * (fenced as ever: if another replica claimed a partition meanwhile, nothing is written). No Kafka
   * commit: the consumer has left; the next owner starts after the stored offset.
   */
  async function flushHeld(): Promise<void> {
    for (const part of partitions.values()) {
      if (part.idle) continue;
      await flusher
        .flush(part, { commit: false })
        .catch((error: unknown) =>
          logger.warn(
            { err: error, topic: part.topic, partition: part.partition },
            "state not flushed before stop: its records are replayed from the stored offset",
          ),
        );
    }
  }

  const done = loop.done.finally(() => closeAll());
  done.catch(() => {});
  let closed: Promise<void> | undefined;
  function closeAll(): Promise<void> {
    closed ??= (async () => {
      // A stop (not a failure) comes after the last batch handler: `done` resolves once the consumer left.
      if (stopping) await flushHeld();
      // FeatureUpdates of flushes already written go out before the producer closes.
      await publisher
        ?.drain()
        .catch((error) => logger.warn({ err: error }, "FeatureUpdates not sent before stop"));
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
