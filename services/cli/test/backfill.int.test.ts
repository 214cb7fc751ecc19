/**
 * Backfill then stream, on Kafka + Redis with the real archiver and stream processor: the first
 * events reach the store only through the archive and `runBackfill`, the later ones only through
 * the processor, which starts from the beginning of the topic. The online values must equal the
 * batch evaluator over all events: no gap, no double count.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOnlineStore, type OnlineStore } from "@tessera/stores";
import { finalizeAt, parseDefinitionsYaml, pointInTime, viewRuntime } from "@tessera/transforms";
import cassandra from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cassandraContactPoint, kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import { startArchiver } from "../../archiver/src/index.js";
import {
  archiveAll,
  paymentSource,
  payments,
  repoRoot,
  type Source,
  sleep,
} from "../../archiver/test/fixtures.js";
import { loadProcessorConfig, startProcessor } from "../../stream-processor/src/index.js";
import { BackfillRefusedError, runBackfill } from "../src/commands/backfill.js";

let source: Source;
let root: string;
let store: OnlineStore;
const keyPrefix = `${uniqueName("backfill")}:`;
const cleanup: (() => Promise<unknown>)[] = [];
let before: ReturnType<typeof payments> = [];

const definitionsYaml = (topic: string) => `
sources:
  - { name: payments, topic: ${topic}, entity: card_id, timestamp: event_time }
views:
  - name: cards
    source: payments
    features:
      - { name: n_1d, op: count, window: 1d }
      - { name: n_1h, op: count, window: 1h }
      - { name: amount_sum_6h, op: sum, column: amount, window: 6h }
      - { name: amount_max_1h, op: max, column: amount, window: 1h }
      - { name: amount_mean_1d, op: mean, column: amount, window: 1d }
      - { name: last_merchant, op: last, column: merchant_id, window: 1d }
`;

beforeAll(async () => {
  source = await paymentSource(kafkaBrokers(), services().SCHEMA_REGISTRY_URL, uniqueName("backfill"));
  root = await mkdtemp(join(tmpdir(), "tessera-backfill-"));
  store = createOnlineStore({ kind: "redis", url: services().REDIS_URL, keyPrefix });
});

afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
  await store?.close();
  await source?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("backfill then stream", () => {
  it("hands over at the stored offsets: online values equal the batch evaluator", {
    timeout: 120_000,
  }, async () => {
    const yamlFile = join(root, "features.yaml");
    writeFileSync(yamlFile, definitionsYaml(source.topic));
    const view = parseDefinitionsYaml(definitionsYaml(source.topic)).views[0]!;
    const now = Date.now();
    before = payments(6000, now - 3 * 3_600_000, { hours: 3, cards: 50, seed: 3 }).map((e) => ({
      ...e,
      event_time: Math.min(e.event_time, now - 60_000),
    }));
    await source.publish(before);
    await archiveAll(source, root, before.length, startArchiver, { groupId: uniqueName("archiver") });

    const name = uniqueName("cards");
    const options = {
      view,
      archive: join(root, source.topic),
      from: now - view.retentionMs,
      to: Date.now(),
      store,
      consumerGroup: `tessera-processor-${name}`,
    };
    const first = await runBackfill(options);
    expect(first.applied).toBe(before.length);
    expect(Object.values(first.offsets).reduce((n, o) => n + o + 1, 0)).toBe(before.length);
    // Idempotent: a second run, through the command line this time, writes the same tiles and offsets.
    const cli = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "services/cli/src/main.ts",
        "backfill",
        "--definitions",
        yamlFile,
        "--view",
        "cards",
        "--archive",
        root,
        "--from",
        String(options.from),
        "--processor",
        name,
        "--key-prefix",
        keyPrefix,
        "--json",
      ],
      { cwd: repoRoot, encoding: "utf8", env: { ...process.env, REDIS_URL: services().REDIS_URL } },
    );
    expect(cli.status, cli.stderr).toBe(0);
    const second = JSON.parse(cli.stdout);
    expect(second.offsets).toEqual(first.offsets);
    expect(second.states).toBe(first.states);
    expect(second.consumerGroup).toBe(options.consumerGroup);

    // The processor starts from the beginning of the topic: only its stored offsets keep it from
    // applying the backfilled events again.
    const config = loadProcessorConfig({
      env: {},
      overrides: {
        name,
        definitions: "unused.yaml",
        kafka: {
          brokers: kafkaBrokers(),
          schemaRegistryUrl: services().SCHEMA_REGISTRY_URL,
          sessionTimeoutMs: 6000,
          heartbeatIntervalMs: 500,
        },
        store: { kind: "redis", redisUrl: services().REDIS_URL, keyPrefix },
        topics: { deadLetter: `${source.topic}.dlt`, features: `${source.topic}.features` },
        publishFeatures: false,
        fromBeginning: true,
        flush: { maxEvents: 2000, maxDelayMs: 100 },
        ops: { port: 0 },
      },
    });
    const { ensureTopics } = await import("@tessera/kafka");
    await ensureTopics(source.kafka, [
      { topic: `${source.topic}.dlt`, partitions: 1 },
      { topic: `${source.topic}.features`, partitions: 1 },
    ]);
    const definitions = { sources: [], views: [view], models: [], slos: [] };
    const processor = await startProcessor(config, { definitions });
    cleanup.push(() => processor.stop());

    const after = payments(3000, Date.now() - 20 * 60_000, { hours: 1 / 3, cards: 50, seed: 4 }).map((e) => ({
      ...e,
      event_time: Math.min(e.event_time, Date.now() - 1000),
    }));
    await source.publish(after);
    const admin = source.kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(source.topic);
    await admin.disconnect();
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stored = await store.readOffsets(processor.groupId, source.topic);
      if (ends.every((e) => stored.get(e.partition) === Number(e.high) - 1)) break;
      if (Date.now() > deadline)
        throw new Error(`processor did not catch up: ${JSON.stringify([...stored])}`);
      await sleep(300);
    }

    const t = Date.now();
    const all = [...before, ...after];
    const entities = [...new Set(all.map((e) => e.card_id))];
    const states = await store.readStates(view.name, view.version, entities);
    const runtime = viewRuntime(view);
    let total = 0;
    for (const [k, entity] of entities.entries()) {
      const online = finalizeAt(runtime, states[k]!, t);
      const events = all
        .map((row, seq) => ({ row, seq }))
        .filter((e) => e.row.card_id === entity)
        .map((e) => {
          const prepared = runtime.prepare(e.row as unknown as Record<string, unknown>, e.seq);
          if (!prepared.ok) throw new Error(prepared.reason);
          return prepared;
        });
      const [batch] = pointInTime(runtime, events, [t]);
      view.features.forEach((f, i) => {
        const a = online[f.name];
        const b = batch![i];
        if (typeof a === "number" && typeof b === "number")
          expect(a, `${entity} ${f.name}`).toBeCloseTo(b, 6);
        else expect(a, `${entity} ${f.name}`).toEqual(b);
      });
      total += online["n_1d"] as number;
    }
    // Every event counted once: by the backfill (first 6000) or by the stream (last 3000).
    expect(total).toBe(all.length);

    // The processor now owns the group's offsets: another backfill is refused.
    await expect(runBackfill({ ...options, to: Date.now() })).rejects.toBeInstanceOf(BackfillRefusedError);
  });

  it("writes the same tiles to Cassandra", { timeout: 90_000 }, async () => {
    expect(before.length).toBe(6000); // the archive of the first test
    const view = parseDefinitionsYaml(definitionsYaml(source.topic)).views[0]!;
    const keyspace = `backfill_${uniqueName("ks").replace(/-/g, "_")}`;
    const cassandraStore = createOnlineStore({ kind: "cassandra", ...cassandraContactPoint(), keyspace });
    const client = new cassandra.Client(cassandraContactPoint());
    cleanup.push(async () => {
      await cassandraStore.close();
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      await client.shutdown();
    });
    const now = Date.now();
    const summary = await runBackfill({
      view,
      archive: join(root, source.topic),
      from: now - view.retentionMs,
      to: now,
      store: cassandraStore,
      consumerGroup: `tessera-processor-${uniqueName("cass")}`,
    });
    expect(summary.applied).toBe(before.length);
    const runtime = viewRuntime(view);
    const entities = [...new Set(before.map((e) => e.card_id))];
    const states = await cassandraStore.readStates(view.name, view.version, entities);
    let total = 0;
    for (const [k, entity] of entities.entries()) {
      const online = finalizeAt(runtime, states[k]!, now);
      const events = before
        .map((row, seq) => ({ row, seq }))
        .filter((e) => e.row.card_id === entity)
        .map((e) => {
          const prepared = runtime.prepare(e.row as unknown as Record<string, unknown>, e.seq);
          if (!prepared.ok) throw new Error(prepared.reason);
          return { ...prepared };
        });
      const [batch] = pointInTime(runtime, events, [now]);
      view.features.forEach((f, i) => {
        const a = online[f.name];
        if (typeof a === "number") expect(a, `${entity} ${f.name}`).toBeCloseTo(batch![i] as number, 6);
        else expect(a, `${entity} ${f.name}`).toEqual(batch![i]);
      });
      total += online["n_1d"] as number;
    }
    expect(total).toBe(before.length);
  });
});
