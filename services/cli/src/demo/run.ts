/**
 * The embedded demo: every Tessera service in one process, wired through an in-memory bus, registry
 * and store (or, with --stack, the real services from .tessera/stack.env), fed by a synthetic
 * payments stream. It builds a reference from a point-in-time snapshot, then injects drift and shows
 * the alert firing.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ArchiverHandle, startArchiver } from "@tessera/archiver";
import {
  type DriftAlert,
  type DriftWorkerHandle,
  dashboardPlugin,
  defaultConfig,
  startDriftWorker,
} from "@tessera/drift-worker";
import { type FeatureServerHandle, featureServerConfig, startFeatureServer } from "@tessera/feature-server";
import {
  createKafka,
  ensureTopics,
  type LabelRecord,
  MemoryBroker,
  SchemaRegistry,
  TesseraProducer,
  tesseraTopics,
} from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { buildProfile, type ReferenceProfile } from "@tessera/stats";
import { createOnlineStore, listTableFiles, type OnlineStore, readRows, runSnapshot } from "@tessera/stores";
import { loadProcessorConfig, type Processor, startProcessor } from "@tessera/stream-processor";
import type { Definitions } from "@tessera/transforms";
import type { Kafka } from "kafkajs";
import { defaultGeneratorOptions, MODEL, PaymentsGenerator } from "./generator.js";
import { readSchema } from "./schemas.js";

export interface DemoOptions {
  durationSeconds: number;
  seed: number;
  /** Payments per second. */
  rate: number;
  /** Seconds after the live stream starts when drift is injected (default: 60% of the duration). */
  driftAfterSeconds?: number;
  stack: boolean;
  host: string;
  port: number;
  /** Where the archive, snapshot and profile go. */
  outDir: string;
  definitionsPath: string;
  definitions: Definitions;
  /** Print progress lines (false: only the summary). */
  verbose: boolean;
}

export interface DemoResult {
  payments: number;
  /** Payments replayed from the past before the live stream, so windows start full. */
  backlog: number;
  /** When drift was switched on (epoch ms), or null if the demo ended first. */
  driftInjectedAt: number | null;
  servedFeature: { entity: string; values: Record<string, unknown> } | null;
  alerts: DriftAlert[];
  snapshot: string;
  profile: string;
  archiveFiles: number;
}

/** The demo's source topic (examples/demo/features.yaml) beside Tessera's own. */
const topics = { payments: "payments.transactions", ...tesseraTopics };

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

interface Infrastructure {
  kafka: Kafka;
  registry: SchemaRegistry;
  store: OnlineStore;
  describe: string;
}

