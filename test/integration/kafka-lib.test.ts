/** Topic admin, the consumer loop and the dead-letter publisher against the real broker and registry. */
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Bus,
  type BusBatch,
  ConsumerLoop,
  createKafka,
  DeadLetterPublisher,
  deadLetterOf,
  ensureTopics,
  SchemaRegistry,
  TesseraKafkaError,
} from "../../libs/kafka/src/index.js";
import { kafkaBrokers, services, uniqueName } from "../support/index.js";

let kafka: Bus;
beforeAll(() => {
  kafka = createKafka({ brokers: kafkaBrokers(), logLevel: "nothing" });
});

async function produce(topic: string, values: string[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: values.map((value) => ({ value })) });
  await producer.disconnect();
}

describe("ensureTopics", () => {
  it("creates, then is a no-op, then adds partitions and updates retention", async () => {
    const topic = uniqueName("admin");
    const first = await ensureTopics(kafka, [{ topic, partitions: 2, retentionMs: 3_600_000 }]);
    expect(first).toEqual({ created: [topic], existing: [], updated: [] });

    const second = await ensureTopics(kafka, [{ topic, partitions: 2, retentionMs: 3_600_000 }]);
    expect(second).toEqual({ created: [], existing: [topic], updated: [] });

    const third = await ensureTopics(kafka, [{ topic, partitions: 4, retentionMs: 7_200_000 }]);
    expect(third.updated).toEqual([topic]);

    const admin = kafka.admin();
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    const configs = await admin.describeTopicConfigs([topic]);
    await admin.disconnect();
    expect(metadata.topics[0]!.partitions).toHaveLength(4);
    const retention = configs[0]!.configEntries.find((e) => e.configName === "retention.ms");
    expect(retention?.configValue).toBe("7200000");
  });
});

describe("ConsumerLoop", () => {
  it("retries a retriable failure with backoff and delivers the same batch again", async () => {
    const topic = uniqueName("loop-retry");
    await ensureTopics(kafka, [{ topic, partitions: 1 }]);
    await produce(topic, ["a", "b", "c"]);

    const seen: string[][] = [];
    let failures = 2;
    const loop = new ConsumerLoop({
      kafka,
      groupId: uniqueName("loop-retry-group"),
      topics: [topic],
      fromBeginning: true,
      handleSignals: false,
      retry: { initialMs: 50 },
      metricsRegistry: new Registry(),
      async handleBatch(batch: BusBatch) {
        seen.push(batch.messages.map((m) => String(m.value)));
        if (failures-- > 0) throw new TesseraKafkaError("store briefly away", { retriable: true });
      },
    });
    await loop.start();
    await waitFor(() => seen.length >= 3);
    await loop.stop();
    await expect(loop.done).resolves.toBeUndefined();
    // The failed batch came back whole each time; nothing was skipped.
    expect(seen.slice(0, 3)).toEqual([
      ["a", "b", "c"],
      ["a", "b", "c"],
      ["a", "b", "c"],
    ]);
  });

  it("stops on a fatal error and surfaces it through done, leaving the batch uncommitted", async () => {
    const topic = uniqueName("loop-fatal");
    await ensureTopics(kafka, [{ topic, partitions: 1 }]);
    await produce(topic, ["x"]);
    const groupId = uniqueName("loop-fatal-group");
    const loop = new ConsumerLoop({
      kafka,
      groupId,
      topics: [topic],
      fromBeginning: true,
      handleSignals: false,
      metricsRegistry: new Registry(),
      async handleBatch() {
        throw new TesseraKafkaError("definition is broken");
      },
    });
    await loop.start();
    await expect(loop.done).rejects.toThrow("definition is broken");

    const admin = kafka.admin();
    await admin.connect();
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    await admin.disconnect();
    expect(committed[0]!.partitions[0]!.offset).toBe("-1");
  });

  it("on stop, finishes the batch in hand and commits it", async () => {
    const topic = uniqueName("loop-stop");
    await ensureTopics(kafka, [{ topic, partitions: 1 }]);
    await produce(topic, ["1", "2"]);
    const groupId = uniqueName("loop-stop-group");
    let finished = false;
    let inHandler!: () => void;
    const entered = new Promise<void>((resolve) => {
      inHandler = resolve;
    });
    const loop = new ConsumerLoop({
      kafka,
      groupId,
      topics: [topic],
      fromBeginning: true,
      handleSignals: false,
      metricsRegistry: new Registry(),
      async handleBatch() {
        inHandler();
        await new Promise((r) => setTimeout(r, 500));
        finished = true;
      },
    });
    await loop.start();
    await entered;
    await loop.stop();
    expect(finished).toBe(true);

    const admin = kafka.admin();
    await admin.connect();
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    await admin.disconnect();
    expect(committed[0]!.partitions[0]!.offset).toBe("2");
  });
});

describe("DeadLetterPublisher", () => {
  let registry: SchemaRegistry;
  afterAll(() => registry?.close());

  it("keeps the original bytes, where they came from and why", async () => {
    registry = new SchemaRegistry(services().SCHEMA_REGISTRY_URL);
    const dlq = uniqueName("dead-letter");
    await ensureTopics(kafka, [{ topic: dlq, partitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    const metricsRegistry = new Registry();
    const publisher = new DeadLetterPublisher({
      producer,
      registry,
      service: "test",
      topic: dlq,
      metricsRegistry,
    });

    const garbage = Buffer.from([0xff, 0x00, 0x13, 0x37]);
    await publisher.publish([
      deadLetterOf(
        {
          topic: "payments",
          partition: 2,
          message: {
            key: Buffer.from("card-9"),
            value: garbage,
            offset: "41",
            timestamp: "0",
            headers: { trace: "abc" },
          },
        },
        "decode_error",
        "value is not in the Confluent wire format (no magic byte)",
      ),
    ]);
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName("dlq-reader") });
    await consumer.connect();
    await consumer.subscribe({ topics: [dlq], fromBeginning: true });
    const raw = await new Promise<Buffer>((resolve) => {
      void consumer.run({ eachMessage: async ({ message }) => resolve(message.value!) });
    });
    await consumer.disconnect();

    const record = await registry.avroDeserializer().deserialize(dlq, raw);
    expect(record).toMatchObject({
      topic: "payments",
      partition: 2,
      offset: 41,
      reason: "decode_error",
      service: "test",
    });
    expect(Buffer.compare(record.value, garbage)).toBe(0);
    expect(record.key.toString()).toBe("card-9");
    expect(record.headers.trace.toString()).toBe("abc");
    const counted = await metricsRegistry.getSingleMetricAsString("tessera_dead_letters_total");
    expect(counted).toContain('tessera_dead_letters_total{topic="payments",reason="decode_error"} 1');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
