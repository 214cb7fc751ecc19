/**
 * Feature logging through the real path: sampled served vectors published by the server's default
 * sink (TesseraProducer, Avro ServedFeatures registered on first use) and read back from Kafka by an
 * independent consumer and the registry's deserializer.
 */
import { createKafka, ensureTopics, SchemaRegistry } from "@tessera/kafka";
import { MemoryOnlineStore } from "@tessera/stores";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import {
  type FeatureResponse,
  type FeatureServerHandle,
  featureServerConfig,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, definitions, events, KEYS, writeTiles } from "./fixtures.js";

describe("served-features topic", () => {
  const topic = uniqueName("served-features");
  const defs = definitions();
  const now = Date.now();
  const rows = events(now, 200, 4);
  let server: FeatureServerHandle;

  beforeAll(async () => {
    await ensureTopics(createKafka({ brokers: kafkaBrokers() }), [{ topic, partitions: 1 }]);
    const store = new MemoryOnlineStore();
    await writeTiles(store, defs, rows, now);
    server = await startFeatureServer(
      featureServerConfig({
        http: { port: 0 },
        grpc: { enabled: false },
        reliability: { maxEventLoopDelayMs: 0 },
        featureLog: { sampleRate: 1, topic, flushIntervalMs: 50 },
      }),
      {
        store,
        definitions: defs,
        apiKeys: apiKeys(),
        logger: pino({ level: "silent" }),
        env: { ...process.env, ...services() },
      },
    );
  });
  afterAll(() => server?.stop());

  it("publishes each served (entity, view) vector as an Avro ServedFeatures record", async () => {
    const res = await fetch(`${server.url}/v1/features`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEYS.all },
      body: JSON.stringify({
        features: ["card:*"],
        entities: { card_id: ["card-0", "card-1"] },
        context: { amount: 3 },
      }),
    });
    const served = (await res.json()) as FeatureResponse;
    // stop() flushes the queue and disconnects the producer.
    await server.stop();

    const kafka = createKafka({ brokers: kafkaBrokers() });
    const consumer = kafka.consumer({ groupId: uniqueName("served-reader") });
    const registry = new SchemaRegistry();
    const records: Record<string, unknown>[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          records.push(
            (await registry.avroDeserializer().deserialize(topic, message.value!)) as Record<string, unknown>,
          );
          if (records.length === 2) resolve();
        },
      });
    });
    await Promise.race([
      done,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no records within 30 s")), 30_000)),
    ]);
    await consumer.disconnect();
    registry.close();

    const group = served.entities["card_id"]!;
    for (const row of group.results) {
      const record = records.find((r) => r["entity"] === row.id)!;
      expect(record).toMatchObject({ view: "card", version: defs.views[0]!.version });
      expect(
        Number(record["as_of"] instanceof Date ? (record["as_of"] as Date).getTime() : record["as_of"]),
      ).toBe(served.asOf);
      const values = record["values"] as Record<string, unknown>;
      group.features.forEach((name, c) => {
        const value = row.values[c];
        const logged = values[name.slice("card:".length)];
        if (typeof value === "number") expect(logged).toBeCloseTo(value, 9);
        else expect(logged).toEqual(value);
      });
    }
  });
});
