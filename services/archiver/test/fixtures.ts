/** Shared by the archive tests: payment events on a fresh topic, and an archiver child process. */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  type Bus,
  createKafka,
  ensureTopics,
  type PaymentTransactionRecord,
  SchemaRegistry,
  tesseraTopics,
  valueSubject,
} from "@tessera/kafka";

export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
export const paymentSchema = JSON.parse(
  readFileSync(new URL("../../../schemas/avro/payment_transaction.avsc", import.meta.url), "utf8"),
);

/** One event of schemas/avro/payment_transaction.avsc. */
export type Payment = PaymentTransactionRecord;

/** Deterministic events over `hours` hours from t0, slightly out of order, `cards` entities. */
export function payments(
  n: number,
  t0: number,
  options: { hours?: number; cards?: number; seed?: number } = {},
): Payment[] {
  const hours = options.hours ?? 6;
  const cards = options.cards ?? 40;
  const seed = options.seed ?? 1;
  return Array.from({ length: n }, (_, i) => {
    const h = (i * 2_654_435_761 + seed) >>> 0;
    return {
      transaction_id: `tx-${seed}-${i}`,
      card_id: `card-${h % cards}`,
      merchant_id: `m-${(h >>> 8) % 17}`,
      amount: ((h >>> 4) % 100_000) / 100,
      currency: "EUR",
      country: ["DE", "FR", "NL"][h % 3]!,
      event_time: t0 + Math.floor((i * hours * 3_600_000) / n) - ((h >>> 12) % 120_000),
    };
  });
}

export interface Source {
  kafka: Bus;
  registry: SchemaRegistry;
  topic: string;
  schemaId: number;
  /** Publishes events (keyed by card) in order; returns nothing until Kafka has them all. */
  publish(events: Payment[]): Promise<void>;
  /** Publishes raw, unframed bytes (a malformed record). */
  publishRaw(values: Buffer[], partition?: number): Promise<void>;
  close(): Promise<void>;
}

export async function paymentSource(
  brokers: string[],
  registryUrl: string,
  topic: string,
  partitions = 3,
): Promise<Source> {
  const kafka = createKafka({ brokers, clientId: "archive-test" });
  await ensureTopics(kafka, [{ topic, partitions }]);
  const registry = new SchemaRegistry(registryUrl);
  const schemaId = await registry.register(valueSubject(topic), paymentSchema);
  const serializer = registry.serializer({
    id: schemaId,
    schema: JSON.stringify(paymentSchema),
    type: "AVRO",
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return {
    kafka,
    registry,
    topic,
    schemaId,
    async publish(events) {
      for (let i = 0; i < events.length; i += 500) {
        const chunk = events.slice(i, i + 500);
        const messages = await Promise.all(
          chunk.map(async (e) => ({ key: e.card_id, value: await serializer.serialize(topic, e) })),
        );
        await producer.send({ topic, acks: -1, messages });
      }
    },
    async publishRaw(values, partition = 0) {
      await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value, partition })) });
    },
    async close() {
      await producer.disconnect();
      registry.close();
    },
  };
}

/** Every record of a topic (from the beginning), by partition and offset. */
export async function topicContents(
  kafka: Bus,
  topic: string,
): Promise<{ partition: number; offset: number; value: Buffer | null }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((n, e) => n + Number(e.high) - Number(e.low), 0);
  const out: { partition: number; offset: number; value: Buffer | null }[] = [];
  if (total === 0) return out;
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          out.push({ partition, offset: Number(message.offset), value: message.value });
          if (out.length >= total) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** The archiver as a child process (TypeScript through tsx), env-configured. */
export function spawnArchiver(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let output = "";
  const child = spawn(process.execPath, ["--import", "tsx", "services/archiver/src/main.ts"], {
    cwd: repoRoot,
    env: { ...process.env, TESSERA_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => {
    output += d;
  });
  child.stderr!.on("data", (d) => {
    output += d;
  });
  return { child, output: () => output };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs an in-process archiver until `count` records of the topic are in the archive, then stops it. */
export async function archiveAll(
  source: Source,
  root: string,
  count: number,
  startArchiver: typeof import("../src/index.js").startArchiver,
  configSchemaDefaults: { groupId: string },
): Promise<void> {
  const { joinLocation, locationKind, readRows } = await import("@tessera/stores");
  const archiver = await startArchiver(
    {
      topics: [source.topic],
      root,
      groupId: configSchemaDefaults.groupId,
      timestampField: "event_time",
      roll: { maxRecords: 2000, maxBytes: 64 << 20, maxAgeMs: 300 },
      deadLetterTopic: tesseraTopics.deadLetter,
      sessionTimeoutMs: 6000,
      ops: { host: "127.0.0.1", port: 0 },
    },
    { kafka: source.kafka, registry: source.registry, ops: false },
  );
  const dir = joinLocation(root, source.topic);
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      let n = 0;
      if ((await locationKind(dir)) === "directory")
        for await (const _ of readRows(dir, { columns: ["_kafka_offset"] })) n++;
      if (n >= count) return;
      if (Date.now() > deadline) throw new Error(`archiver wrote ${n} of ${count} records in 60 s`);
      await sleep(300);
    }
  } finally {
    await archiver.stop();
  }
}
