/**
 * Drift-worker costs, each against a baseline measured in the same run:
 *   1. ingest: FeatureUpdates (5 features) into the worker's windows vs the same values straight
 *      into bare sketches/counters (the least any implementation must do);
 *   2. evaluation: testing a closed window (all statistics, BH, bins, history, gauges) vs
 *      `compareToProfile` alone on the same windows;
 *   3. Kafka (when the stack is up): Avro FeatureUpdates consumed by the worker vs a raw KafkaJS
 *      consumer reading the same topic without decoding.
 *
 *   node --conditions=@tessera/source --import tsx bench/drift-worker/run.ts [--runs 5] [--updates 100000] [--kafka 50000]
 */
import { readFileSync } from "node:fs";
import {
  createKafka,
  ensureTopics,
  type FeatureUpdateRecord,
  SchemaRegistry,
  TesseraProducer,
} from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { CategoryCounter, compareToProfile, KllSketch } from "@tessera/stats";
import { Registry } from "prom-client";
import { DriftMonitor, defaultConfig, startDriftWorker } from "../../services/drift-worker/src/index.js";
import { Generator, referenceProfile } from "../../services/drift-worker/test/scenario.js";
import { fmt, loadStackEnv, median, numericFlags, repoRoot, saveResult } from "../support/index.js";

const { runs, updates, kafka: kafkaMessages } = numericFlags({ runs: 5, updates: 100_000, kafka: 50_000 });
const profile = referenceProfile();
const generator = new Generator(99);
const stream: FeatureUpdateRecord[] = Array.from({ length: updates }, () => generator.next().update);

function timeIngestWorker(): number {
  const monitor = new DriftMonitor({
    config: defaultConfig({ window: { size: 1_000_000_000 } }),
    profile,
    emit: () => {},
  });
  const start = performance.now();
  for (const update of stream) monitor.ingestFeatureUpdate(update);
  return ((performance.now() - start) * 1e6) / stream.length;
}

function timeIngestBare(): number {
  const sketches = new Map<string, KllSketch>();
  const counters = new Map<string, CategoryCounter>();
  const start = performance.now();
  for (const update of stream) {
    for (const [name, value] of Object.entries(update.values)) {
      if (typeof value === "number") {
        const s = sketches.get(name) ?? new KllSketch();
        sketches.set(name, s);
        s.update(value);
      } else if (typeof value === "string") {
        const c = counters.get(name) ?? new CategoryCounter();
        counters.set(name, c);
        c.add(value);
      }
    }
  }
  return ((performance.now() - start) * 1e6) / stream.length;
}

/** Windows of 1000: the worker's evaluate() per subject-window, and compareToProfile alone. */
function timeEvaluation(): { worker: number; bare: number } {
  const windows = Math.floor(stream.length / 1000);
  const monitor = new DriftMonitor({ config: defaultConfig({}), profile, emit: () => {} });
  for (const update of stream.slice(0, windows * 1000)) monitor.ingestFeatureUpdate(update);
  const subjects = Object.keys(stream[0]!.values).length;
  let start = performance.now();
  monitor.evaluate();
  const worker = (performance.now() - start) / (windows * subjects);

  const sketches: Array<[string, KllSketch | Map<string, number>]> = [];
  for (let w = 0; w < windows; w++) {
    for (const name of Object.keys(stream[0]!.values)) {
      const numeric = profile.features[name]!.type === "numerical";
      const window = numeric ? new KllSketch() : new Map<string, number>();
      for (const update of stream.slice(w * 1000, (w + 1) * 1000)) {
        const v = update.values[name];
        if (numeric && typeof v === "number") (window as KllSketch).update(v);
        else if (!numeric && typeof v === "string") {
          const m = window as Map<string, number>;
          m.set(v, (m.get(v) ?? 0) + 1);
        }
      }
      sketches.push([name, window]);
    }
  }
  start = performance.now();
  for (const [name, window] of sketches) compareToProfile(profile.features[name]!, window);
  const bare = (performance.now() - start) / sketches.length;
  return { worker, bare };
}

