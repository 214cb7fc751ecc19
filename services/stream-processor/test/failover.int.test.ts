/**
 * What a store that loses writes does to exactly-once, and how the processor copes.
 *
 * 1. Redis Cluster, a primary SIGKILLed mid-stream: its replica is promoted. Redis replicates
 *    asynchronously, so a flush the old primary acknowledged may never have reached the replica; with
 *    `redisReplicaAcks: 1` a flush only counts once its primaries' replicas acknowledged it (WAIT),
 *    so the promoted replica holds every counted flush: nothing lost, nothing doubled.
 * 2. The repair when writes are lost anyway (acks 0, or a primary and its replica both lost): the
 *    store's offset goes back behind what the owner wrote. The next flush's compare-and-set sees it,
 *    the owner drops its state, claims again, reloads and replays from the stored offset; states
 *    carry the offset they include, so nothing is counted twice. Simulated on one Redis by putting an
 *    earlier snapshot of the partition's keys back while the processor runs.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKafka, ensureTopics, SchemaRegistry } from "@tessera/kafka";
import { createOnlineStore, type OnlineStore } from "@tessera/stores";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { clusterMembers, clusters } from "../../../test/support/clusters.js";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
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
import { freePort } from "./private.js";

const EVENTS = 100_000;

describe("stream processor when the store loses writes", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  /** A topic with its schema, events produced over ~`seconds`, and the processor config's common part. */
  async function stream(name: string, seconds: number) {
    const env = services();
    const topic = uniqueName(name);
    const kafka = createKafka({ brokers: kafkaBrokers() });
    await ensureTopics(kafka, [
      { topic, partitions: 2 },
      { topic: `${topic}.dead-letter`, partitions: 1 },
    ]);
    const registry = new SchemaRegistry(env.SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());
    const { encode, decode } = await paymentCodec(registry, topic);
    const dir = mkdtempSync(join(tmpdir(), "proc-failover-"));
    const yaml = definitionsYaml(topic, "cards");
    writeFileSync(join(dir, "features.yaml"), yaml);
    const events = payments(EVENTS, {
      entities: 2000,
      seed: 5,
      endMs: Date.now() - 1000,
      spanMs: 30 * 60_000,
    });
    const producing = paced(kafkaBrokers(), topic, encode, events, EVENTS / seconds);
    producing.catch(() => {});
    const base = {
      name: uniqueName("failover"),
      definitions: join(dir, "features.yaml"),
      kafka: {
        brokers: kafkaBrokers(),
        schemaRegistryUrl: env.SCHEMA_REGISTRY_URL,
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 1000,
      },
      topics: { deadLetter: `${topic}.dead-letter` },
      publishFeatures: false,
      flush: { maxEvents: 2000, maxDelayMs: 200 },
      memory: { maxEntities: 500 },
      ops: { port: await freePort() },
    };
    const check = async (store: OnlineStore, child: ChildProcess, log: string) => {
      const groupId = `tessera-processor-${base.name}`;
      await producing;
      await waitFor(
        "the processor to catch up",
        async () =>
          [...(await store.readOffsets(groupId, topic)).values()].reduce((n, o) => n + o + 1, 0) === EVENTS
            ? true
            : undefined,
        180_000,
      );
      child.kill("SIGTERM");
      expect((await exited(child)).code, readFileSync(log, "utf8").slice(-3000)).toBe(0);
      const logged = await readLog(kafkaBrokers(), topic, decode);
      const view = viewOf(yaml);
      const t = Date.now();
      const batch = batchValues(view, logged, t);
      const online = await onlineValues(store, view, [...batch.keys()], t);
      const counted = [...online.values()].reduce((n, v) => n + (v["n_1h"] as number), 0);
      return { counted, diffs: differences(online, batch), log: readFileSync(log, "utf8") };
    };
    return { topic, dir, base, check, groupId: `tessera-processor-${base.name}` };
  }

  it("Redis Cluster: a primary killed mid-stream loses and doubles nothing (flushes acknowledged by replicas)", async () => {
    const nodes = (await clusters("redis-cluster")).REDIS_CLUSTER_NODES.split(",");
    const keyPrefix = `${uniqueName("failover")}:`;
    const { dir, base, check, groupId, topic } = await stream("proc-failover-cluster", 40);
    const config = writeConfig(dir, {
      ...base,
      store: { kind: "redis", redisCluster: nodes, redisReplicaAcks: 1, keyPrefix, timeoutMs: 5000 },
    });
    const log = join(dir, "processor.log");
    const child = spawnProcessor(config, log);
    cleanup.push(async () => child.kill("SIGKILL"));
    const store = createOnlineStore({ kind: "redis", cluster: nodes, keyPrefix, timeoutMs: 10_000 });
    cleanup.push(() => store.close());
    const progress = async () =>
      [...(await store.readOffsets(groupId, topic)).values()].reduce((n, o) => n + o + 1, 0);
    await waitFor(
      "the processor to flush",
      async () => ((await progress()) > 10_000 ? true : undefined),
      90_000,
    );

    // The primary that holds the partitions' offsets (the slot most flushes end on), killed outright.
    const slotOwner = new Redis(Number(nodes[0]!.split(":")[1]), "127.0.0.1");
    const primaries = ((await slotOwner.call("CLUSTER", "NODES")) as string)
      .split("\n")
      .filter((line) => line.includes("master") && !line.includes("fail"))
      .map((line) => Number(line.split(" ")[1]!.split(":")[1]!.split("@")[0]));
    slotOwner.disconnect();
    const members = await clusterMembers("redis-cluster");
    const victim = primaries[1]!;
    const before = await progress();
    process.kill(members.get(`redis-cluster-${victim}`)!, "SIGKILL");
    // Its replica takes over after the node timeout. Flushes fail (unavailable) until the promoted
    // primary has a replica to acknowledge them: the killed node, replaced, rejoins as one.
    const survivor = new Redis(
      Number(nodes.find((n) => !n.endsWith(`:${victim}`))!.split(":")[1]),
      "127.0.0.1",
    );
    await waitFor(
      "the replica's promotion",
      async () => {
        const table = ((await survivor.call("CLUSTER", "NODES")) as string).split("\n");
        const failed = table.find((line) => line.includes(`:${victim}@`));
        const masters = table.filter((l) => l.includes("master") && !l.includes("fail")).length;
        return failed?.includes("fail") && masters === 3 ? true : undefined;
      },
      60_000,
    );
    survivor.disconnect();
    await clusters("redis-cluster");
    await waitFor(
      "progress after the failover",
      async () => ((await progress()) > before + 5000 ? true : undefined),
      120_000,
    );
    const { counted, diffs } = await check(store, child, log);
    console.log(
      `failover: killed primary ${victim} at ${before} events; counted ${counted} of ${EVENTS}; differing ${diffs.length}`,
    );
    expect(counted).toBe(EVENTS);
    expect(diffs.slice(0, 3)).toEqual([]);
  }, 360_000);

  it("repairs a store that went back in time: the offset check fences, the owner reloads and replays", async () => {
    const env = services();
    const keyPrefix = `${uniqueName("rewind")}:`;
    const { dir, base, check, groupId, topic } = await stream("proc-rewind", 30);
    const config = writeConfig(dir, {
      ...base,
      store: { kind: "redis", redisUrl: env.REDIS_URL, keyPrefix, timeoutMs: 5000 },
    });
    const log = join(dir, "processor.log");
    const child = spawnProcessor(config, log);
    cleanup.push(async () => child.kill("SIGKILL"));
    const store = createOnlineStore({ kind: "redis", url: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 });
    cleanup.push(() => store.close());
    const redis = new Redis(env.REDIS_URL);
    cleanup.push(async () => redis.quit());
    const progress = async () =>
      [...(await store.readOffsets(groupId, topic)).values()].reduce((n, o) => n + o + 1, 0);
    await waitFor(
      "the processor to flush",
      async () => ((await progress()) > 10_000 ? true : undefined),
      90_000,
    );

    // A snapshot of every key, as a replica lagging behind would hold it: one consistent cut of the
    // write stream (a transaction, so no flush lands between the dumps — a replica never holds a
    // partition's offset newer than the states it was written with)…
    const snapshot = async () => {
      const keys = await redis.keys(`${keyPrefix}*`);
      const transaction = redis.multi();
      for (const key of keys) transaction.dumpBuffer(key);
      const dumps = (await transaction.exec())!;
      return keys.map((key, i) => ({ key, dump: dumps[i]![1] as Buffer }));
    };
    const earlier = await snapshot();
    const at = await progress();
    await waitFor("more flushes", async () => ((await progress()) > at + 10_000 ? true : undefined), 90_000);
    // …put back while the processor runs: the writes since are lost, as in a failover without WAIT.
    const restore = redis.multi();
    for (const { key, dump } of earlier) restore.restore(key, 0, dump, "REPLACE");
    await restore.exec();
    const rewound = await progress();
    expect(rewound).toBeLessThan(at + 10_000);

    const { counted, diffs, log: text } = await check(store, child, log);
    const repairs = text
      .split("\n")
      .filter((l) => l.includes("the store lost writes of this partition")).length;
    console.log(
      `rewind: store put back from ${at + 10_000}+ to ${rewound} events; repairs logged ${repairs}; counted ${counted} of ${EVENTS}; differing ${diffs.length}`,
    );
    expect(repairs).toBeGreaterThan(0);
    expect(counted).toBe(EVENTS);
    expect(diffs.slice(0, 3)).toEqual([]);
    // Restored keys carry no TTL: remove them, so they do not outlive the test.
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }, 360_000);
});
