/**
 * What Tessera relies on from Kafka (the Bus interface of libs/kafka/src/bus.ts), as one suite:
 * run on the kafkajs adapter against a real broker (integration) and on the in-memory MemoryBroker
 * (unit), so the demo's and the unit tests' bus behaves like the real one.
 */
import { describe, expect, it } from "vitest";
import { type Bus, type BusConsumer, ensureTopics, partitionForKey } from "../../libs/kafka/src/index.js";

type Received = { partition: number; offset: string; key: string; value: string };

async function consumeUntil(
  kafka: Bus,
  options: {
    topic: string;
    groupId: string;
    count: number;
    onJoin?: (consumer: BusConsumer) => void;
  },
): Promise<Received[]> {
  const consumer = kafka.consumer({ groupId: options.groupId });
  await consumer.connect();
  await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
  if (options.onJoin) consumer.onGroupJoin(() => options.onJoin!(consumer));
  const received: Received[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`only ${received.length}/${options.count} received`)),
      30_000,
    );
    void consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const m of batch.messages) {
          received.push({
            partition: batch.partition,
            offset: m.offset,
            key: String(m.key),
            value: String(m.value),
          });
          resolveOffset(m.offset);
        }
        if (received.length >= options.count) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return received;
}

/**
 * As Tessera's producers run: idempotent, one request in flight. A plain producer may write a batch
 * twice when KafkaJS retries a send the broker had taken (seen once in CI, under load: every record
 * of the batch twice, in order), which is Kafka's at-least-once, not a fault of the bus.
 */
const exactlyOnce = { idempotent: true, maxInFlightRequests: 1 };

