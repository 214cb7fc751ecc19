/**
 * Records a service cannot use go to the dead-letter topic byte for byte, with where they came from
 * and why: nothing bad is dropped silently, nothing bad stops the service.
 */
import { readFileSync } from "node:fs";
import type { Registry } from "prom-client";
import type { BusHeaders, BusProducer, BusRecord } from "./bus.js";
import { kafkaMetrics } from "./metrics.js";
import { type SchemaRegistry, valueSubject } from "./serde.js";
import { tesseraTopics } from "./topics.js";
import type { DeadLetterRecord } from "./wire.js";

export const defaultDeadLetterTopic = tesseraTopics.deadLetter;

/** The DeadLetter Avro schema from schemas/avro (the same path from src/ and from dist/). */
export const deadLetterSchema: object = JSON.parse(
  readFileSync(new URL("../../../schemas/avro/dead_letter.avsc", import.meta.url), "utf8"),
);

export interface DeadLetter {
  topic: string;
  partition: number;
  offset: string | number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: BusHeaders;
  /** Short machine-readable cause: decode_error, schema_mismatch, missing_field, late, future, ... */
  reason: string;
  /** One line for a human, naming the field where there is one. */
  detail: string;
}

function headerBytes(headers: BusHeaders | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = Buffer.isBuffer(first) ? first : Buffer.from(String(first));
  }
  return out;
}

/** A dead letter for a consumed message, keeping its original key, value and headers. */
export function deadLetterOf(
  source: { topic: string; partition: number; message: BusRecord },
  reason: string,
  detail: string,
): DeadLetter {
  return {
    topic: source.topic,
    partition: source.partition,
    offset: source.message.offset,
    key: source.message.key,
    value: source.message.value,
    headers: source.message.headers,
    reason,
    detail,
  };
}

export class DeadLetterPublisher {
  private serializer?: Promise<ReturnType<SchemaRegistry["serializer"]>>;
  private readonly metrics;

  constructor(
    private readonly options: {
      producer: BusProducer;
      registry: SchemaRegistry;
      service: string;
      topic?: string;
      metricsRegistry?: Registry;
    },
  ) {
    this.metrics = kafkaMetrics(options.metricsRegistry);
  }

  get topic(): string {
    return this.options.topic ?? defaultDeadLetterTopic;
  }

  /** Publish a batch of dead letters in one request. Throws if Kafka does not take them. */
  async publish(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const serializer = await this.getSerializer();
    const now = Date.now();
    const messages = await Promise.all(
      letters.map(async (letter) => {
        const record: DeadLetterRecord = {
          topic: letter.topic,
          partition: letter.partition,
          offset: Number(letter.offset),
          key: letter.key,
          value: letter.value,
          headers: headerBytes(letter.headers),
          reason: letter.reason,
          detail: letter.detail.slice(0, 2000),
          service: this.options.service,
          failed_at: now,
        };
        return {
          key: letter.key,
          value: await serializer.serialize(this.topic, record),
          headers: { "tessera-reason": letter.reason, "tessera-source-topic": letter.topic },
        };
      }),
    );
    await this.options.producer.send({ topic: this.topic, acks: -1, messages });
    for (const letter of letters)
      this.metrics.deadLetters.inc({ topic: letter.topic, reason: letter.reason });
  }

  private getSerializer() {
    this.serializer ??= this.options.registry
      .register(valueSubject(this.topic), deadLetterSchema)
      .then((id) =>
        this.options.registry.serializer({ id, schema: JSON.stringify(deadLetterSchema), type: "AVRO" }),
      );
    this.serializer.catch(() => {
      this.serializer = undefined;
    });
    return this.serializer;
  }
}
