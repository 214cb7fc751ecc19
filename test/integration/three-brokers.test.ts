/**
 * Three Kafka brokers (KRaft, each also a controller; topics with replication factor 3 and
 * min.insync.replicas 2), and the leader of the source topic's partition 0 SIGKILLed mid-stream:
 * - the producer API (idempotent, acks=all) loses nothing: every acknowledged event is in the log,
 *   and none is there twice;
 * - the archiver (a child process) archives every record of the log exactly once;
 * - the stream processor (a child process, config from a file) ends equal to the batch evaluator.
 * Both services run under a supervisor that restarts them if they exit, as Kubernetes would; the
 * restarts are counted and printed.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Bus,
  createKafka,
  ensureTopics,
  parseAvroSchema,
  SchemaRegistry,
  TesseraProducer,
} from "@tessera/kafka";
import { createOnlineStore, readRows } from "@tessera/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnArchiver } from "../../services/archiver/test/fixtures.js";
import { exited, sleep, spawnProcessor, writeConfig } from "../../services/stream-processor/test/child.js";
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
} from "../../services/stream-processor/test/fixtures.js";
import { clusterMembers, clusters, services, uniqueName } from "../support/index.js";

const EVENTS = 24_000;
const PER_SECOND = 1200;
const PARTITIONS = 3;

/** A child process restarted whenever it exits, until stopped. */
function supervise(start: () => ChildProcess) {
  let child = start();
  let stopping = false;
  let restarts = 0;
  const watch = (c: ChildProcess) =>
    c.once("exit", () => {
      if (stopping) return;
      restarts++;
      child = start();
      watch(child);
    });
  watch(child);
  return {
    restarts: () => restarts,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      stopping = true;
      child.kill(signal);
      return exited(child);
    },
  };
}

let brokers: string[];
let kafka: Bus;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  brokers = (await clusters("kafka-cluster")).KAFKA_CLUSTER_BROKERS.split(",");
  kafka = createKafka({ brokers, clientId: "three-brokers-test" });
});

afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
  // A broker this test killed is started again, for whoever uses the cluster next.
  await clusters("kafka-cluster");
});

