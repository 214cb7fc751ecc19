/**
 * The processor (a child process) keeps running through a Redis restart and a Kafka broker restart
 * in the middle of a stream, retries, and ends equal to the batch evaluator over the log. Both
 * servers are private to this test (see private.ts), so the shared stack is never disturbed.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKafka, ensureTopics, SchemaRegistry } from "@tessera/kafka";
import { createOnlineStore } from "@tessera/stores";
import { afterAll, describe, expect, it } from "vitest";
import { services, uniqueName } from "../../../test/support/index.js";
import { exited, paced, spawnProcessor, writeConfig } from "./child.js";
import {
  batchValues,
  definitionsYaml,
  differences,
  onlineValues,
  paymentCodec,
  payments,
  viewOf,
  waitFor,
} from "./fixtures.js";
import { readLog } from "./log.js";
import { privateKafka, privateRedis } from "./private.js";

const EVENTS = 40_000;

describe("stream processor through server restarts", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  it("retries through a Redis restart and a Kafka broker restart and ends equal to the batch computation", async () => {
    const env = services();
    const dir = mkdtempSync(join(tmpdir(), "proc-restarts-"));
    const [redis, kafkaServer] = await Promise.all([privateRedis(dir), privateKafka(dir)]);
    cleanup.push(
      () => kafkaServer.stop(),
      () => redis.stop(),
    );
    const brokers = [kafkaServer.broker];

    const topic = uniqueName("proc-restarts");
    await ensureTopics(createKafka({ brokers }), [
      { topic, partitions: 2 },
      { topic: `${topic}.dead-letter`, partitions: 1 },
      { topic: `${topic}.features`, partitions: 1 },
    ]);
    const registry = new SchemaRegistry(env.SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());
    const { encode, decode } = await paymentCodec(registry, topic);

    const yaml = definitionsYaml(topic, "cards");
    writeFileSync(join(dir, "features.yaml"), yaml);
    const name = uniqueName("restarts");
    const configFile = writeConfig(dir, {
      name,
      definitions: join(dir, "features.yaml"),
      kafka: {
        brokers,
        schemaRegistryUrl: env.SCHEMA_REGISTRY_URL,
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 1000,
      },
      store: { kind: "redis", redisUrl: redis.url, timeoutMs: 5000 },
      // FeatureUpdates on: a flush then needs the broker as well as Redis.
      topics: { deadLetter: `${topic}.dead-letter`, features: `${topic}.features` },
      flush: { maxEvents: 20_000, maxDelayMs: 300 },
      ops: { port: 0 },
    });
    const log = join(dir, "processor.log");
    const store = createOnlineStore({ kind: "redis", url: redis.url, timeoutMs: 10_000 });
    cleanup.push(() => store.close());
    const groupId = `tessera-processor-${name}`;
    const progress = async () =>
      [...(await store.readOffsets(groupId, topic)).values()].reduce((n, offset) => n + offset + 1, 0);

    const started = Date.now();
    const events = payments(EVENTS, { entities: 300, seed: 5, endMs: started - 1000, spanMs: 10 * 60_000 });
    const producing = paced(brokers, topic, encode, events, 1000);
    producing.catch(() => {});
    const child: ChildProcess = spawnProcessor(configFile, log);
    cleanup.push(async () => child.kill("SIGKILL"));

    const timeline: string[] = [];
    const at = (what: string) => timeline.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
    await waitFor(
      "progress before the Redis restart",
      async () => ((await progress()) > 5000 ? true : undefined),
      90_000,
    );
    at(`redis restart (stored ${await progress()})`);
    // Down longer than the store timeout (5 s), so flushes fail and are retried, not just delayed.
    await redis.restart(7000);
    const afterRedis = await progress();
    await waitFor(
      "progress after the Redis restart",
      async () => ((await progress()) > afterRedis + 3000 ? true : undefined),
      90_000,
    );
    const beforeKafka = await progress();
    at(`kafka restart (stored ${beforeKafka})`);
    expect(beforeKafka, "the broker restart must come mid-stream").toBeLessThan(EVENTS);
    await kafkaServer.restart(2000);
    at("kafka back");
    await producing;
    at("all produced");
    await waitFor(
      "the processor to catch up",
      async () => ((await progress()) >= EVENTS ? true : undefined),
      120_000,
    );
    at(`caught up (stored ${await progress()})`);
    expect(child.exitCode, "the processor must survive both restarts").toBeNull();
    child.kill("SIGTERM");
    const { code } = await exited(child);
    expect(code, readFileSync(log, "utf8").slice(-3000)).toBe(0);

    // The oracle reads the log itself: a produce retried across the broker restart may have landed twice.
    const logged = await readLog(brokers, topic, decode);
    expect(await progress()).toBe(logged.length);
    const view = viewOf(yaml);
    const t = Date.now();
    const batch = batchValues(view, logged, t);
    const online = await onlineValues(store, view, [...batch.keys()], t);
    const diffs = differences(online, batch);
    const retries = (readFileSync(log, "utf8").match(/batch failed/g) ?? []).length;
    console.log(
      `restart test: ${logged.length} events in the log; ${timeline.join("; ")}; failed batch attempts retried ${retries}; entities differing ${diffs.length}`,
    );
    expect(retries, "flushes failed during the outages and were retried").toBeGreaterThan(0);
    expect(diffs.slice(0, 3)).toEqual([]);
  }, 240_000);
});
