/**
 * The Kafka side: one consumer group over the features, predictions and labels topics, Avro via
 * the registry. A record that cannot be used goes to the dead-letter topic with its reason before
 * any record of its batch is applied, so a retried batch is never counted twice. Consumer lag of
 * this group and of the configured upstream groups is polled for the freshness checks.
 */
import {
  AvroDecoder,
  type Bus,
  type BusAdmin,
  type BusBatch,
  ConsumerLoop,
  type DeadLetter,
  type DeadLetterPublisher,
  deadLetterOf,
  type SchemaRegistry,
} from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import { spanContextFromHeaders } from "@tessera/runtime/tracing";
import type { Registry } from "prom-client";
import type { DriftWorkerConfig } from "./config.js";
import type { DriftMonitor, LagReading } from "./monitor.js";
import { RecordError, toFeatureUpdate, toLabel, toPrediction } from "./records.js";

export interface KafkaInputOptions {
  kafka: Bus;
  registry: SchemaRegistry;
  deadLetters: DeadLetterPublisher;
  config: DriftWorkerConfig;
  monitor: DriftMonitor;
  logger: Logger;
  metricsRegistry?: Registry;
  handleSignals?: boolean;
  /**
   * Offsets are committed by the owner of the state (`commit`) once a save holds what was applied
   * up to them, not after each batch: a restart then re-reads exactly what the state lacks.
   */
  manualCommit?: boolean;
}

/** Per topic, per partition: the next offset to apply (what the saved state has applied up to). */
export type Positions = Record<string, Record<string, number>>;

export class KafkaInput {
  readonly loop: ConsumerLoop;
  private readonly decoder: AvroDecoder;
  private admin?: BusAdmin;
  private joined = false;
  private stopped = false;
  private readonly positions = new Map<string, Map<number, number>>();
  /** Restored positions: records below them are already in the restored state. */
  private resumeFrom = new Map<string, Map<number, number>>();
  /** Set when the consumer loop stopped on a fatal error: the worker no longer sees new data. */
  failure?: unknown;

  constructor(private readonly options: KafkaInputOptions) {
    const { config } = options;
    this.decoder = new AvroDecoder(options.registry);
    this.loop = new ConsumerLoop({
      kafka: options.kafka,
      groupId: config.groupId,
      topics: [config.topics.features, config.topics.predictions, config.topics.labels],
      fromBeginning: config.fromBeginning,
      handleSignals: options.handleSignals ?? false,
      autoCommit: !options.manualCommit,
      metricsRegistry: options.metricsRegistry,
      handleBatch: (batch) => this.handleBatch(batch),
      onError: (error, info) => options.logger.warn({ err: error, ...info }, "batch failed"),
    });
    this.loop.consumer.onGroupJoin(() => {
      this.joined = true;
    });
    this.loop.done.catch((error) => {
      this.failure = error;
    });
  }

  get ready(): boolean {
    return this.joined && this.failure === undefined;
  }

  async start(): Promise<void> {
    await this.loop.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop.stop().catch(() => {});
    await this.admin?.disconnect().catch(() => {});
  }

  /** Where the applied records end, per partition (saved with the state). */
  applied(): Positions {
    const out: Positions = {};
    for (const [topic, partitions] of this.positions) out[topic] = Object.fromEntries(partitions);
    return out;
  }

  /** Continues from saved positions: what lies below them is skipped when the group re-reads it. */
  resume(saved: Positions): void {
    for (const [topic, partitions] of Object.entries(saved)) {
      const map = new Map(Object.entries(partitions).map(([p, offset]) => [Number(p), offset]));
      this.resumeFrom.set(topic, map);
      this.positions.set(topic, new Map(map));
    }
  }

  /** Commits the group's offsets to saved positions (best effort: the saved state is the truth). */
  async commit(saved: Positions): Promise<void> {
    const offsets = Object.entries(saved).flatMap(([topic, partitions]) =>
      Object.entries(partitions).map(([partition, offset]) => ({
        topic,
        partition: Number(partition),
        offset: String(offset),
      })),
    );
    // After stop the group is left: the next owner re-reads from the last commit and skips.
    if (offsets.length > 0 && !this.stopped) await this.loop.consumer.commitOffsets(offsets);
  }

  private async handleBatch(batch: BusBatch): Promise<void> {
    const { topics } = this.options.config;
    const good: Array<() => void> = [];
    const bad: DeadLetter[] = [];
    const from = this.resumeFrom.get(batch.topic)?.get(batch.partition) ?? 0;
    const fresh = batch.messages.filter((m) => Number(m.offset) >= from); // older: in the restored state
    // A registry outage throws a retriable error here, before anything of the batch is applied.
    await this.decoder.prepare(fresh.map((m) => m.value));
    for (const message of fresh) {
      const source = { topic: batch.topic, partition: batch.partition, message };
      const result = this.decoder.decodePrepared(message.value);
      if (!result.ok) {
        bad.push(deadLetterOf(source, result.reason, result.detail));
        continue;
      }
      const decoded = result.value;
      try {
        const monitor = this.options.monitor;
        if (batch.topic === topics.features) {
          const update = toFeatureUpdate(decoded);
          const trace = spanContextFromHeaders(message.headers); // tracing: the flush that computed it
          good.push(() => monitor.ingestFeatureUpdate(update, trace));
        } else if (batch.topic === topics.predictions) {
          const prediction = toPrediction(decoded);
          good.push(() => monitor.ingestPrediction(prediction));
        } else {
          const label = toLabel(decoded);
          good.push(() => monitor.ingestLabel(label));
        }
      } catch (error) {
        if (!(error instanceof RecordError)) throw error;
        bad.push(deadLetterOf(source, error.reason, error.message));
      }
    }
    // Dead letters first: if Kafka refuses them the batch is retried with nothing applied yet.
    if (bad.length > 0) {
      await this.options.deadLetters.publish(bad);
      this.options.logger.warn(
        { topic: batch.topic, count: bad.length, reason: bad[0]!.reason },
        "records dead-lettered",
      );
    }
    for (const apply of good) apply();
    const partitions = this.positions.get(batch.topic) ?? new Map<number, number>();
    partitions.set(batch.partition, Number(batch.lastOffset()) + 1);
    this.positions.set(batch.topic, partitions);
  }

  /** Lag of this worker's group on its topics, and of each configured upstream group. */
  async pollLag(): Promise<LagReading[]> {
    if (!this.admin) {
      this.admin = this.options.kafka.admin();
      await this.admin.connect();
    }
    const { config } = this.options;
    const watched = [
      ...[config.topics.features, config.topics.predictions, config.topics.labels].map((topic) => ({
        group: config.groupId,
        topic,
      })),
      ...config.freshness.groups,
    ];
    const readings: LagReading[] = [];
    for (const { group, topic } of watched) {
      const [ends, committed] = await Promise.all([
        this.admin.fetchTopicOffsets(topic),
        this.admin.fetchOffsets({ groupId: group, topics: [topic] }),
      ]);
      const byPartition = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]));
      let lag = 0;
      for (const end of ends) {
        const at = byPartition.get(end.partition) ?? -1;
        lag += Math.max(0, Number(end.high) - (at >= 0 ? at : Number(end.low)));
      }
      readings.push({ group, topic, lag });
    }
    return readings;
  }
}
