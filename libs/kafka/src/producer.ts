/**
 * The producer API for producer teams: typed publish, idempotent, acks=all, and validation against
 * the registered schema before anything is sent.
 */
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { injectTraceHeaders, tracingEnabled } from "@tessera/runtime/tracing";
import type avro from "avsc";
import type { Registry } from "prom-client";
import type { Bus, BusAdmin, BusHeaders, BusProducer, SentRecords } from "./bus.js";
import {
  BrokerUnavailableError,
  SchemaValidationError,
  TesseraKafkaError,
  UnknownTopicError,
} from "./errors.js";
import { createKafka, type KafkaOptions } from "./kafkajs-bus.js";
import { kafkaMetrics } from "./metrics.js";
import { PartitionedSender } from "./partitioned-send.js";
import { type RegisteredSchema, SchemaRegistry, valueSubject } from "./serde.js";
import { avroProblems, parseAvroSchema } from "./validate.js";

export interface ProducerOptions extends KafkaOptions {
  kafka?: Bus;
  /** Defaults to SCHEMA_REGISTRY_URL. */
  registry?: SchemaRegistry;
  /**
   * Schemas this producer brings, by topic (Avro as object or JSON text). They are registered on
   * first use under `<topic>-value`. Topics without one use the latest registered schema.
   */
  schemas?: Record<string, string | object>;
  metricsRegistry?: Registry;
}

export interface PublishOptions {
  key?: string | Buffer | null;
  headers?: BusHeaders;
  partition?: number;
}

interface TopicBinding {
  schema: RegisteredSchema;
  type?: avro.Type;
  serializer: ReturnType<SchemaRegistry["serializer"]>;
}

const tracer = trace.getTracer("tessera.kafka");

/** `Events` maps topic names to their event types, so `publish` checks the event at compile time too. */
export class TesseraProducer<Events extends Record<string, object> = Record<string, object>> {
  private readonly kafka: Bus;
  private readonly producer: BusProducer;
  private readonly admin: BusAdmin;
  private readonly registry: SchemaRegistry;
  private readonly ownsRegistry: boolean;
  private readonly bindings = new Map<string, Promise<TopicBinding>>();
  private readonly knownTopics = new Set<string>();
  private readonly metrics;
  private readonly sender: PartitionedSender;
  private connected?: Promise<void>;

  constructor(private readonly options: ProducerOptions = {}) {
    this.kafka = options.kafka ?? createKafka({ clientId: "tessera-producer", ...options });
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    this.admin = this.kafka.admin();
    this.sender = new PartitionedSender(this.producer, this.admin);
    this.ownsRegistry = options.registry === undefined;
    this.registry = options.registry ?? new SchemaRegistry();
    this.metrics = kafkaMetrics(options.metricsRegistry);
  }

  /** Connects lazily on first publish; call it to fail fast at start-up instead. */
  connect(): Promise<void> {
    this.connected ??= Promise.all([this.producer.connect(), this.admin.connect()]).then(
      () => undefined,
      (error) => {
        this.connected = undefined;
        throw error instanceof BrokerUnavailableError
          ? error
          : new BrokerUnavailableError(this.brokers(), error);
      },
    );
    return this.connected;
  }

  async publish<T extends keyof Events & string>(
    topic: T,
    event: Events[T],
    options: PublishOptions = {},
  ): Promise<SentRecords> {
    const [metadata] = await this.publishBatch(topic, [{ value: event, ...options }]);
    return metadata!;
  }

