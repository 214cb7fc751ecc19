/**
 * Hostile input: 1,200 malformed records interleaved with 3,000 good ones on one partition (so a
 * record's offset is its index). Every bad record reaches the dead-letter topic with the expected
 * reason; every good one is applied (online values equal the batch evaluator on the good ones).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKafka, ensureTopics, parseAvroSchema, SchemaRegistry, valueSubject } from "@tessera/kafka";
import { createOnlineStore } from "@tessera/stores";
import { afterAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import type { DeadReason } from "../src/codec.js";
import { loadProcessorConfig } from "../src/config.js";
import { startProcessor } from "../src/processor.js";
import {
  batchValues,
  definitionsYaml,
  differences,
  frame,
  onlineValues,
  type Payment,
  paymentSchema,
  payments,
  viewOf,
  waitFor,
} from "./fixtures.js";

describe("stream processor on malformed and hostile records", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  it("dead-letters every bad record with its reason and applies every good one", async () => {
    const env = services();
    const topic = uniqueName("proc-bad");
    const deadLetter = `${topic}.dead-letter`;
    const kafka = createKafka({ brokers: kafkaBrokers() });
    await ensureTopics(kafka, [
      { topic, partitions: 1 },
      { topic: deadLetter, partitions: 1 },
    ]);
    const registry = new SchemaRegistry(env.SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());
    const id = await registry.register(valueSubject(topic), paymentSchema);
    // A real schema of the wrong shape: no card_id, the view's entity key.
    const partial = {
      ...paymentSchema,
      name: "PartialPayment",
      fields: paymentSchema.fields.filter((f: { name: string }) => f.name !== "card_id"),
    };
    const partialId = await registry.register(`${topic}-partial-value`, partial);
    const type = parseAvroSchema(paymentSchema);
    const partialType = parseAvroSchema(partial);

    const now = Date.now();
    const good = payments(3000, { entities: 200, seed: 11, endMs: now - 1000, spanMs: 50 * 60_000 });
    const sample = good[0]!;
    const bad: { value: Buffer | null; reason: DeadReason }[] = [];
    const add = (n: number, reason: DeadReason, make: (i: number) => Buffer | null) => {
      for (let i = 0; i < n; i++) bad.push({ value: make(i), reason });
    };
    const encode = (p: Partial<Payment>) => frame(id, type.toBuffer({ ...sample, ...p }));
    add(150, "decode_error", (i) =>
      Buffer.from([1 + (i % 200), ...Array.from({ length: i % 40 }, (_, j) => (i * j) % 256)]),
    );
    add(50, "decode_error", (i) => Buffer.from(JSON.stringify({ ...sample, note: i })));
    add(50, "decode_error", () => null);
    add(100, "decode_error", (i) => encode({ card_id: `c${i}` }).subarray(0, 12 + (i % 20)));
    add(150, "unknown_schema", (i) => frame(900_000_000 + i, type.toBuffer(sample)));
    add(100, "schema_mismatch", () => {
      const { card_id: _, ...rest } = sample;
      return frame(partialId, partialType.toBuffer(rest));
    });
    add(100, "missing_field", () => encode({ card_id: "" }));
    add(60, "invalid_value", () => encode({ amount: Number.NaN }));
    add(60, "invalid_value", (i) =>
      encode({ amount: i % 2 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY }),
    );
    add(40, "invalid_value", (i) => encode({ card_id: `${"x".repeat(20_000)}${i}` }));
    add(100, "late", (i) => encode({ event_time: Date.UTC(1970, 0, 1) + i * 1000 }));
    add(100, "future", (i) => encode({ event_time: Date.UTC(3000, 0, 1) + i }));
    add(40, "late", () => encode({ event_time: 0 }));
    expect(bad.length).toBeGreaterThanOrEqual(1000);

    // Interleave deterministically: a bad record after every second or third good one.
    const records: { value: Buffer | null; key: string | null; bad?: DeadReason; good?: Payment }[] = [];
    let b = 0;
    good.forEach((payment, i) => {
      records.push({ value: encode(payment), key: payment.card_id, good: payment });
      if (i % 5 !== 4 && b < bad.length) {
        records.push({ value: bad[b]!.value, key: `bad-${b}`, bad: bad[b]!.reason });
        b++;
      }
    });
    for (; b < bad.length; b++) records.push({ value: bad[b]!.value, key: `bad-${b}`, bad: bad[b]!.reason });

    const producer = kafka.producer();
    await producer.connect();
    cleanup.push(() => producer.disconnect());
    // Small requests: the 20 kB keys must keep a request under the broker's message size.
    for (let i = 0; i < records.length; i += 50) {
      await producer.send({
        topic,
        acks: -1,
        messages: records.slice(i, i + 50).map((r) => ({ key: r.key, value: r.value })),
      });
    }

    const dir = mkdtempSync(join(tmpdir(), "proc-bad-"));
    const yaml = definitionsYaml(topic, "cards");
    writeFileSync(join(dir, "features.yaml"), yaml);
    const keyPrefix = `${uniqueName("proc")}:`;
    const processor = await startProcessor(
      loadProcessorConfig({
        env: {},
        overrides: {
          name: uniqueName("bad"),
          definitions: join(dir, "features.yaml"),
          kafka: { brokers: kafkaBrokers(), schemaRegistryUrl: env.SCHEMA_REGISTRY_URL },
          store: { kind: "redis", redisUrl: env.REDIS_URL, keyPrefix },
          topics: { deadLetter },
          publishFeatures: false,
          ops: { port: 0 },
        },
      }),
    );
    cleanup.push(() => processor.stop());

    const store = createOnlineStore({ kind: "redis", url: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 });
    cleanup.push(() => store.close());
    await waitFor(
      "the stored offset to reach the last record",
      async () =>
        (await store.readOffsets(processor.groupId, topic)).get(0) === records.length - 1 ? true : undefined,
      60_000,
    );

    // Every bad record, and nothing else, is in the dead-letter topic with its reason.
    const letters = new Map<
      number,
      { reason: string; detail: string; topic: string; value: Buffer | null }
    >();
    const consumer = kafka.consumer({ groupId: uniqueName("bad-dlq") });
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topics: [deadLetter], fromBeginning: true });
    const deserializer = registry.avroDeserializer();
    await consumer.run({
      eachMessage: async ({ message }) => {
        const letter = await deserializer.deserialize(deadLetter, message.value!);
        letters.set(Number(letter.offset), letter);
      },
    });
    await waitFor("every dead letter", async () => (letters.size >= bad.length ? true : undefined), 30_000);
    expect(letters.size).toBe(bad.length);
    const wrong: string[] = [];
    records.forEach((record, offset) => {
      const letter = letters.get(offset);
      if (record.bad && letter?.reason !== record.bad)
        wrong.push(`${offset}: want ${record.bad}, got ${letter?.reason}`);
      if (record.good && letter)
        wrong.push(`${offset}: good record dead-lettered (${letter.reason}: ${letter.detail})`);
      if (record.bad && letter) {
        expect(letter.topic).toBe(topic);
        expect(letter.detail.length).toBeGreaterThan(0);
        // The original bytes travel with the letter, so it can be replayed after a fix.
        expect(letter.value === null ? null : Buffer.from(letter.value)).toEqual(record.value);
      }
    });
    expect(wrong).toEqual([]);

    // Every good record is applied, exactly once.
    const view = viewOf(yaml);
    const t = Date.now();
    const goodEvents: { row: Payment; seq: number }[] = [];
    records.forEach((r, offset) => {
      if (r.good) goodEvents.push({ row: r.good, seq: offset });
    });
    const batch = batchValues(view, goodEvents, t);
    const online = await onlineValues(store, view, [...batch.keys()], t);
    expect(differences(online, batch)).toEqual([]);

    const metrics = await (await fetch(`${processor.opsUrl}/metrics`)).text();
    for (const reason of new Set(bad.map((x) => x.reason))) {
      const expected = bad.filter((x) => x.reason === reason).length;
      expect(metrics).toContain(
        `tessera_processor_dead_lettered_total{topic="${topic}",reason="${reason}"} ${expected}`,
      );
    }
    expect(metrics).toMatch(/tessera_processor_events_applied_total\{view="cards"\} 3000/);
  }, 120_000);
});