function infrastructure(options: DemoOptions): Infrastructure {
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

export async function runDemo(options: DemoOptions, signal: AbortSignal): Promise<DemoResult> {
  const say = (line: string) => {
    if (options.verbose) console.log(line);
  };
  const quiet = (name: string) => createLogger(name, process.env["TESSERA_LOG_LEVEL"] ?? "error");
  rmSync(options.outDir, { recursive: true, force: true });
  const archiveDir = join(options.outDir, "archive");
  mkdirSync(archiveDir, { recursive: true });

  const infra = infrastructure(options);
  say(`tessera demo: ${infra.describe}`);
  await ensureTopics(infra.kafka, [
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

  const stops: Array<() => Promise<unknown>> = [];
  const alerts: DriftAlert[] = [];
  let drift: DriftWorkerHandle | undefined;
  let servedFeature: DemoResult["servedFeature"] = null;
  let payments = 0;
  try {
    const processor: Processor = await startProcessor(
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

    const archiver: ArchiverHandle = await startArchiver(
      {
        topics: [topics.payments],
        root: archiveDir,
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
        logger: quiet("feature-server"),
        auditLog: quiet("audit"),
        plugins: [dashboardPlugin({ status: () => drift?.monitor.status() ?? null })],
      },
    );
    stops.push(() => server.stop());

    // Many cards, few payments each: successive updates of one card are correlated, and a window
    // should hold mostly different cards to be a fair sample.
    const generator = new PaymentsGenerator({ ...defaultGeneratorOptions, seed: options.seed, cards: 2000 });
    const card = generator.cardIds()[0]!;
    say(
      [
        "",
        `  features:  curl -s '${server.url}/v1/features/card_id/${card}?features=card_activity:*'`,
        `             curl -s -X POST ${server.url}/v1/features -H 'content-type: application/json' \\`,
        `                  -d '{"features":["card_activity:*"],"entities":{"card_id":["${card}"]}}'`,
        `  dashboard: ${server.url}/dashboard     API docs: ${server.url}/docs     gRPC: ${options.host}:${server.grpcPort}`,
        `  metrics:   ${server.url}/metrics`,
        "",
      ].join("\n"),
    );

    // Replay the last five minutes first: windows of minutes are full from the first live payment,
    // so the reference is taken in a steady state and only the injected drift can move it. A second
    // pass fills the time the first one took, so history and live traffic join without a gap.
    let backlog = 0;
    const replay = async (from: number, to: number) => {
      const count = Math.round(((to - from) / 1000) * options.rate);
      for (let sent = 0; sent < count; sent += 2000) {
        const events = Array.from({ length: Math.min(2000, count - sent) }, (_, i) =>
          generator.payment(from + Math.floor(((sent + i) / count) * (to - from))),
        );
        await producer.publishBatch(
          topics.payments,
          events.map((e) => ({ value: e.payment, key: e.payment.card_id })),
        );
      }
      backlog += count;
    };
    say("replaying the last 5 minutes of payments…");
    const replayed = Date.now();
    await replay(replayed - 5 * 60_000, replayed);
    await replay(replayed, Date.now());
    payments += backlog;

    const total = options.durationSeconds * 1000;
    const start = Date.now();
    const referenceEnd = start + total * 0.35;
    const driftAt =
      start + (options.driftAfterSeconds !== undefined ? options.driftAfterSeconds * 1000 : total * 0.6);
    const pendingLabels: LabelRecord[] = [];
    const referencePredictions: Array<Record<string, unknown>> = [];
    let driftInjectedAt: number | null = null;
    let phase: "reference" | "steady" | "drift" = "reference";
    let reference: Awaited<ReturnType<typeof buildReference>> | undefined;
    let lastPoll = 0;

    say(`phase 1/3: streaming ${options.rate} payments/s to build a reference`);
    // Payments follow the wall clock, not the loop's speed, so the live rate equals the replayed one.
    let owed = 0;
    let last = start;
    while (Date.now() - start < total && !signal.aborted) {
      const tick = Date.now();
      owed += ((tick - last) / 1000) * options.rate;
      const count = Math.floor(owed);
      owed -= count;
      const batch = Array.from({ length: count }, (_, i) =>
        generator.payment(last + Math.floor(((i + 1) / (count + 1)) * (tick - last))),
      );
      last = tick;
      payments += batch.length;
      if (batch.length > 0) {
        await producer.publishBatch(
          topics.payments,
          batch.map((b) => ({ value: b.payment, key: b.payment.card_id })),
        );
        await producer.publishBatch(
          topics.predictions,
          batch.map((b) => ({ value: b.prediction, key: b.prediction.entity })),
        );
      }
      pendingLabels.push(...batch.map((b) => b.label));
      if (phase === "reference") {
        for (const b of batch) {
          referencePredictions.push({
            [`${MODEL}__score`]: b.prediction.score,
            [`${MODEL}__class`]: b.prediction.class,
          });
        }
      }
      const due = pendingLabels.filter((l) => l.labelled_at <= tick);
      if (due.length > 0) {
        pendingLabels.splice(0, due.length);
        await producer.publishBatch(
          topics.labels,
          due.map((l) => ({ value: l, key: l.entity })),
        );
      }

      if (phase === "reference" && tick >= referenceEnd) {
        await archived(infra.kafka, "tessera-demo-archiver", topics.payments, signal);
        reference = await buildReference(options, archiveDir, start, referenceEnd, referencePredictions, say);
        drift = await startDriftWorker(
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
          }),
          {
            profile: reference.profileData,
            kafka: infra.kafka,
            registry: infra.registry,
            logger: quiet("drift-worker"),
            http: false,
            sinks: [
              {
                name: "demo-console",
                async send(alert: DriftAlert) {
                  alerts.push(alert);
                  say(
                    `  ALERT ${alert.status} ${alert.severity} ${alert.kind} ${alert.subject}: ${alert.message}`,
                  );
                },
              },
            ],
          },
        );
        stops.push(() => drift!.stop());
        phase = "steady";
        say(
          `phase 2/3: drift worker watching ${Object.keys(drift.monitor.status().reference.features).length} reference columns; traffic unchanged`,
        );
      }
      if (phase === "steady" && tick >= driftAt) {
        generator.drift = true;
        driftInjectedAt = tick;
        phase = "drift";
        say("phase 3/3: injecting drift: 25% of payments from a new country (BR), amounts 1.8× larger");
      }
      if (tick - lastPoll >= 3000) {
        lastPoll = tick;
        const served = await fetchFeatures(server.url, card).catch(() => null);
        if (served) {
          servedFeature = served;
          say(`  served ${card}: ${summarise(served.values)}`);
        }
      }
      await sleep(Math.max(0, 100 - (Date.now() - tick)), signal);
    }
    await drift?.flushAlerts();
    const archiveFiles = (await listTableFiles(archiveDir)).length;
    return {
      payments,
      backlog,
      driftInjectedAt,
      servedFeature,
      alerts,
      snapshot: reference?.snapshot ?? "",
      profile: reference?.profile ?? "",
      archiveFiles,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await infra.store.close().catch(() => {});
    infra.registry.close();
  }
}

/** Wait until the archiver has committed (so renamed into place) everything written so far. */
async function archived(kafka: Kafka, groupId: string, topic: string, signal: AbortSignal): Promise<void> {
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

/** Snapshot the card features just after each archived reference payment, then profile them. */
async function buildReference(
  options: DemoOptions,
  archiveDir: string,
  from: number,
  until: number,
  predictions: Array<Record<string, unknown>>,
  say: (line: string) => void,
): Promise<{ snapshot: string; profile: string; profileData: ReferenceProfile }> {
  const spine: string[] = ["card_id,timestamp"];
  for await (const row of readRows(archiveDir, { columns: ["card_id", "event_time"] })) {
    const t = Number(row["event_time"]);
    // The processor publishes values right after an event: the reference looks at the same moments.
    if (t >= from && t < until) spine.push(`${row["card_id"]},${t + 1}`);
  }
  const spinePath = join(options.outDir, "spine.csv");
  writeFileSync(spinePath, `${spine.join("\n")}\n`);
  const snapshot = join(options.outDir, "reference-snapshot.parquet");
  const summary = await runSnapshot({
    selections: options.definitions.views.map((view) => ({ view, features: view.features.map((_, i) => i) })),
    events: archiveDir,
    spine: spinePath,
    out: snapshot,
    fullNames: true,
  });
  const featureColumns = summary.columns.filter((c) => c.includes("__"));
  const rows: Record<string, unknown>[] = [];
  for await (const row of readRows(snapshot, { columns: featureColumns })) rows.push(row);
  const features = buildProfile(rows, { columns: featureColumns });
  const scores = buildProfile(predictions);
  const profile: ReferenceProfile = { ...features, features: { ...features.features, ...scores.features } };
  const profilePath = join(options.outDir, "reference-profile.json");
  writeFileSync(profilePath, JSON.stringify(profile));
  say(
    `  reference: point-in-time snapshot of ${summary.spineRows} rows × ${featureColumns.length} features → ${snapshot}` +
      ` (+ ${predictions.length} model scores)`,
  );
  say(`             profile → ${profilePath}`);
  return { snapshot, profile: profilePath, profileData: profile };
}

async function fetchFeatures(
  url: string,
  card: string,
): Promise<{ entity: string; values: Record<string, unknown> } | null> {
  const response = await fetch(`${url}/v1/features`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ features: ["card_activity:*"], entities: { card_id: [card] } }),
    signal: AbortSignal.timeout(2000),
  });
  if (!response.ok) return null;
  const body = (await response.json()) as {
    entities: Record<
      string,
      { features: string[]; results: Array<{ id: string; values: unknown[]; statuses: string[] }> }
    >;
  };
  const cards = body.entities?.["card_id"];
  const result = cards?.results[0];
  if (!cards || !result?.statuses.includes("present")) return null;
  return {
    entity: card,
    values: Object.fromEntries(cards.features.map((name, i) => [name, result.values[i]])),
  };
}

function summarise(values: Record<string, unknown>): string {
  return Object.entries(values)
    .slice(0, 5)
    .map(
      ([name, value]) =>
        `${name}=${typeof value === "number" ? Math.round(value * 100) / 100 : JSON.stringify(value)}`,
    )
    .join(" ");
}

export { MODEL };