async function kafkaFigures(): Promise<{ worker: number; raw: number } | undefined> {
  loadStackEnv();
  if (!process.env["KAFKA_BROKERS"] || !process.env["SCHEMA_REGISTRY_URL"]) return undefined;
  const kafka = createKafka({ clientId: "bench-drift-worker" });
  const registry = new SchemaRegistry();
  const topic = `bench-drift-features-${Date.now()}`;
  await ensureTopics(
    kafka,
    [topic, `${topic}-p`, `${topic}-l`].map((t) => ({ topic: t, partitions: 1 })),
  );
  const schema = JSON.parse(readFileSync(`${repoRoot}/schemas/avro/feature_update.avsc`, "utf8"));
  const producer = new TesseraProducer({ kafka, registry, schemas: { [topic]: schema } });
  for (let sent = 0; sent < kafkaMessages; sent += 1000) {
    await producer.publishBatch(
      topic,
      stream.slice(sent % stream.length, (sent % stream.length) + 1000).map((value) => ({ value })),
    );
  }
  await producer.disconnect();

  const raw = kafka.consumer({ groupId: `${topic}-raw`, maxBytes: 64 * 1024 * 1024 });
  await raw.connect();
  await raw.subscribe({ topics: [topic], fromBeginning: true });
  let received = 0;
  let firstAt = 0;
  const rawSeconds = await new Promise<number>((resolve) => {
    void raw.run({
      eachBatch: async ({ batch }) => {
        if (firstAt === 0) firstAt = performance.now();
        received += batch.messages.length;
        if (received >= kafkaMessages) resolve((performance.now() - firstAt) / 1000);
      },
    });
  });
  await raw.disconnect();

  const metricsRegistry = new Registry();
  const worker = await startDriftWorker(
    defaultConfig({
      topics: { features: topic, predictions: `${topic}-p`, labels: `${topic}-l` },
      groupId: `${topic}-worker`,
      fromBeginning: true,
    }),
    {
      profile,
      kafka,
      registry,
      metricsRegistry,
      http: false,
      schedule: false,
      publishAlerts: false,
      logger: createLogger("bench", "error"),
    },
  );
  const ingested = async () =>
    (await metricsRegistry.getSingleMetric("tessera_drift_records_total")!.get()).values.reduce(
      (s, v) => s + v.value,
      0,
    );
  // Timed from the first record applied (group join excluded), as the raw consumer is.
  while ((await ingested()) === 0) await new Promise((r) => setTimeout(r, 5));
  const started = performance.now();
  const first = await ingested();
  while ((await ingested()) < kafkaMessages) await new Promise((r) => setTimeout(r, 20));
  const workerSeconds = (performance.now() - started) / 1000;
  await worker.stop();
  registry.close();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, `${topic}-p`, `${topic}-l`] }).catch(() => {});
  await admin.disconnect();
  return { worker: (kafkaMessages - first) / workerSeconds, raw: kafkaMessages / rawSeconds };
}

const ingestWorker: number[] = [];
const ingestBare: number[] = [];
const evalWorker: number[] = [];
const evalBare: number[] = [];
for (let run = 0; run < runs; run++) {
  ingestBare.push(timeIngestBare());
  ingestWorker.push(timeIngestWorker());
  const e = timeEvaluation();
  evalWorker.push(e.worker);
  evalBare.push(e.bare);
}
const result: Record<string, number> = {
  ingestNsPerUpdate: median(ingestWorker),
  bareNsPerUpdate: median(ingestBare),
  evaluateMsPerWindow: median(evalWorker),
  compareToProfileMsPerWindow: median(evalBare),
};
console.log(`drift worker, ${runs} runs, medians (2-core machine shared with other engineers: noisy)`);
console.log(
  `ingest, per FeatureUpdate (5 features):   worker ${fmt(result.ingestNsPerUpdate!)} ns   ` +
    `bare sketches ${fmt(result.bareNsPerUpdate!)} ns   ratio ${(result.ingestNsPerUpdate! / result.bareNsPerUpdate!).toFixed(2)}×`,
);
console.log(
  `test one 1000-value window:             worker ${result.evaluateMsPerWindow!.toFixed(2)} ms   ` +
    `compareToProfile ${result.compareToProfileMsPerWindow!.toFixed(2)} ms   ratio ${(result.evaluateMsPerWindow! / result.compareToProfileMsPerWindow!).toFixed(2)}×`,
);
const k = await kafkaFigures();
if (k) {
  result["kafkaWorkerMsgPerSec"] = k.worker;
  result["kafkaRawMsgPerSec"] = k.raw;
  console.log(
    `Kafka, ${fmt(kafkaMessages)} Avro FeatureUpdates:   worker ${fmt(k.worker)} msg/s   raw KafkaJS ${fmt(k.raw)} msg/s   ` +
      `ratio ${(k.worker / k.raw).toFixed(2)}× (one run)`,
  );
} else {
  console.log("Kafka figures skipped: KAFKA_BROKERS / SCHEMA_REGISTRY_URL not set and no .tessera/stack.env");
}
console.log(`saved ${saveResult("drift-worker", result)}`);