describe("three brokers, the partition leader SIGKILLed mid-stream", () => {
  it("topics get replication factor 3 and min.insync.replicas 2 from the cluster", async () => {
    const topic = uniqueName("rf");
    await ensureTopics(kafka, [{ topic, partitions: 2 }]);
    const admin = kafka.admin();
    await admin.connect();
    cleanup.push(() => admin.disconnect());
    const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    for (const p of meta!.partitions) {
      expect(p.replicas).toHaveLength(3);
      expect(p.isr).toHaveLength(3);
    }
    // Asked of any broker: one may learn of the new topic a moment after the others.
    const configs = await waitFor("the topic's configs", () => admin.describeTopicConfigs([topic]), 10_000);
    expect(configs[0]!.configEntries.find((e) => e.configName === "min.insync.replicas")?.configValue).toBe(
      "2",
    );
  });

  it("loses and doubles nothing: producer API, archiver, stream processor", {
    timeout: 300_000,
  }, async () => {
    const env = services();
    const topic = uniqueName("three-brokers");
    const deadLetter = `${topic}.dead-letter`;
    await ensureTopics(kafka, [
      { topic, partitions: PARTITIONS },
      { topic: deadLetter, partitions: 1 },
    ]);
    const registry = new SchemaRegistry(env.SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());
    const producer = new TesseraProducer<{ [t: string]: Payment }>({
      kafka,
      registry,
      schemas: { [topic]: paymentSchema },
    });
    cleanup.push(() => producer.disconnect());
    await producer.connect();

    // The services, on the cluster, as child processes.
    const dir = mkdtempSync(join(tmpdir(), "three-brokers-"));
    const root = join(dir, "archive");
    const childEnv = { KAFKA_BROKERS: brokers.join(",") };
    // Each archiver child's output, kept for the failure message of a wait that times out.
    const archiverOutputs: (() => string)[] = [];
    const archiver = supervise(() => {
      const spawned = spawnArchiver({
        ...childEnv,
        TESSERA_ARCHIVER_TOPICS: topic,
        TESSERA_ARCHIVER_ROOT: root,
        TESSERA_ARCHIVER_GROUP_ID: uniqueName("archiver"),
        TESSERA_ARCHIVER_ROLL_MAX_RECORDS: "2000",
        TESSERA_ARCHIVER_ROLL_MAX_AGE_MS: "500",
        TESSERA_ARCHIVER_DEAD_LETTER_TOPIC: deadLetter,
        TESSERA_ARCHIVER_OPS_PORT: "0",
        TESSERA_ARCHIVER_SESSION_TIMEOUT_MS: "6000",
      });
      archiverOutputs.push(spawned.output);
      return spawned.child;
    });
    cleanup.push(() => archiver.stop("SIGKILL"));
    const yaml = definitionsYaml(topic, "cards");
    writeFileSync(join(dir, "features.yaml"), yaml);
    const keyPrefix = `${uniqueName("brokers")}:`;
    const name = uniqueName("brokers");
    const configFile = writeConfig(dir, {
      name,
      definitions: join(dir, "features.yaml"),
      kafka: {
        brokers,
        schemaRegistryUrl: env.SCHEMA_REGISTRY_URL,
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 1000,
      },
      store: { kind: "redis", redisUrl: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 },
      topics: { deadLetter },
      publishFeatures: false,
      flush: { maxEvents: 2000, maxDelayMs: 500 },
      ops: { port: 0 },
    });
    const log = join(dir, "processor.log");
    const processor = supervise(() => spawnProcessor(configFile, log));
    cleanup.push(() => processor.stop("SIGKILL"));
    const store = createOnlineStore({ kind: "redis", url: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 });
    cleanup.push(() => store.close());

    // Publish at a steady rate; a third of the way in, kill the broker leading partition 0.
    const started = Date.now();
    const events = payments(EVENTS, { entities: 400, seed: 11, endMs: started - 1000, spanMs: 10 * 60_000 });
    const acknowledged: Payment[] = [];
    const rejected: { at: number; error: string }[] = [];
    const admin = kafka.admin();
    await admin.connect();
    cleanup.push(() => admin.disconnect());
    const leaderOf0 = async () =>
      (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.find(
        (p) => p.partitionId === 0,
      )!.leader;
    let killed: { node: number; at: number } | undefined;
    const slice = PER_SECOND / 10;
    for (let i = 0; i < events.length; i += slice) {
      if (!killed && i >= events.length / 3) {
        const node = await leaderOf0();
        const pid = (await clusterMembers("kafka-cluster")).get(`kafka-cluster-${node}`);
        expect(pid, `pid of broker ${node}`).toBeDefined();
        process.kill(pid!, "SIGKILL");
        killed = { node, at: Date.now() - started };
      }
      const batch = events.slice(i, i + slice);
      try {
        await producer.publishBatch(
          topic,
          batch.map((e) => ({ value: e, key: e.card_id })),
        );
        acknowledged.push(...batch);
      } catch (error) {
        // Not acknowledged: a caller would retry. Counted, and the test fails below if any.
        rejected.push({ at: Date.now() - started, error: (error as Error).message });
      }
      const due = started + ((i + slice) / PER_SECOND) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    const produceSeconds = (Date.now() - started) / 1000;
    const newLeader = await leaderOf0();

    // The log, read back by an independent consumer.
    const type = parseAvroSchema(paymentSchema);
    const records = await readTopic(brokers, topic, (value) => type.fromBuffer(value.subarray(5)) as Payment);
    const logged = records.map((r) => ({ row: r.row, seq: r.offset }));
    const ids = logged.map((e) => e.row.transaction_id);
    const twice = duplicates(records);
    console.log(
      `three brokers: killed broker ${killed!.node} (leader of partition 0) at ${(killed!.at / 1000).toFixed(1)} s; ` +
        `new leader ${newLeader}; ${acknowledged.length} of ${EVENTS} acknowledged in ${produceSeconds.toFixed(1)} s, ` +
        `${rejected.length} batches rejected${rejected.length ? ` (${rejected[0]!.error} at ${rejected[0]!.at} ms)` : ""}; ` +
        `${logged.length} records in the log${twice.length ? `; twice: ${JSON.stringify(twice.slice(0, 5))}` : ""}`,
    );
    expect(newLeader).not.toBe(killed!.node);
    // Producer API: every acknowledged event in the log, none twice, none rejected.
    expect(new Set(ids).size).toBe(ids.length);
    const inLog = new Set(ids);
    expect(acknowledged.filter((e) => !inLog.has(e.transaction_id))).toEqual([]);
    expect(rejected).toEqual([]);

    // Archiver: each record of the log exactly once.
    const archived = async () => {
      const rows: Record<string, unknown>[] = [];
      for await (const r of readRows(join(root, topic), { columns: ["_kafka_partition", "_kafka_offset"] }))
        rows.push(r);
      return rows;
    };
    const rows = await waitFor(
      "the archiver to archive the log",
      async () => {
        const r = await archived();
        return r.length >= logged.length ? r : undefined;
      },
      120_000,
    ).catch(async (error: Error) => {
      const have = await archived().catch((e: Error) => `unreadable (${e.message})`);
      const count = typeof have === "string" ? have : `${have.length} rows`;
      const tails = archiverOutputs.map((o, i) => `--- archiver child ${i}:\n${o().slice(-4000)}`).join("\n");
      throw new Error(
        `${error.message}: archive holds ${count} of ${logged.length}; restarts ${archiver.restarts()}\n${tails}`,
      );
    });
    const keys = rows.map((r) => `${r["_kafka_partition"]}:${r["_kafka_offset"]}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(keys)).toEqual(new Set(records.map((r) => `${r.partition}:${r.offset}`)));

    // Processor: its stored offsets reach the end of the log, and every entity equals the batch evaluator.
    const groupId = `tessera-processor-${name}`;
    await waitFor(
      "the processor to catch up",
      async () => {
        const offsets = await store.readOffsets(groupId, topic);
        const applied = [...offsets.values()].reduce((n, o) => n + o + 1, 0);
        return applied === logged.length ? true : undefined;
      },
      120_000,
    );
    const view = viewOf(yaml);
    const t = Date.now();
    const batch = batchValues(view, logged, t);
    const online = await onlineValues(store, view, [...batch.keys()], t);
    const diffs = differences(online, batch);
    const counted = [...online.values()].reduce((n, v) => n + (v["n_1h"] as number), 0);
    console.log(
      `three brokers: archiver restarts ${archiver.restarts()}, processor restarts ${processor.restarts()}; ` +
        `${rows.length} archived; processor counted ${counted}, entities differing ${diffs.length}`,
    );
    const stopped = await processor.stop();
    expect(stopped.code, readFileSync(log, "utf8").slice(-3000)).toBe(0);
    await archiver.stop();
    expect(counted).toBe(logged.length);
    expect(diffs.slice(0, 3)).toEqual([]);
  });
});

interface LogRecord {
  partition: number;
  offset: number;
  row: Payment;
}

/**
 * Every record of the topic up to its current end, once per (partition, offset) even if the reader's
 * fetches deliver some twice, in log order per partition.
 */
async function readTopic(
  brokers: string[],
  topic: string,
  decode: (value: Buffer) => Payment,
): Promise<LogRecord[]> {
  const client = createKafka({ brokers, clientId: "three-brokers-reader" });
  const admin = client.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((e) => [e.partition, Number(e.high)]));
  await admin.disconnect();
  const total = [...ends.values()].reduce((a, b) => a + b, 0);
  const seen = new Map<string, LogRecord>();
  const consumer = client.consumer({ groupId: uniqueName("three-brokers-reader") });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const offset = Number(m.offset);
            if (offset < ends.get(batch.partition)!)
              seen.set(`${batch.partition}:${offset}`, {
                partition: batch.partition,
                offset,
                row: decode(m.value!),
              });
          }
          if (seen.size >= total) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return [...seen.values()].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** Records whose transaction id is in the log more than once: where each copy is. */
function duplicates(records: LogRecord[]) {
  const at = new Map<string, string[]>();
  for (const r of records)
    at.set(r.row.transaction_id, [...(at.get(r.row.transaction_id) ?? []), `${r.partition}:${r.offset}`]);
  return [...at].filter(([, places]) => places.length > 1).map(([id, places]) => ({ id, places }));
}
