/**
 * Exactly-once in effect under SIGKILL: the processor runs as a child process over 200,000 events
 * published while it runs, and is killed at random moments (startup, group join, mid-batch,
 * mid-flush), restarted each time. Afterwards the online state equals the batch evaluator over the
 * log: nothing lost, nothing counted twice.
 */

import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKafka, ensureTopics, SchemaRegistry } from "@tessera/kafka";
import { createOnlineStore } from "@tessera/stores";
import { afterAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
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
const KILLS = 6;

describe("stream processor under SIGKILL", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  it(`ends equal to the batch computation after ${KILLS} kills over ${EVENTS} events`, async () => {
    const env = services();
    const topic = uniqueName("proc-kill");
    const kafka = createKafka({ brokers: kafkaBrokers() });
    await ensureTopics(kafka, [
      { topic, partitions: 4 },
      { topic: `${topic}.dead-letter`, partitions: 1 },
    ]);
    const registry = new SchemaRegistry(env.SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());
    const { encode, decode } = await paymentCodec(registry, topic);

    const dir = mkdtempSync(join(tmpdir(), "proc-kill-"));
    const yaml = definitionsYaml(topic, "cards");
    writeFileSync(join(dir, "features.yaml"), yaml);
    const keyPrefix = `${uniqueName("proc")}:`;
    const name = uniqueName("kill");
    const opsPort = await freePort();
    const configFile = writeConfig(dir, {
      name,
      definitions: join(dir, "features.yaml"),
      kafka: {
        brokers: kafkaBrokers(),
        schemaRegistryUrl: env.SCHEMA_REGISTRY_URL,
        // A killed member holds its partitions until its session expires: the broker's minimum.
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 1000,
      },
      // Generous: the machine running the test suite is shared and often saturated.
      store: { kind: "redis", redisUrl: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 },
      topics: { deadLetter: `${topic}.dead-letter` },
      publishFeatures: false,
      // Behind by more than 500 records (after each restart) a partition flushes as it catches up:
      // kills then also land while partitions hold applied batches they did not flush yet.
      flush: { maxEvents: 5000, maxDelayMs: 500, catchUpLag: 500, catchUpMaxDelayMs: 2000 },
      ops: { port: opsPort },
    });
    const log = join(dir, "processor.log");
    const store = createOnlineStore({ kind: "redis", url: env.REDIS_URL, keyPrefix, timeoutMs: 10_000 });
    cleanup.push(() => store.close());
    const groupId = `tessera-processor-${name}`;
    const progress = async () =>
      [...(await store.readOffsets(groupId, topic)).values()].reduce((n, offset) => n + offset + 1, 0);

    const started = Date.now();
    const events = payments(EVENTS, { entities: 500, seed: 42, endMs: started - 1000, spanMs: 10 * 60_000 });
    // Produced over ~50 s: the six kill cycles (restart + progress + random wait, ~7 s each) all land
    // while events are still arriving, even when a quiet machine lets the processor keep up.
    const producing = paced(kafkaBrokers(), topic, encode, events, 4000);
    producing.catch(() => {});

    let child: ChildProcess = spawnProcessor(configFile, log);
    cleanup.push(async () => child.kill("SIGKILL"));
    const kills: { atMs: number; stored: number; progressed: boolean }[] = [];
    for (let k = 0; k < KILLS; k++) {
      const before = await progress();
      if (k === 0) {
        // Once during startup or group join, before anything is stored.
        await sleep(1000 + Math.random() * 2000);
      } else {
        // Otherwise at a random moment once this process is applying and flushing events.
        await waitFor(
          "the restarted processor to make progress",
          async () => ((await progress()) > before ? true : undefined),
          60_000,
        );
        await sleep(Math.random() * 2000);
      }
      const stored = await progress();
      child.kill("SIGKILL");
      const { signal } = await exited(child);
      expect(signal).toBe("SIGKILL");
      kills.push({ atMs: Date.now() - started, stored, progressed: stored > before });
      child = spawnProcessor(configFile, log);
    }
    await producing;
    await waitFor(
      "the processor to catch up",
      async () => ((await progress()) === EVENTS ? true : undefined),
      120_000,
    );
    // The last process must be up (not still loading) for the SIGTERM to test a graceful stop.
    await waitFor(
      "the last processor's /healthz",
      async () => ((await fetch(`http://127.0.0.1:${opsPort}/healthz`)).ok ? true : undefined),
      60_000,
    );
    child.kill("SIGTERM");
    const { code } = await exited(child);
    expect(code, readFileSync(log, "utf8").slice(-3000)).toBe(0);

    const logged = await readLog(kafkaBrokers(), topic, decode);
    expect(logged.length).toBe(EVENTS);
    const view = viewOf(yaml);
    const t = Date.now();
    const batch = batchValues(view, logged, t);
    const online = await onlineValues(store, view, [...batch.keys()], t);
    const diffs = differences(online, batch);
    const counted = [...online.values()].reduce((n, v) => n + (v["n_1h"] as number), 0);
    console.log(
      `kill test: ${EVENTS} events, ${kills.length} SIGKILLs at ${kills
        .map((k) => `${(k.atMs / 1000).toFixed(1)}s (stored ${k.stored})`)
        .join(
          ", ",
        )}; total ${((Date.now() - started) / 1000).toFixed(1)}s; counted ${counted}; entities differing ${diffs.length}`,
    );
    // At least five kills landed while the process was applying and flushing events.
    expect(kills.filter((k) => k.progressed && k.stored < EVENTS).length).toBeGreaterThanOrEqual(5);
    expect(counted).toBe(EVENTS);
    expect(diffs.slice(0, 3)).toEqual([]);
  }, 240_000);
});
