/**
 * Producer API → Kafka → processor → Redis, then read the tiles and finalise them the way the
 * feature server does: every entity's values equal the batch evaluator's on the same events.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKafka, ensureTopics, SchemaRegistry, TesseraProducer } from "@tessera/kafka";
import { createOnlineStore } from "@tessera/stores";
import { afterAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import { loadProcessorConfig } from "../src/config.js";
import { type Processor, startProcessor } from "../src/processor.js";
import {
  batchValues,
  definitionsYaml,
  differences,
  onlineValues,
  type Payment,
  paymentSchema,
  payments,
  viewOf,
  waitFor,
} from "./fixtures.js";

describe("stream processor end to end on Kafka and Redis", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  it("online values from the stored tiles equal the batch evaluator (with eviction and reloads); FeatureUpdates follow each flush", async () => {
    const env = services();
    const topic = uniqueName("proc-e2e");
    const deadLetter = `${topic}.dead-letter`;
    const features = `${topic}.features`;
    const viewName = "cards";
    const kafka = createKafka({ brokers: kafkaBrokers() });
    await ensureTopics(kafka, [
      { topic, partitions: 4 },
      { topic: deadLetter, partitions: 1 },
      { topic: features, partitions: 2 },
    ]);
    const yaml = definitionsYaml(topic, viewName);
    const dir = mkdtempSync(join(tmpdir(), "proc-e2e-"));
    writeFileSync(join(dir, "features.yaml"), yaml);
    const view = viewOf(yaml);

    const registry = new SchemaRegistry(env.SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());
    const producer = new TesseraProducer<Record<string, Payment>>({
      brokers: kafkaBrokers(),
      registry,
      schemas: { [topic]: paymentSchema },
    });
    cleanup.push(() => producer.disconnect());
    const events = payments(20_000, {
      entities: 400,
      seed: 7,
      endMs: Date.now() - 1000,
      spanMs: 50 * 60_000,
    });
    for (let i = 0; i < events.length; i += 2000) {
      await producer.publishBatch(
        topic,
        events.slice(i, i + 2000).map((e) => ({ value: e, key: e.card_id })),
      );
    }

    const keyPrefix = `${uniqueName("proc")}:`;
    const config = loadProcessorConfig({
      env: {},
      overrides: {
        name: uniqueName("e2e"),
        definitions: join(dir, "features.yaml"),
        kafka: { brokers: kafkaBrokers(), schemaRegistryUrl: env.SCHEMA_REGISTRY_URL },
        store: { kind: "redis", redisUrl: env.REDIS_URL, keyPrefix },
        topics: { deadLetter, features },
        flush: { maxEvents: 3000, maxDelayMs: 100 },
        // Fewer than the 400 entities: flushed ones are evicted and reloaded from Redis on their next event.
        memory: { maxEntities: 150 },
        ops: { port: 0 },
      },
    });
    const processor: Processor = await startProcessor(config);
    cleanup.push(() => processor.stop());

    const store = createOnlineStore({ kind: "redis", url: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 });
    cleanup.push(() => store.close());
    const admin = kafka.admin();
    await admin.connect();
    cleanup.push(() => admin.disconnect());
    const ends = await admin.fetchTopicOffsets(topic);
    await waitFor(
      "the store's offsets to reach the end of every partition",
      async () => {
        const stored = await store.readOffsets(processor.groupId, topic);
        return ends.every((e) => stored.get(e.partition) === Number(e.high) - 1) ? true : undefined;
      },
      60_000,
    );

    const t = Date.now();
    const batch = batchValues(
      view,
      events.map((row, seq) => ({ row, seq })),
      t,
    );
    const online = await onlineValues(store, view, [...batch.keys()], t);
    expect(batch.size).toBe(400);
    expect(differences(online, batch)).toEqual([]);
    // The comparison is not vacuous: every event is counted.
    const counted = [...online.values()].reduce((n, v) => n + (v["n_1h"] as number), 0);
    expect(counted).toBe(events.length);

    const metrics = await (await fetch(`${processor.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/tessera_processor_events_applied_total\{view="cards"\} 20000/);
    expect(metrics).toMatch(/tessera_processor_freshness_seconds_count \d+/);
    const evicted = Number(metrics.match(/tessera_processor_entities_evicted_total (\d+)/)?.[1]);
    const loaded = Number(metrics.match(/tessera_processor_entities_loaded_total (\d+)/)?.[1]);
    expect(evicted).toBeGreaterThan(0);
    expect(loaded).toBeGreaterThan(400); // every entity once, and evicted ones again
    const ready = await fetch(`${processor.opsUrl}/readyz`);
    expect(ready.status).toBe(200);

    // The last FeatureUpdate of each entity was finalised after its last event: its count is the total.
    const lastUpdate = new Map<string, { values: Record<string, unknown>; version: string }>();
    const consumer = kafka.consumer({ groupId: uniqueName("e2e-features") });
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topics: [features], fromBeginning: true });
    const deserializer = registry.avroDeserializer();
    let consumed = 0;
    await consumer.run({
      eachMessage: async ({ message }) => {
        const update = await deserializer.deserialize(features, message.value!);
        lastUpdate.set(update.entity, update);
        consumed++;
      },
    });
    await waitFor(
      "every FeatureUpdate published so far",
      async () => {
        const published = (await admin.fetchTopicOffsets(features)).reduce((n, e) => n + Number(e.high), 0);
        return published > 0 && consumed === published ? true : undefined;
      },
      30_000,
    );
    expect(lastUpdate.size).toBe(400);
    for (const [entity, update] of lastUpdate) {
      expect(update.version).toBe(view.version);
      expect(update.values["n_1h"]).toBe(batch.get(entity)!["n_1h"]);
    }
  }, 120_000);
});
