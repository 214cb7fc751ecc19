/**
 * Detection on the real stack: the worker consumes Avro feature updates, predictions and labels
 * from Kafka (schemas in the registry) and publishes DriftAlert records. Six incidents are
 * injected at once into subjects of their own (plus a control feature that never changes); each
 * must produce exactly one FIRING on the alert topic, for the first window that holds it, and one
 * RESOLVED after recovery. A garbage record goes to the dead-letter topic and changes nothing.
 */
import { readFileSync } from "node:fs";
import {
  type Bus,
  type BusConsumer,
  createKafka,
  type DriftAlertRecord,
  ensureTopics,
  SchemaRegistry,
  TesseraProducer,
} from "@tessera/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import { type DriftStatus, defaultConfig, startDriftWorker } from "../src/index.js";
import { Generator, INCIDENT_SUBJECTS, type Incidents, referenceProfile } from "./scenario.js";

const schema = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../schemas/avro/${name}.avsc`, import.meta.url), "utf8"));

const WINDOW = 1000;
const ACCURACY_WINDOW = 500;
const ALL: Incidents = {
  meanShift: true,
  varianceChange: true,
  newCategory: true,
  nullSurge: true,
  scoreShift: true,
  accuracyDrop: true,
};

const toMillis = (v: unknown) => (v instanceof Date ? v.getTime() : Number(v));

describe("drift worker on Kafka + schema registry", () => {
  const topics = {
    features: uniqueName("features"),
    predictions: uniqueName("predictions"),
    labels: uniqueName("labels"),
    alerts: uniqueName("alerts"),
    deadLetter: uniqueName("dead-letter"),
  };
  let kafka: Bus;
  let registry: SchemaRegistry;
  let producer: TesseraProducer;
  let worker: Awaited<ReturnType<typeof startDriftWorker>>;
  const consumers: BusConsumer[] = [];
  const alerts: DriftAlertRecord[] = [];
  const deadLetters: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    kafka = createKafka({ brokers: kafkaBrokers() });
    registry = new SchemaRegistry(services().SCHEMA_REGISTRY_URL);
    await ensureTopics(
      kafka,
      Object.values(topics).map((topic) => ({ topic, partitions: 1 })),
    );
    producer = new TesseraProducer({
      kafka,
      registry,
      schemas: {
        [topics.features]: schema("feature_update"),
        [topics.predictions]: schema("prediction"),
        [topics.labels]: schema("label"),
      },
    });
    await producer.connect();
    const config = defaultConfig({
      http: { port: 0 },
      topics,
      groupId: uniqueName("drift-worker"),
      fromBeginning: true,
      reference: { name: "scenario-seed-1" },
      evaluation: { intervalMs: 250 },
      window: { mode: "count", size: WINDOW },
      accuracy: { window: ACCURACY_WINDOW },
      hysteresis: { resolveAfter: 2, coolDownMs: 0, clearFactor: 0.8 },
      freshness: { warnSeconds: 3600, criticalSeconds: 7200 },
    });
    worker = await startDriftWorker(config, {
      profile: referenceProfile(),
      kafka,
      registry,
      logger: (await import("@tessera/runtime")).createLogger("drift-worker-test", "warn"),
    });
    for (const [topic, sink] of [
      [topics.alerts, alerts],
      [topics.deadLetter, deadLetters],
    ] as const) {
      const consumer = kafka.consumer({ groupId: uniqueName("reader") });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const deserializer = registry.avroDeserializer();
      await consumer.run({
        eachMessage: async ({ message }) => {
          (sink as unknown[]).push(await deserializer.deserialize(topic, message.value!));
        },
      });
      consumers.push(consumer);
    }
  });

  afterAll(async () => {
    await Promise.allSettled(consumers.map((c) => c.disconnect()));
    await worker?.stop();
    await producer?.disconnect();
    registry?.close();
  });

  async function publish(generator: Generator, events: number, incidents: Incidents = {}) {
    for (let done = 0; done < events; done += 500) {
      const batch = Array.from({ length: Math.min(500, events - done) }, () => generator.next(incidents));
      await producer.publishBatch(
        topics.features,
        batch.map((e) => ({ value: e.update, key: e.update.entity })),
      );
      await producer.publishBatch(
        topics.predictions,
        batch.flatMap((e) => e.predictions.map((p) => ({ value: p, key: p.entity }))),
      );
      await producer.publishBatch(
        topics.labels,
        batch.map((e) => ({ value: e.label, key: e.label.entity })),
      );
    }
  }

  async function until(condition: () => boolean, timeoutMs: number, what: string) {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it("alerts each incident once, in its first window, resolves it once, and dead-letters garbage", async () => {
    const generator = new Generator(42);
    // A record that is not Confluent-framed Avro: dead-lettered, nothing else happens.
    const raw = kafka.producer();
    await raw.connect();
    await raw.send({ topic: topics.features, messages: [{ key: "x", value: Buffer.from("not avro") }] });
    await raw.disconnect();

    await publish(generator, 2 * WINDOW);
    const injectedAt = generator.nextTime;
    await publish(generator, 2 * WINDOW, ALL);
    await publish(generator, 3 * WINDOW);

    const fired = () => alerts.filter((a) => a.status === "FIRING");
    const resolved = () => alerts.filter((a) => a.status === "RESOLVED");
    await until(
      () => fired().length >= 6 && resolved().length >= 6,
      90_000,
      "6 FIRING and 6 RESOLVED alerts",
    );
    // Anything duplicated would follow within a few evaluations.
    await new Promise((r) => setTimeout(r, 1500));

    const expected = Object.values(INCIDENT_SUBJECTS)
      .map(({ kind, subject }) => `${kind} ${subject}`)
      .sort();
    expect(
      fired()
        .map((a) => `${a.kind} ${a.subject}`)
        .sort(),
    ).toEqual(expected);
    expect(
      resolved()
        .map((a) => `${a.kind} ${a.subject}`)
        .sort(),
    ).toEqual(expected);
    for (const alert of fired()) {
      const span = alert.kind === "ACCURACY" ? ACCURACY_WINDOW : WINDOW;
      const start = toMillis(alert.window_start);
      const end = toMillis(alert.window_end);
      if (alert.kind === "ACCURACY") {
        // Labels and predictions come from two topics, so a window at the boundary can mix phases.
        expect(end).toBeGreaterThanOrEqual(injectedAt);
        expect(end).toBeLessThan(injectedAt + 2 * span);
      } else {
        expect(start, `${alert.subject} window starts at the injection`).toBeGreaterThanOrEqual(injectedAt);
        expect(end, `${alert.subject} fired for the first injected window`).toBeLessThan(injectedAt + span);
      }
      expect(alert.reference).toBe("scenario-seed-1");
      expect(["WARN", "CRITICAL"]).toContain(alert.severity);
      expect(resolved().find((r) => r.subject === alert.subject)!.alert_id).toBe(alert.alert_id);
    }

    await until(() => deadLetters.length >= 1, 20_000, "the dead letter");
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]).toMatchObject({
      topic: topics.features,
      reason: "decode_error",
      service: "drift-worker",
    });

    const status = (await (await fetch(`${worker.url}/v1/status`)).json()) as DriftStatus;
    const mean = status.drift.features["payments:amount_mean"]!;
    expect(mean.history.map((h) => h.severity)).toContain("critical");
    expect(mean.latest!.bins.labels).toHaveLength(10);
    expect(mean.latest!.window.observations).toBe(WINDOW);
    expect(status.drift.features["payments:amount_control"]!.history.every((h) => h.severity === "ok")).toBe(
      true,
    );
    expect(status.drift.datasets["payments"]!.method).toBe("benjamini-hochberg");
    expect(status.accuracy.models["churn"]!.history.length).toBeGreaterThanOrEqual(13);
    expect(Object.keys(status.freshness.sources).sort()).toEqual(
      [topics.features, topics.labels, topics.predictions].sort(),
    );
    expect(status.alerts.timeline).toHaveLength(12);
    expect(status.alerts.active).toEqual([]);
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metrics).toMatch(
      /tessera_drift_statistic\{subject="payments:amount_mean",dataset="payments",statistic="psi"\}/,
    );
    expect(metrics).toMatch(/tessera_alerts_total\{kind="ACCURACY",status="FIRING"\} 1/);
  });
});
