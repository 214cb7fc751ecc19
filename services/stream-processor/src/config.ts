/**
 * The processor's configuration: a YAML/JSON file plus TESSERA_PROCESSOR_* variables, validated
 * at start (libs/runtime). Connection settings default to the usual environment variables.
 */

import { tesseraTopics } from "@tessera/kafka";
import {
  bool,
  ConfigError,
  envList,
  int,
  type JsonSchema,
  loadConfig,
  obj,
  str,
  strings,
  type TracingConfig,
  tracingConfigSchema,
} from "@tessera/runtime";
import type { OnlineStoreConfig } from "@tessera/stores";

export interface ProcessorConfig {
  /** Consumer group suffix: the group id is `tessera-processor-<name>`. */
  name: string;
  /** Feature definitions file (.yaml, .yml, .json, .ts, .js, .mjs). */
  definitions: string;
  /** Views to run (default: every view in the definitions). */
  views: string[];
  kafka: {
    brokers: string[];
    schemaRegistryUrl: string;
    clientId: string;
    /** A member that stops heartbeating loses its partitions after this long (broker minimum 6 s). */
    sessionTimeoutMs: number;
    heartbeatIntervalMs: number;
    /**
     * How long a rebalance waits for every member to rejoin. A member frozen during a rebalance holds
     * the whole group up this long (kafkajs default 60 s); it must still cover the longest batch.
     */
    rebalanceTimeoutMs: number;
    /** Most bytes fetched per partition at once: a batch's records end in one flush, so bigger batches coalesce more writes. */
    maxBytesPerPartition: number;
  };
  store: {
    kind: "redis" | "cassandra" | "memory";
    redisUrl: string;
    /** Redis Cluster seed nodes (host:port); when set, redisUrl is not used. */
    redisCluster: string[];
    /** Replicas that must acknowledge each flush before it counts (Redis WAIT); see docs/scaling.md. */
    redisReplicaAcks: number;
    cassandraContactPoints: string[];
    cassandraLocalDc: string;
    keyspace: string;
    keyPrefix: string;
    timeoutMs: number;
  };
  topics: { deadLetter: string; features: string };
  /** Publish FeatureUpdate records after each flush (drift workers read them). */
  publishFeatures: boolean;
  /**
   * A flush happens after maxEvents records, or after maxTiles / (features per record) records
   * (each record can touch one tile per feature: this bounds one atomic write, e.g. under
   * Cassandra's batch_size_fail_threshold), or after maxDelayMs — whichever comes first, and at the
   * end of every batch. While a partition is more than catchUpLag records behind its end, it flushes
   * for throughput instead: once as many entities changed as a flush may hold records, or after
   * catchUpMaxDelayMs (each entity is written once per flush however many events it took).
   */
  flush: {
    maxEvents: number;
    maxTiles: number;
    maxDelayMs: number;
    catchUpLag: number;
    catchUpMaxDelayMs: number;
  };
  /** How far ahead of the processing clock an event may be stamped before it is "future". */
  maxSkewMs: number;
  /** Entity keys longer than this (UTF-16 units) are dead-lettered: a hostile key must not reach the store. */
  maxEntityKeyLength: number;
  memory: { maxEntities: number };
  /** Partitions handled at the same time (store round trips overlap). */
  concurrency: number;
  /** Ready when every assigned partition is within this many records of its end. */
  readyMaxLag: number;
  ops: { host: string; port: number };
  fromBeginning: boolean;
  /** OpenTelemetry traces (docs/tracing.md); off by default. */
  tracing: TracingConfig;
}

const env = process.env;

