/**
 * Exactly-once in effect with several replicas in one consumer group, enforced by the store's fence:
 * while 200,000 events stream into a 6-partition topic, the group scales 1 → 3 → 2; three times a
 * replica that owns partitions is frozen (SIGSTOP) past its session timeout, so the others take its
 * partitions over, then thawed (SIGCONT) — it still believes it owns them and flushes what it applied
 * meanwhile, as a GC pause, a VM stall or a network partition would make it; one replica is SIGKILLed.
 * Afterwards every entity's online values equal the batch evaluator over the log, on Redis, on
 * Cassandra and on Redis Cluster. A small memory bound makes replicas evict and reload entities throughout.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKafka, ensureTopics, SchemaRegistry } from "@tessera/kafka";
import { createOnlineStore, type OnlineStoreConfig } from "@tessera/stores";
import { afterAll, describe, expect, it } from "vitest";
import { clusters } from "../../../test/support/clusters.js";
import { cassandraContactPoint, kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import { exited, paced, sleep, spawnProcessor, writeConfig } from "./child.js";
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

const EVENTS = 200_000;
const PARTITIONS = 6;
const SESSION_MS = 6000;

interface Replica {
  name: string;
  child: ChildProcess;
  ops: number;
}

type Backend = "redis" | "redis-cluster" | "cassandra";

describe("stream processor replicas: scale out and in, stalls and a kill, fenced by the store", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  const scenario = (backend: Backend) => async () => {
    const env = services();
    const topic = uniqueName(`proc-replicas-${backend}`);
    const kafka = createKafka({ brokers: kafkaBrokers() });
    await ensureTopics(kafka, [
      { topic, partitions: PARTITIONS },
      { topic: `${topic}.dead-letter`, partitions: 1 },
    ]);
    const registry = new SchemaRegistry(env.SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());
    const { encode, decode } = await paymentCodec(registry, topic);

    const dir = mkdtempSync(join(tmpdir(), "proc-replicas-"));
    const yaml = definitionsYaml(topic, "cards");
    writeFileSync(join(dir, "features.yaml"), yaml);
    const keyPrefix = `${uniqueName("proc")}:`;
    const keyspace = `replicas_${uniqueName("ks").replace(/-/g, "_")}`;
    const clusterNodes =
      backend === "redis-cluster" ? (await clusters("redis-cluster")).REDIS_CLUSTER_NODES.split(",") : [];
    const storeSettings =
      backend === "redis"
        ? { kind: "redis", redisUrl: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 }
        : backend === "redis-cluster"
          ? { kind: "redis", redisCluster: clusterNodes, redisReplicaAcks: 1, keyPrefix, timeoutMs: 10_000 }
          : {
              kind: "cassandra",
              cassandraContactPoints: cassandraContactPoint().contactPoints,
              cassandraLocalDc: cassandraContactPoint().localDataCenter,
              keyspace,
              timeoutMs: 10_000,
            };
    const name = uniqueName("replicas");
    const groupId = `tessera-processor-${name}`;
    const log = join(dir, "processors.log");
    const configFor = async (replica: string) => {
      const ops = await freePort();
      const file = writeConfig(join(dir), {
        name,
        definitions: join(dir, "features.yaml"),
        kafka: {
          brokers: kafkaBrokers(),
          schemaRegistryUrl: env.SCHEMA_REGISTRY_URL,
          clientId: replica,
          // A stalled member loses its partitions after this long (the broker's minimum).
          sessionTimeoutMs: SESSION_MS,
          heartbeatIntervalMs: 1000,
          // A member frozen during a rebalance holds the group up this long (kafkajs default 60 s).
          rebalanceTimeoutMs: 15_000,
        },
        store: storeSettings,
        topics: { deadLetter: `${topic}.dead-letter` },
        publishFeatures: false,
        flush: { maxEvents: 4000, maxDelayMs: 300 },
        // Well below the 3,000 cards: flushed entities are evicted and reloaded from the store.
        memory: { maxEntities: 800 },
        ops: { port: ops },
      });
      const own = join(dir, `${replica}.yaml`);
      writeFileSync(own, readFileSync(file));
      return { file: own, ops };
    };
    const replicas: Replica[] = [];
    const startReplica = async (replica: string) => {
      const { file, ops } = await configFor(replica);
      const child = spawnProcessor(file, log);
      cleanup.push(async () => {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
      });
      replicas.push({ name: replica, child, ops });
    };
    const readStore: OnlineStoreConfig =
      backend === "redis"
        ? { kind: "redis", url: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 }
        : backend === "redis-cluster"
          ? { kind: "redis", cluster: clusterNodes, keyPrefix, timeoutMs: 10_000 }
          : { kind: "cassandra", ...cassandraContactPoint(), keyspace, timeoutMs: 10_000 };
    const store = createOnlineStore(readStore);
    cleanup.push(() => store.close());
    const progress = async () =>
      [...(await store.readOffsets(groupId, topic)).values()].reduce((n, offset) => n + offset + 1, 0);
    let produced = 0;
    const advancing = async (what: string) => {
      const before = await progress();
      let now = before;
      // Progress, or nothing left to progress on: every event produced so far is stored (a fast run
      // can consume the whole topic before its last fault step).
      const advanced = async () => {
        now = await progress();
        return now > before || (produced > 0 && now >= produced) ? true : undefined;
      };
      await waitFor(what, advanced, 90_000).catch((error: Error) => {
        throw new Error(`${error.message} (produced ${produced}, stored progress ${now})`);
      });
    };
    /** Partitions a replica holds, from its readiness detail (0 when it has none or does not answer). */
    const held = async (r: Replica) => {
      try {
        const body = (await (await fetch(`http://127.0.0.1:${r.ops}/readyz`)).json()) as {
          detail?: { partitions?: number };
        };
        return body.detail?.partitions ?? 0;
      } catch {
        return 0;
      }
    };

    const started = Date.now();
    const events = payments(EVENTS, { entities: 3000, seed: 11, endMs: started - 1000, spanMs: 40 * 60_000 });
    // Produced over ≥ 70 s and never more than 12,000 events ahead of the store, so every step below
    // happens while a backlog flows, however slow the store.
    const producing = paced(kafkaBrokers(), topic, encode, events, 3000, {
      limit: 12_000,
      consumed: progress,
      sent: (n) => {
        produced = n;
      },
    });
    producing.catch(() => {});
    const steps: string[] = [];
    // Printed as they happen too: a run that times out still shows how far it got.
    const step = (what: string) => {
      steps.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
      console.log(`replicas on ${backend}: ${steps.at(-1)}`);
    };

    await startReplica("r1");
    await advancing("the first replica to flush");
    step("1 replica");
    await startReplica("r2");
    await startReplica("r3");
    await waitFor(
      "all three replicas to hold partitions",
      async () => ((await Promise.all(replicas.map(held))).every((n) => n > 0) ? true : undefined),
      90_000,
    );
    await advancing("progress with three replicas");
    step("3 replicas");

    for (let freeze = 0; freeze < 3; freeze++) {
      // A replica that owns partitions and is applying events, stopped at a random moment of its work.
      const candidates = [];
      for (const r of replicas) if ((await held(r)) > 0) candidates.push(r);
      const victim = candidates[freeze % candidates.length]!;
      await sleep(Math.random() * 1500);
      victim.child.kill("SIGSTOP");
      step(`froze ${victim.name}`);
      await sleep(SESSION_MS + 3000);
      await advancing(`the others to take ${victim.name}'s partitions over`);
      victim.child.kill("SIGCONT");
      step(`thawed ${victim.name}`);
      await sleep(3000);
      await advancing(`progress after ${victim.name} thawed`);
    }

    const killed = replicas.pop()!;
    killed.child.kill("SIGKILL");
    expect((await exited(killed.child)).signal).toBe("SIGKILL");
    step(`killed ${killed.name}: 2 replicas`);

    await producing;
    step("all produced");
    await waitFor(
      "the replicas to catch up",
      async () => ((await progress()) === EVENTS ? true : undefined),
      180_000,
    );
    for (const r of replicas) r.child.kill("SIGTERM");
    for (const r of replicas) {
      const { code } = await exited(r.child);
      expect(code, readFileSync(log, "utf8").slice(-3000)).toBe(0);
    }

    const logged = await readLog(kafkaBrokers(), topic, decode);
    expect(logged.length).toBe(EVENTS);
    const view = viewOf(yaml);
    const t = Date.now();
    const batch = batchValues(view, logged, t);
    const online = await onlineValues(store, view, [...batch.keys()], t);
    const diffs = differences(online, batch);
    const counted = [...online.values()].reduce((n, v) => n + (v["n_1h"] as number), 0);
    const fencedLines = readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => l.includes("another replica owns")).length;
    console.log(
      `replicas on ${backend}: ${steps.join("; ")}; total ${((Date.now() - started) / 1000).toFixed(1)}s; ` +
        `counted ${counted} of ${EVENTS}; entities differing ${diffs.length}; fenced flushes logged ${fencedLines}`,
    );
    expect(counted).toBe(EVENTS);
    expect(diffs.slice(0, 3)).toEqual([]);
  };

  it("Redis: every entity equals the batch evaluator", scenario("redis"), 360_000);
  it("Cassandra: every entity equals the batch evaluator", scenario("cassandra"), 360_000);
  it("Redis Cluster: every entity equals the batch evaluator", scenario("redis-cluster"), 360_000);
});
