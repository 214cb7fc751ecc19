/**
 * The accuracy floor end to end on the real stack (Kafka, schema registry, Redis): predictions and
 * labels on Kafka put a model's accuracy under the floor its definitions declare; the drift worker
 * trips the model's gate on the compacted gate topic; a feature server following that topic serves
 * the model's view `quarantined` (and another view untouched).
 */
import { readFileSync } from "node:fs";
import { type Bus, createKafka, ensureTopics, SchemaRegistry, TesseraProducer } from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { RedisOnlineStore } from "@tessera/stores";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig, startDriftWorker } from "../../services/drift-worker/src/index.js";
import { Generator, referenceProfile } from "../../services/drift-worker/test/scenario.js";
import {
  type FeatureServerHandle,
  featureServerConfig,
  startFeatureServer,
} from "../../services/feature-server/src/index.js";
import { apiKeys, KEYS, writeTiles } from "../../services/feature-server/test/fixtures.js";
import { kafkaBrokers, services, uniqueName } from "../support/index.js";

const schema = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../schemas/avro/${name}.avsc`, import.meta.url), "utf8"));

// The scenario's churn model is right about 90% of the time: under this floor of 0.95.
const defs = parseDefinitionsYaml(`
sources:
  - { name: tx, topic: accuracy-gate.tx, entity: card_id, timestamp: ts }
views:
  - name: scored
    source: tx
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
  - name: free
    source: tx
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
models:
  - { name: churn, views: [scored], accuracyFloor: 0.95, owner: growth-ml }
`);

describe("accuracy floor → model gate → feature server", () => {
  const topics = {
    features: uniqueName("features"),
    predictions: uniqueName("predictions"),
    labels: uniqueName("labels"),
    alerts: uniqueName("alerts"),
    deadLetter: uniqueName("dead-letter"),
    state: uniqueName("drift-state"),
  };
  const gateTopic = uniqueName("tessera.gate");
  let kafka: Bus;
  let registry: SchemaRegistry;
  let producer: TesseraProducer;
  let store: RedisOnlineStore;
  let worker: Awaited<ReturnType<typeof startDriftWorker>> | undefined;
  let server: FeatureServerHandle | undefined;

  beforeAll(async () => {
    kafka = createKafka({ brokers: kafkaBrokers(), clientId: "accuracy-gate-test" });
    registry = new SchemaRegistry(services().SCHEMA_REGISTRY_URL);
    await ensureTopics(
      kafka,
      Object.values(topics).map((topic) => ({ topic, partitions: 1 })),
    );
    producer = new TesseraProducer({
      kafka,
      registry,
      schemas: { [topics.predictions]: schema("prediction"), [topics.labels]: schema("label") },
    });
    await producer.connect();
    store = new RedisOnlineStore({
      url: services().REDIS_URL,
      keyPrefix: `${uniqueName("accuracy-gate")}:`,
      timeoutMs: 2000,
    });
    const now = Date.now();
    await writeTiles(
      store,
      defs,
      [{ card_id: "card-1", merchant_id: "m", ts: now - 60_000, amount: 1, country: "FR" }],
      now,
    );
    server = await startFeatureServer(
      featureServerConfig({
        http: { port: 0 },
        grpc: { port: 0 },
        // The test runs the drift worker in this process: its evaluations must not shed requests.
        reliability: { maxEventLoopDelayMs: 0 },
        gate: { follow: true, topic: gateTopic },
      }),
      {
        store,
        definitions: defs,
        apiKeys: apiKeys(),
        logger: pino({ level: "silent" }),
        env: { KAFKA_BROKERS: services().KAFKA_BROKERS },
      },
    );
    worker = await startDriftWorker(
      defaultConfig({
        http: { port: 0 },
        topics,
        groupId: uniqueName("drift-worker"),
        fromBeginning: true,
        evaluation: { intervalMs: 250 },
        accuracy: { window: 500 },
        freshness: { warnSeconds: 3600, criticalSeconds: 7200 },
        gates: { enabled: true, topic: gateTopic },
      }),
      {
        profile: referenceProfile(),
        definitions: defs,
        kafka,
        registry,
        logger: createLogger("drift-worker-test", "warn"),
      },
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await server?.stop();
    await producer?.disconnect();
    registry?.close();
    await store?.close();
  });

  const statuses = async () => {
    const res = await fetch(`${server!.url}/v1/features`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEYS.all },
      body: JSON.stringify({ features: ["scored:n_1h", "free:n_1h"], entities: { card_id: ["card-1"] } }),
    });
    // biome-ignore lint/suspicious/noExplicitAny: the response is untyped JSON
    const body = (await res.json()) as any;
    if (!body.entities) throw new Error(`${res.status} ${JSON.stringify(body)}`);
    return { statuses: body.entities.card_id.results[0].statuses as string[], views: body.views };
  };

  it("labels showing accuracy under the floor trip the model's gate; its view is served quarantined", async () => {
    expect((await statuses()).statuses).toEqual(["present", "present"]);
    const generator = new Generator(11);
    for (let batch = 0; batch < 5; batch++) {
      const predictions = [];
      const labels = [];
      for (let i = 0; i < 120; i++) {
        const e = generator.next();
        predictions.push(e.predictions[1]!); // churn
        labels.push(e.label);
      }
      await producer.publishBatch(
        topics.predictions,
        predictions.map((value) => ({ value, key: value.entity })),
      );
      await producer.publishBatch(
        topics.labels,
        labels.map((value) => ({ value, key: value.entity })),
      );
    }
    const deadline = Date.now() + 30_000;
    let seen = await statuses();
    while (seen.statuses[0] !== "quarantined" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      seen = await statuses();
    }
    expect(seen.statuses).toEqual(["quarantined", "present"]);
    expect(seen.views.scored.gates[0]).toMatchObject({
      subject: "model:churn",
      state: "tripped",
      causes: ["accuracy_floor"],
    });
    const churn = worker!.status().accuracy.models["churn"]!;
    expect(churn.latest!.accuracy).toBeLessThan(0.95);
    expect(churn.latest!.accuracy).toBeGreaterThan(0.7); // under the definitions' floor only
  });
});