  /**
   * Validates every event first: if any is invalid, none is sent. One produce request per partition
   * (see partitioned-send.ts), so each partition's events are written in order; it resolves once all
   * are acknowledged by every in-sync replica. If it rejects, the events of some partitions may have
   * been written (a retry of the whole batch may write those twice).
   */
  async publishBatch<T extends keyof Events & string>(
    topic: T,
    events: Array<{ value: Events[T] } & PublishOptions>,
  ): Promise<SentRecords[]> {
    // One PRODUCER span per batch, its context in every record's headers (W3C traceparent), so a
    // consumer continues the trace. No span at all unless a tracer provider is registered.
    const span = tracingEnabled()
      ? tracer.startSpan(`${topic} publish`, {
          kind: SpanKind.PRODUCER,
          attributes: {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": events.length,
          },
        })
      : undefined;
    const traced = span && trace.setSpan(context.active(), span);
    try {
      await this.connect();
      const binding = await this.bind(topic);
      for (const [index, e] of events.entries()) {
        this.validate(topic, binding, e.value, events.length > 1 ? index : undefined);
      }
      const toMessage = async (e: (typeof events)[number]) => ({
        key: e.key ?? null,
        value: await binding.serializer.serialize(topic, e.value),
        headers:
          traced && !e.headers?.["traceparent"] ? injectTraceHeaders({ ...e.headers }, traced) : e.headers,
        partition: e.partition,
      });
      // The serde looks the subject up in the registry on first use and caches it only once the
      // answer is in: the first event goes alone so a large batch makes one request, not one each.
      const messages = events.length > 0 ? [await toMessage(events[0]!)] : [];
      messages.push(...(await Promise.all(events.slice(1).map(toMessage))));
      const metadata = await this.sender.send(topic, messages);
      this.metrics.produced.inc({ topic }, events.length);
      return metadata;
    } catch (error) {
      const wrapped = this.wrap(topic, error);
      this.metrics.produceErrors.inc({ topic, error: wrapped.name }, events.length);
      span?.recordException(wrapped);
      span?.setStatus({ code: SpanStatusCode.ERROR, message: wrapped.message });
      throw wrapped;
    } finally {
      span?.end();
    }
  }

  async disconnect(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
    if (this.ownsRegistry) this.registry.close();
  }

  /** The schema id each topic's records are written with (after first use). */
  async schemaFor(topic: string): Promise<RegisteredSchema> {
    return (await this.bind(topic)).schema;
  }

  private validate(topic: string, binding: TopicBinding, value: unknown, index?: number): void {
    if (!binding.type) return; // JSON Schema: the serializer validates and names the rule.
    const problems = avroProblems(binding.type, value);
    if (problems.length > 0) {
      throw new SchemaValidationError(
        topic,
        index === undefined ? problems : problems.map((p) => `events[${index}].${p}`),
      );
    }
  }

  private bind(topic: string): Promise<TopicBinding> {
    let binding = this.bindings.get(topic);
    if (!binding) {
      binding = this.resolve(topic);
      this.bindings.set(topic, binding);
      // A failure (registry down, topic missing) must not stick: the next publish tries again.
      binding.catch(() => this.bindings.delete(topic));
    }
    return binding;
  }

  private async resolve(topic: string): Promise<TopicBinding> {
    await this.requireTopic(topic);
    const subject = valueSubject(topic);
    const own = this.options.schemas?.[topic];
    let schema: RegisteredSchema;
    if (own !== undefined) {
      const text = typeof own === "string" ? own : JSON.stringify(own);
      const id = await this.registry.register(subject, text);
      schema = { id, schema: text, type: "AVRO" };
    } else {
      schema = await this.registry.latest(subject);
    }
    return {
      schema,
      type: schema.type === "AVRO" ? parseAvroSchema(schema.schema) : undefined,
      serializer: this.registry.serializer(schema),
    };
  }

  private async requireTopic(topic: string): Promise<void> {
    if (this.knownTopics.has(topic)) return;
    const topics = await this.admin.listTopics();
    for (const t of topics) this.knownTopics.add(t);
    if (!this.knownTopics.has(topic)) throw new UnknownTopicError(topic);
  }

  private brokers(): string[] {
    return this.options.brokers ?? (process.env["KAFKA_BROKERS"] ?? "").split(",");
  }

  private wrap(topic: string, error: unknown): TesseraKafkaError {
    // The bus reports an unreachable cluster as BrokerUnavailableError (a TesseraKafkaError).
    if (error instanceof TesseraKafkaError) return error;
    const name = (error as Error)?.name ?? "";
    if (name === "SerializationError" || /validat/i.test((error as Error)?.message ?? "")) {
      return new SchemaValidationError(topic, [(error as Error).message]);
    }
    return new TesseraKafkaError((error as Error)?.message ?? String(error), {
      retriable: (error as { retriable?: boolean })?.retriable === true,
      cause: error,
    });
  }
}
