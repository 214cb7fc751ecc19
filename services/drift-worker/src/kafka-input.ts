/**
 * The Kafka side: one consumer group over the features, predictions and labels topics, Avro via
 * the registry. A record that cannot be used goes to the dead-letter topic with its reason before
 * any record of its batch is applied, so a retried batch is never counted twice. Consumer lag of
 * this group and of the configured upstream groups is polled for the freshness checks.
 */
import {
  ConsumerLoop,
  type DeadLetter,
  type DeadLetterPublisher,
  deadLetterOf,
  type SchemaRegistry,
  schemaIdOf,
  TesseraKafkaError,
} from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import { spanContextFromHeaders } from "@tessera/runtime/tracing";
import type { Admin, Batch, Kafka } from "kafkajs";
import type { Registry } from "prom-client";
import type { DriftWorkerConfig } from "./config.js";
import { AvroDecoder } from "./decode.js";
import type { DriftMonitor, LagReading } from "./monitor.js";
import { RecordError, toFeatureUpdate, toLabel, toPrediction } from "./records.js";

export interface KafkaInputOptions {
  kafka: Kafka;
  registry: SchemaRegistry;
  deadLetters: DeadLetterPublisher;
  config: DriftWorkerConfig;
  monitor: DriftMonitor;
  logger: Logger;
  metricsRegistry?: Registry;
  handleSignals?: boolean;
}

/** Registry trouble (it is down, or answers 5xx) is worth a retry; a bad payload is not. */
function registryUnavailable(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  if (typeof status === "number") return status >= 500 || status === 429;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^(ECONN|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|ERR_NETWORK)/.test(code);
}

export class KafkaInput {
  readonly loop: ConsumerLoop;
  private readonly decoder: AvroDecoder;
  private admin?: Admin;
  private joined = false;
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
      metricsRegistry: options.metricsRegistry,
      handleBatch: (batch) => this.handleBatch(batch),
      onError: (error, info) => options.logger.warn({ err: error, ...info }, "batch failed"),
    });
    this.loop.consumer.on(this.loop.consumer.events.GROUP_JOIN, () => {
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
    await this.loop.stop().catch(() => {});
    await this.admin?.disconnect().catch(() => {});
  }

  private async handleBatch(batch: Batch): Promise<void> {
    const { topics } = this.options.config;
    const good: Array<() => void> = [];
    const bad: DeadLetter[] = [];
    for (const message of batch.messages) {
      const source = { topic: batch.topic, partition: batch.partition, message };
      if (!message.value || schemaIdOf(message.value) === undefined) {
        bad.push(
          deadLetterOf(
            source,
            "decode_error",
            "not a Confluent-framed Avro record (magic byte 0 + schema id)",
          ),
        );
        continue;
      }
      let decoded: unknown;
      try {
        decoded = await this.decoder.decode(batch.topic, message.value);
      } catch (error) {
        if (registryUnavailable(error)) {
          throw new TesseraKafkaError(`schema registry unavailable: ${(error as Error).message}`, {
            retriable: true,
            cause: error,
          });
        }
        const status = (error as { status?: unknown }).status;
        bad.push(
          deadLetterOf(
            source,
            status === 404 ? "unknown_schema" : "decode_error",
            `schema id ${schemaIdOf(message.value)}: ${(error as Error).message}`,
          ),
        );
        continue;
      }
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
