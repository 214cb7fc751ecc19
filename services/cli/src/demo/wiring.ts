/**
 * The demo's wiring: the infrastructure (in memory, or the local stack), its topics, and every
 * Tessera service started in-process against it. run.ts drives the phases.
 */
import { join } from "node:path";
import { startArchiver } from "@tessera/archiver";
import {
  type DriftStatus,
  type DriftWorkerHandle,
  dashboardPlugin,
  defaultConfig,
  startDriftWorker,
} from "@tessera/drift-worker";
import { type FeatureServerHandle, featureServerConfig, startFeatureServer } from "@tessera/feature-server";
import {
  type Bus,
  createKafka,
  type DriftAlertRecord,
  ensureTopics,
  GateFollower,
  MemoryBroker,
  SchemaRegistry,
  TesseraProducer,
  tesseraStateTopics,
  tesseraTopics,
} from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import type { ReferenceProfile } from "@tessera/stats";
import { createOnlineStore, type OnlineStore } from "@tessera/stores";
import { loadProcessorConfig, startProcessor } from "@tessera/stream-processor";
import type { GateState } from "@tessera/transforms";
import type { DemoOptions } from "./run.js";
import { readSchema } from "./schemas.js";

/** The demo's source topic (examples/demo/features.yaml) beside Tessera's own. */
export const topics = { payments: "payments.transactions", ...tesseraTopics, gate: tesseraStateTopics.gate };

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

export interface Infrastructure {
  kafka: Bus;
  registry: SchemaRegistry;
  store: OnlineStore;
  describe: string;
}