/** The JSON Schema of the config; defaults come from the environment the process was started in. */
export function configSchema(environment: NodeJS.ProcessEnv = env): JsonSchema {
  return {
    type: "object",
    additionalProperties: false,
    required: ["name", "definitions"],
    properties: {
      name: { type: "string", pattern: "^[A-Za-z0-9._-]+$", description: "consumer group suffix" },
      definitions: str("feature definitions file", { minLength: 1 }),
      views: strings("views to run (empty: all)", []),
      kafka: obj({
        brokers: strings(
          "Kafka brokers host:port",
          envList(environment["KAFKA_BROKERS"]) ?? ["127.0.0.1:9092"],
        ),
        schemaRegistryUrl: str("schema registry URL", {
          default: environment["SCHEMA_REGISTRY_URL"] ?? "http://127.0.0.1:8081",
        }),
        clientId: str("Kafka client id", { default: "tessera-processor" }),
        sessionTimeoutMs: int("consumer group session timeout (ms)", 30_000, 1),
        heartbeatIntervalMs: int("consumer heartbeat interval (ms)", 3000, 1),
        rebalanceTimeoutMs: int("consumer group rebalance timeout (ms)", 60_000, 1),
        maxBytesPerPartition: int("most bytes fetched per partition at once", 4 * 1024 * 1024, 1),
      }),
      store: obj({
        kind: { type: "string", enum: ["redis", "cassandra", "memory"], default: "redis" },
        redisUrl: str("Redis URL", { default: environment["REDIS_URL"] ?? "redis://127.0.0.1:6379" }),
        redisCluster: strings("Redis Cluster seed nodes host:port (empty: a single server)", []),
        redisReplicaAcks: int("replicas that must acknowledge each flush (Redis WAIT)", 0, 0),
        cassandraContactPoints: strings(
          "Cassandra contact points",
          envList(environment["CASSANDRA_CONTACT_POINTS"]) ?? ["127.0.0.1:9042"],
        ),
        cassandraLocalDc: str("Cassandra local data centre", {
          default: environment["CASSANDRA_LOCAL_DC"] ?? "datacenter1",
        }),
        keyspace: str("Cassandra keyspace", { default: "tessera" }),
        keyPrefix: str("Redis key prefix", { default: "tessera:" }),
        timeoutMs: int(
          "store call timeout (ms); a flush is one atomic write, so allow for a large one",
          5000,
          1,
        ),
      }),
      topics: obj({
        deadLetter: str("dead-letter topic", { default: tesseraTopics.deadLetter }),
        features: str("FeatureUpdate topic", { default: tesseraTopics.features }),
      }),
      publishFeatures: bool("publish FeatureUpdate records after each flush", true),
      flush: obj({
        maxEvents: int("flush after this many applied events", 50_000, 1),
        maxTiles: int("most tile writes one flush may hold", 200_000, 1),
        maxDelayMs: int("flush at least this often while events arrive (ms)", 200, 1),
        catchUpLag: int("records behind a partition's end from which it flushes for throughput", 50_000, 0),
        catchUpMaxDelayMs: int("flush at least this often while catching up (ms)", 10_000, 1),
      }),
      maxSkewMs: int("allowed future skew (ms)", 5 * 60_000, 0),
      maxEntityKeyLength: int("longest entity key accepted", 1024, 1),
      memory: obj({ maxEntities: int("entities held in memory (all partitions and views)", 200_000, 1) }),
      concurrency: int("partitions processed concurrently", 2, 1),
      readyMaxLag: int("ready when lag is at most this many records", 10_000, 0),
      ops: obj({
        host: str("ops server bind address", { default: "127.0.0.1" }),
        port: int("ops server port (0: any free port)", 9101, 0),
      }),
      fromBeginning: bool("a new consumer group starts at the earliest offset", true),
      tracing: tracingConfigSchema,
    },
  };
}

export const ENV_PREFIX = "TESSERA_PROCESSOR";

/** Load and validate: file (optional) < environment < overrides. Throws ConfigError naming each bad field. */
export function loadProcessorConfig(
  options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {},
): ProcessorConfig {
  const environment = options.env ?? env;
  return loadConfig<ProcessorConfig>({
    schema: configSchema(environment),
    envPrefix: ENV_PREFIX,
    file: options.file,
    env: environment,
    overrides: options.overrides,
  });
}

/** The store config libs/stores takes. */
export function storeConfig(config: ProcessorConfig): OnlineStoreConfig {
  const s = config.store;
  switch (s.kind) {
    case "redis":
      return {
        kind: "redis",
        ...(s.redisCluster.length > 0 ? { cluster: s.redisCluster } : { url: s.redisUrl }),
        keyPrefix: s.keyPrefix,
        timeoutMs: s.timeoutMs,
        replicaAcks: s.redisReplicaAcks,
      };
    case "cassandra":
      return {
        kind: "cassandra",
        contactPoints: s.cassandraContactPoints,
        localDataCenter: s.cassandraLocalDc,
        keyspace: s.keyspace,
        timeoutMs: s.timeoutMs,
      };
    case "memory":
      return { kind: "memory" };
  }
}

export { ConfigError };
