import { Kafka, type KafkaConfig, logLevel } from "kafkajs";

export interface KafkaOptions {
  /** Defaults to the KAFKA_BROKERS environment variable (comma-separated host:port). */
  brokers?: string[];
  clientId?: string;
  /** Bounded by default so a stopped broker gives an error in seconds, not a hang. */
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  retries?: number;
  logLevel?: logLevel;
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

export function createKafka(options: KafkaOptions = {}): Kafka {
  const config: KafkaConfig = {
    clientId: options.clientId ?? "tessera",
    brokers: options.brokers ?? brokersFromEnv(),
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    retry: { retries: options.retries ?? 5, initialRetryTime: 200, maxRetryTime: 5000 },
    logLevel: options.logLevel ?? logLevel.WARN,
  };
  return new Kafka(config);
}
