import { Counter, register as defaultRegistry, type Registry } from "prom-client";

export interface KafkaMetrics {
  produced: Counter<"topic">;
  produceErrors: Counter<"topic" | "error">;
  consumed: Counter<"topic">;
  handlerRetries: Counter<"group">;
  deadLetters: Counter<"topic" | "reason">;
}

// prom-client refuses a second metric of the same name in one registry: one set per registry.
const byRegistry = new WeakMap<Registry, KafkaMetrics>();

export function kafkaMetrics(registry: Registry = defaultRegistry): KafkaMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    const registers = [registry];
    metrics = {
      produced: new Counter({
        name: "tessera_kafka_messages_produced_total",
        help: "Records acknowledged by Kafka, by topic.",
        labelNames: ["topic"],
        registers,
      }),
      produceErrors: new Counter({
        name: "tessera_kafka_produce_errors_total",
        help: "Records not sent, by topic and error class (validation, unknown topic, broker).",
        labelNames: ["topic", "error"],
        registers,
      }),
      consumed: new Counter({
        name: "tessera_kafka_messages_consumed_total",
        help: "Records handed to a consumer loop's handler, by topic.",
        labelNames: ["topic"],
        registers,
      }),
      handlerRetries: new Counter({
        name: "tessera_kafka_handler_retries_total",
        help: "Batches retried after a retriable error, by consumer group.",
        labelNames: ["group"],
        registers,
      }),
      deadLetters: new Counter({
        name: "tessera_dead_letters_total",
        help: "Records sent to the dead-letter topic, by source topic and reason.",
        labelNames: ["topic", "reason"],
        registers,
      }),
    };
    byRegistry.set(registry, metrics);
  }
  return metrics;
}