export function busContract(name: string, makeKafka: () => Bus, unique: (prefix: string) => string): void {
  describe(`bus contract: ${name}`, () => {
    it("creates topics idempotently and refuses to produce to a missing one", async () => {
      const kafka = makeKafka();
      const topic = unique("contract-admin");
      expect((await ensureTopics(kafka, [{ topic, partitions: 3 }])).created).toEqual([topic]);
      expect((await ensureTopics(kafka, [{ topic, partitions: 3 }])).created).toEqual([]);
      const producer = kafka.producer({ allowAutoTopicCreation: false, retries: 1 });
      await producer.connect();
      await expect(producer.send({ topic: unique("missing"), messages: [{ value: "x" }] })).rejects.toThrow();
      await producer.disconnect();
    });

    it("places keys on Kafka's murmur2 partition and keeps per-partition order", async () => {
      const kafka = makeKafka();
      const topic = unique("contract-keys");
      await ensureTopics(kafka, [{ topic, partitions: 4 }]);
      const producer = kafka.producer(exactlyOnce);
      await producer.connect();
      const keys = Array.from({ length: 40 }, (_, i) => `card-${i % 10}`);
      await producer.send({ topic, messages: keys.map((key, i) => ({ key, value: String(i) })) });
      await producer.disconnect();

      const received = await consumeUntil(kafka, {
        topic,
        groupId: unique("contract-keys-g"),
        count: keys.length,
      });
      for (const r of received) expect(r.partition).toBe(partitionForKey(r.key, 4));
      for (let p = 0; p < 4; p++) {
        const mine = received.filter((r) => r.partition === p);
        expect(mine.map((r) => Number(r.offset))).toEqual(mine.map((_, i) => i));
        const values = mine.map((r) => Number(r.value));
        expect(values).toEqual([...values].sort((a, b) => a - b));
      }
    });

    it("resumes a group after its committed offset", async () => {
      const kafka = makeKafka();
      const topic = unique("contract-commit");
      const groupId = unique("contract-commit-g");
      await ensureTopics(kafka, [{ topic, partitions: 1 }]);
      const producer = kafka.producer(exactlyOnce);
      await producer.connect();
      await producer.send({ topic, messages: ["a", "b", "c"].map((value) => ({ value })) });
      const first = await consumeUntil(kafka, { topic, groupId, count: 3 });
      expect(first.map((r) => r.value)).toEqual(["a", "b", "c"]);
      await producer.send({ topic, messages: ["d", "e"].map((value) => ({ value })) });
      await producer.disconnect();
      const second = await consumeUntil(kafka, { topic, groupId, count: 2 });
      expect(second.map((r) => `${r.value}@${r.offset}`)).toEqual(["d@3", "e@4"]);

      const admin = kafka.admin();
      await admin.connect();
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const [high] = await admin.fetchTopicOffsets(topic);
      await admin.disconnect();
      expect(offsets!.partitions[0]!.offset).toBe("5");
      expect(high!.high).toBe("5");
    });

    it("seeks on join: delivery starts at the sought offset", async () => {
      const kafka = makeKafka();
      const topic = unique("contract-seek");
      await ensureTopics(kafka, [{ topic, partitions: 1 }]);
      const producer = kafka.producer(exactlyOnce);
      await producer.connect();
      await producer.send({ topic, messages: ["0", "1", "2", "3"].map((value) => ({ value })) });
      await producer.disconnect();
      const received = await consumeUntil(kafka, {
        topic,
        groupId: unique("contract-seek-g"),
        count: 2,
        onJoin: (consumer) => consumer.seek({ topic, partition: 0, offset: "2" }),
      });
      expect(received.map((r) => r.value)).toEqual(["2", "3"]);
    });

    it("reports each member's assignment on join, and a seek in a batch makes it stale", async () => {
      const kafka = makeKafka();
      const topic = unique("contract-stale");
      await ensureTopics(kafka, [{ topic, partitions: 2 }]);
      const producer = kafka.producer(exactlyOnce);
      await producer.connect();
      await producer.send({ topic, messages: ["0", "1", "2"].map((value) => ({ value, partition: 0 })) });
      await producer.disconnect();
      const consumer = kafka.consumer({ groupId: unique("contract-stale-g"), maxWaitTimeInMs: 200 });
      const assignments: Record<string, number[]>[] = [];
      consumer.onGroupJoin((assignment) => assignments.push(assignment));
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const batches: Array<{ first: string | null; stale: boolean }> = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`batches: ${JSON.stringify(batches)}`)), 30_000);
        void consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, isStale, resolveOffset }) => {
            if (batch.partition !== 0) return;
            if (batches.length === 0) {
              // As the processor does with a batch it may not apply: back to its first record.
              consumer.seek({ topic, partition: 0, offset: batch.firstOffset()! });
              batches.push({ first: batch.firstOffset(), stale: isStale() });
              return;
            }
            batches.push({ first: batch.firstOffset(), stale: isStale() });
            resolveOffset(batch.lastOffset());
            clearTimeout(timer);
            resolve();
          },
        });
      });
      await consumer.disconnect();
      expect(batches).toEqual([
        { first: "0", stale: true },
        { first: "0", stale: false },
      ]);
      expect(assignments[0]).toEqual({ [topic]: [0, 1] });
    });

    it("holds a paused partition back until it is resumed, and commits only what it is told", async () => {
      const kafka = makeKafka();
      const topic = unique("contract-pause");
      const groupId = unique("contract-pause-g");
      await ensureTopics(kafka, [{ topic, partitions: 1 }]);
      const producer = kafka.producer(exactlyOnce);
      await producer.connect();
      await producer.send({ topic, messages: [{ value: "a" }] });
      const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const seen: string[] = [];
      let wake!: () => void;
      const nextBatch = () => new Promise<void>((resolve) => (wake = resolve));
      let delivered = nextBatch();
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) seen.push(String(m.value));
          wake();
        },
      });
      await delivered;
      consumer.pause([{ topic }]);
      await producer.send({ topic, messages: [{ value: "b" }] });
      await new Promise((r) => setTimeout(r, 1500));
      expect(seen).toEqual(["a"]);
      delivered = nextBatch();
      consumer.resume([{ topic }]);
      await delivered;
      expect(seen).toEqual(["a", "b"]);
      await consumer.commitOffsets([{ topic, partition: 0, offset: "1" }]);
      await consumer.disconnect();
      await producer.disconnect();
      const admin = kafka.admin();
      await admin.connect();
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      await admin.disconnect();
      // Auto-commit off: the group holds the offset committed by hand, not the end it consumed to.
      expect(committed!.partitions).toEqual([expect.objectContaining({ partition: 0, offset: "1" })]);
    });

    it("keeps topic configs: set at creation, changed by ensureTopics, read back", async () => {
      const kafka = makeKafka();
      const topic = unique("contract-configs");
      await ensureTopics(kafka, [{ topic, partitions: 1, cleanupPolicy: "compact" }]);
      await ensureTopics(kafka, [{ topic, partitions: 1, cleanupPolicy: "compact", retentionMs: 60_000 }]);
      const admin = kafka.admin();
      await admin.connect();
      const [configs] = await admin.describeTopicConfigs([topic]);
      await admin.disconnect();
      const value = (name: string) => configs!.configEntries.find((e) => e.configName === name)?.configValue;
      expect(value("cleanup.policy")).toBe("compact");
      expect(value("retention.ms")).toBe("60000");
    });
  });
}
