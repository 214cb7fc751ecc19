/**
 * The Bus (bus.ts) on a real Kafka cluster, through KafkaJS: the one file that imports the client
 * library. Producers and admin calls pass through; the consumer maps KafkaJS's instrumentation
 * events to onGroupJoin/onCrash.
 */
import {
  CompressionTypes,
  Kafka,
  type Admin as KafkajsAdmin,
  type Consumer as KafkajsConsumer,
  logLevel as kafkajsLogLevel,
  Partitioners,
} from "kafkajs";
import type {
  Bus,
  BusAdmin,
  BusConsumer,
  BusProducer,
  ProducerSettings,
  RunOptions,
  TopicPartitionOffset,
  TopicPartitions,
} from "./bus.js";
import { BrokerUnavailableError } from "./errors.js";

export interface KafkaOptions {
  /** Defaults to the KAFKA_BROKERS environment variable (comma-separated host:port). */
  brokers?: string[];
  clientId?: string;
  /** Bounded by default so a stopped broker gives an error in seconds, not a hang. */
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  retries?: number;
  /** The client library's own log lines (default "warn"). */
  logLevel?: "nothing" | "error" | "warn" | "info" | "debug";
}

export function brokersFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env["KAFKA_BROKERS"];
  if (!raw)
    throw new Error(
      "KAFKA_BROKERS is not set (e.g. 127.0.0.1:9092; `npm run stack:up` writes .tessera/stack.env)",
    );
  return raw
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean);
}

const logLevels = {
  nothing: kafkajsLogLevel.NOTHING,
  error: kafkajsLogLevel.ERROR,
  warn: kafkajsLogLevel.WARN,
  info: kafkajsLogLevel.INFO,
  debug: kafkajsLogLevel.DEBUG,
} as const;

/** A bus on the Kafka cluster at `brokers` (default: KAFKA_BROKERS). */
export function createKafka(options: KafkaOptions = {}): Bus {
  const brokers = options.brokers ?? brokersFromEnv();
  const kafka = new Kafka({
    clientId: options.clientId ?? "tessera",
    brokers,
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    retry: { retries: options.retries ?? 5, initialRetryTime: 200, maxRetryTime: 5000 },
    logLevel: logLevels[options.logLevel ?? "warn"],
  });
  return {
    producer: (settings) => kafkajsProducer(kafka, brokers, settings),
    consumer: (settings) => new KafkajsBusConsumer(kafka.consumer(settings)),
    admin: () => kafkajsAdmin(kafka.admin(), brokers),
  };
}

/** KafkaJS's names for "no broker answered": the bus reports them as BrokerUnavailableError. */
const UNREACHABLE = /Connection|NumberOfRetriesExceeded|RequestTimeout|BrokerNotFound/;
const translated =
  (brokers: string[]) =>
  (error: unknown): never => {
    throw UNREACHABLE.test((error as Error)?.name ?? "") ? new BrokerUnavailableError(brokers, error) : error;
  };

function kafkajsProducer(kafka: Kafka, brokers: string[], settings: ProducerSettings = {}): BusProducer {
  const producer = kafka.producer({
    idempotent: settings.idempotent ?? false,
    ...(settings.maxInFlightRequests !== undefined && { maxInFlightRequests: settings.maxInFlightRequests }),
    allowAutoTopicCreation: settings.allowAutoTopicCreation ?? false,
    ...(settings.retries !== undefined && { retry: { retries: settings.retries } }),
    // murmur2 of the key, as the Java client (and the memory bus): named, so KafkaJS does not warn.
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const unreachable = translated(brokers);
  return {
    connect: () => producer.connect().catch(unreachable),
    disconnect: () => producer.disconnect(),
    send: ({ compression, ...request }) =>
      producer
        .send({ ...request, ...(compression === "gzip" && { compression: CompressionTypes.GZIP }) })
        .catch(unreachable),
  };
}

class KafkajsBusConsumer implements BusConsumer {
  constructor(private readonly consumer: KafkajsConsumer) {}
  connect = () => this.consumer.connect();
  subscribe = (options: { topics: string[]; fromBeginning?: boolean }) => this.consumer.subscribe(options);
  run = (options: RunOptions) => this.consumer.run(options);
  seek = (position: TopicPartitionOffset) => this.consumer.seek(position);
  pause = (topics: TopicPartitions[]) => this.consumer.pause(topics);
  resume = (topics: TopicPartitions[]) => this.consumer.resume(topics);
  commitOffsets = (offsets: TopicPartitionOffset[]) => this.consumer.commitOffsets(offsets);
  disconnect = () => this.consumer.disconnect();

  onGroupJoin(listener: (assignment: Record<string, number[]>) => void): () => void {
    return this.consumer.on(this.consumer.events.GROUP_JOIN, (event) =>
      listener(event.payload.memberAssignment as Record<string, number[]>),
    );
  }

  onCrash(listener: (error: Error, restart: boolean) => void): () => void {
    return this.consumer.on(this.consumer.events.CRASH, (event) =>
      listener(event.payload.error, event.payload.restart),
    );
  }
}

function kafkajsAdmin(admin: KafkajsAdmin, brokers: string[]): BusAdmin {
  const TOPIC = 2; // Kafka's ConfigResource type of a topic
  const unreachable = translated(brokers);
  return {
    connect: () => admin.connect().catch(unreachable),
    disconnect: () => admin.disconnect(),
    listTopics: () => admin.listTopics().catch(unreachable),
    createTopics: (options) => admin.createTopics(options).catch(unreachable),
    createPartitions: (options) => admin.createPartitions(options).catch(unreachable),
    deleteTopics: (options) => admin.deleteTopics(options).catch(unreachable),
    fetchTopicMetadata: (options) => admin.fetchTopicMetadata(options).catch(unreachable),
    fetchTopicOffsets: (topic) => admin.fetchTopicOffsets(topic).catch(unreachable),
    fetchOffsets: (options) => admin.fetchOffsets(options).catch(unreachable),
    deleteGroups: (groupIds) => admin.deleteGroups(groupIds).catch(unreachable),
    describeTopicConfigs: async (topics) =>
      (
        await admin
          .describeConfigs({
            includeSynonyms: false,
            resources: topics.map((name) => ({ type: TOPIC, name })),
          })
          .catch(unreachable)
      ).resources,
    alterTopicConfigs: async (changes) => {
      await admin
        .alterConfigs({
          validateOnly: false,
          resources: changes.map((c) => ({ type: TOPIC, name: c.topic, configEntries: c.configEntries })),
        })
        .catch(unreachable);
    },
  };
}