export function infrastructure(options: DemoOptions): Infrastructure {
  if (!options.stack) {
    return {
      kafka: new MemoryBroker().client(),
      registry: SchemaRegistry.inMemory(),
      store: createOnlineStore({ kind: "memory" }),
      describe: "in-memory bus, registry and store (no infrastructure)",
    };
  }
  const env = process.env;
  for (const name of ["KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "REDIS_URL"]) {
    if (!env[name])
      throw new Error(`--stack needs ${name}: run \`npm run stack:up\` (it writes .tessera/stack.env)`);
  }
  return {
    kafka: createKafka({ brokers: env["KAFKA_BROKERS"]!.split(","), clientId: "tessera-demo" }),
    registry: new SchemaRegistry(env["SCHEMA_REGISTRY_URL"]!),
    store: createOnlineStore({ kind: "redis", url: env["REDIS_URL"]!, keyPrefix: "tessera-demo:" }),
    describe: `Kafka ${env["KAFKA_BROKERS"]}, registry ${env["SCHEMA_REGISTRY_URL"]}, Redis ${env["REDIS_URL"]}`,
  };
}

/** Every topic the demo uses: the source with 4 partitions, Tessera's with 2. */
export async function createTopics(kafka: Bus): Promise<void> {
  await ensureTopics(kafka, [
    { topic: topics.payments, partitions: 4 },
    ...[
      topics.predictions,
      topics.labels,
      topics.features,
      topics.alerts,
      topics.deadLetter,
      topics.servedFeatures,
    ].map((topic) => ({ topic, partitions: 2 })),
  ]);
}

/** What the demo stops, last started first. */
/** Where the archiver writes: the demo's snapshot reads it back. */
export const archiveDir = (options: DemoOptions) => join(options.outDir, "archive");

export type Stops = Array<() => Promise<unknown>>;

/**
 * The processor, the archiver, a producer of payments, predictions and labels, and the feature server
 * (serving the dashboard with `driftStatus`, null until the drift worker starts; following the gate
 * topic, each change reported to `onGate`), each added to `stops`.
 */
export async function startServices(
  options: DemoOptions,
  infra: Infrastructure,
  stops: Stops,
  quiet: (name: string) => Logger,
  driftStatus: () => DriftStatus | null,
  onGate: (subject: string, state: GateState | undefined) => void,
): Promise<{ server: FeatureServerHandle; producer: TesseraProducer }> {
  const processor = await startProcessor(
    loadProcessorConfig({
      env: {},
      overrides: {
        name: "demo",
        definitions: options.definitionsPath,
        store: { kind: options.stack ? "redis" : "memory" },
        flush: { maxEvents: 2000, maxDelayMs: 200 },
        fromBeginning: true,
        readyMaxLag: 100,
        topics: { deadLetter: topics.deadLetter, features: topics.features },
      },
    }),
    {
      kafka: infra.kafka,
      registry: infra.registry,
      store: infra.store,
      definitions: options.definitions,
      logger: quiet("stream-processor"),
      ops: false,
    },
  );
  stops.push(() => processor.stop());

  const archiver = await startArchiver(
    {
      topics: [topics.payments],
      root: archiveDir(options),
      groupId: "tessera-demo-archiver",
      timestampField: "event_time",
      roll: { maxRecords: 50_000, maxBytes: 64 * 1024 * 1024, maxAgeMs: 2000 },
      deadLetterTopic: topics.deadLetter,
      sessionTimeoutMs: 30_000,
      ops: { host: "127.0.0.1", port: 0 },
    },
    { kafka: infra.kafka, registry: infra.registry, logger: quiet("archiver"), ops: false },
  );
  stops.push(() => archiver.stop());

  const producer = new TesseraProducer({
    kafka: infra.kafka,
    registry: infra.registry,
    schemas: {
      [topics.payments]: readSchema("payment_transaction"),
      [topics.predictions]: readSchema("prediction"),
      [topics.labels]: readSchema("label"),
    },
  });
  stops.push(() => producer.disconnect());

  // The gates the drift worker trips, read back from their topic as any feature server reads them.
  const gates = new GateFollower({ kafka: infra.kafka, topic: topics.gate, onChange: onGate });
  await gates.start();
  stops.push(() => gates.stop());

  // The dashboard reads the drift worker's status in-process; until the reference exists it says so.
  const server: FeatureServerHandle = await startFeatureServer(
    featureServerConfig({
      http: { host: options.host, port: options.port },
      grpc: { enabled: true, host: options.host, port: 0 },
      auth: { allowAnonymous: true },
      featureLog: { sampleRate: 0 },
    }),
    {
      store: infra.store,
      definitions: options.definitions,
      gates,
      logger: quiet("feature-server"),
      auditLog: quiet("audit"),
      plugins: [dashboardPlugin({ status: driftStatus })],
    },
  );
  stops.push(() => server.stop());

  return { server, producer };
}

/** The drift worker, against the reference profile, reporting each alert to `onAlert`. */
export async function startDrift(
  options: DemoOptions,
  infra: Infrastructure,
  profile: ReferenceProfile,
  quiet: (name: string) => Logger,
  onAlert: (alert: DriftAlertRecord) => void,
): Promise<DriftWorkerHandle> {
  return startDriftWorker(
    defaultConfig({
      http: { host: options.host, port: 0 },
      topics: {
        features: topics.features,
        predictions: topics.predictions,
        labels: topics.labels,
        alerts: topics.alerts,
        deadLetter: topics.deadLetter,
      },
      groupId: "tessera-demo-drift",
      fromBeginning: false,
      reference: { name: "demo-reference" },
      evaluation: { intervalMs: 2000 },
      window: { mode: "count", size: 1200 },
      thresholds: { minSamples: 500 },
      hysteresis: { resolveAfter: 3, coolDownMs: 5000 },
      accuracy: { window: 300 },
      // Trips the view's (or model's) gate on a critical incident; clears 10 s after it resolved.
      gates: { enabled: true, topic: topics.gate, clearAfterMs: 10_000 },
    }),
    {
      profile,
      definitions: options.definitions,
      kafka: infra.kafka,
      registry: infra.registry,
      logger: quiet("drift-worker"),
      http: false,
      sinks: [
        {
          name: "demo-console",
          async send(alert: DriftAlertRecord) {
            onAlert(alert);
          },
        },
      ],
    },
  );
}

/** Wait until the archiver has committed (so renamed into place) everything written so far. */
export async function archived(
  kafka: Bus,
  groupId: string,
  topic: string,
  signal: AbortSignal,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !signal.aborted) {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const behind = (committed?.partitions ?? []).filter(
        (p) => Number(p.offset) < (ends.get(p.partition) ?? 0),
      );
      if (committed && behind.length === 0) return;
      await sleep(250, signal);
    }
    throw new Error(`the archiver did not catch up with ${topic} within 60 s`);
  } finally {
    await admin.disconnect();
  }
}
