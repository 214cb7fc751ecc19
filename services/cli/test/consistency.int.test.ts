/**
 * Consistency on the real stack: payments are archived by the archiver; a test driver plays the
 * feature server, logging served vectors (ServedFeatures Avro) computed by the incremental path.
 * Clean: 0 mismatches. Skewed: one feature served from another definition version (a 3h window
 * instead of 6h, under the current version label) is reported for that feature only.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureTopics, valueSubject } from "@tessera/kafka";
import { createOnlineStore } from "@tessera/stores";
import { parseDefinitionsYaml, type View, ViewState } from "@tessera/transforms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import { startArchiver } from "../../archiver/src/index.js";
import {
  archiveAll,
  type Payment,
  paymentSource,
  payments,
  repoRoot,
  type Source,
} from "../../archiver/test/fixtures.js";
import { featureServerConfig, startFeatureServer } from "../../feature-server/src/index.js";
import { loadProcessorConfig, startProcessor } from "../../stream-processor/src/index.js";
import { readServed, runConsistency, type ServedVector } from "../src/commands/consistency.js";

const servedSchema = JSON.parse(readFileSync(join(repoRoot, "schemas/avro/served_features.avsc"), "utf8"));
const T0 = Date.UTC(2026, 10, 1, 8);

const yaml = (topic: string, sumWindow = "6h") => `
sources:
  - { name: payments, topic: ${topic}, entity: card_id, timestamp: event_time }
views:
  - name: cards
    source: payments
    features:
      - { name: n_1h, op: count, window: 1h }
      - { name: amount_sum_6h, op: sum, column: amount, window: ${sumWindow}, hop: 5m }
      - { name: amount_mean_1d, op: mean, column: amount, window: 1d }
      - { name: amount_max_1h, op: max, column: amount, window: 1h }
      - { name: last_merchants, op: last_k, column: merchant_id, k: 3, window: 1d }
`;

let source: Source;
let root: string;
let served: string;
let events: Payment[];
const cleanup: (() => Promise<unknown>)[] = [];

/** The feature server's path: tiles built incrementally, finalised at request time. */
function serve(
  view: View,
  requests: { entity: string; asOf: number }[],
  label = view.version,
): ServedVector[] {
  const state = new ViewState(view);
  events.forEach((row, i) => {
    state.apply(row as unknown as Record<string, unknown>, { offset: i, now: row.event_time + 1 });
  });
  return requests.map((r, i) => ({
    request_id: `r${i}`,
    view: view.name,
    version: label,
    entity: r.entity,
    as_of: r.asOf,
    values: state.valueAt(r.entity, r.asOf),
    served_at: r.asOf,
  }));
}

async function publishServed(vectors: ServedVector[]): Promise<void> {
  const id = await source.registry.register(valueSubject(served), servedSchema);
  const serializer = source.registry.serializer({ id, schema: JSON.stringify(servedSchema), type: "AVRO" });
  const producer = source.kafka.producer();
  await producer.connect();
  const messages = await Promise.all(
    vectors.map(async (v) => ({ value: await serializer.serialize(served, v) })),
  );
  await producer.send({ topic: served, acks: -1, messages });
  await producer.disconnect();
}

beforeAll(async () => {
  source = await paymentSource(kafkaBrokers(), services().SCHEMA_REGISTRY_URL, uniqueName("consistency"));
  served = uniqueName("served");
  await ensureTopics(source.kafka, [{ topic: served, partitions: 2 }]);
  root = await mkdtemp(join(tmpdir(), "tessera-consistency-"));
  events = payments(5000, T0, { hours: 8, cards: 30, seed: 9 });
  await source.publish(events);
  await archiveAll(source, root, events.length, startArchiver, { groupId: uniqueName("archiver") });
});

afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
  await source?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("tessera consistency", () => {
  const end = T0 + 8 * 3_600_000;
  const requests = Array.from({ length: 300 }, (_, i) => ({
    entity: `card-${i % 30}`,
    asOf: end + 60_000 + ((i * 7919) % 7_200_000),
  }));

  it("reports 0 mismatches on a clean pipeline", { timeout: 60_000 }, async () => {
    const definitions = parseDefinitionsYaml(yaml(source.topic));
    const vectors = serve(definitions.views[0]!, requests);
    const report = await runConsistency({ definitions, archive: root, served: vectors });
    expect(report.features).toHaveLength(5);
    for (const f of report.features) {
      expect(f.compared, f.feature).toBe(300);
      expect({ feature: f.feature, mismatches: f.mismatches, missing: f.missing, extra: f.extra }).toEqual({
        feature: f.feature,
        mismatches: 0,
        missing: 0,
        extra: 0,
      });
    }
    // Not vacuous: the served vectors hold real values.
    expect(vectors.filter((v) => (v.values["amount_sum_6h"] as number) > 0).length).toBeGreaterThan(100);
  });

  it("reports a feature served from another definition version, and only that feature", {
    timeout: 90_000,
  }, async () => {
    const current = parseDefinitionsYaml(yaml(source.topic)).views[0]!;
    const other = parseDefinitionsYaml(yaml(source.topic, "3h")).views[0]!;
    expect(other.version).not.toBe(current.version);
    // The skew: amount_sum_6h comes from the other version's tiles, labelled with the current version.
    const good = serve(current, requests);
    const skewed = serve(other, requests);
    const vectors = good.map((v, i) => ({
      ...v,
      values: { ...v.values, amount_sum_6h: skewed[i]!.values["amount_sum_6h"] ?? null },
    }));
    // Plus a few vectors of a version the definitions do not have: counted, not compared.
    await publishServed([
      ...vectors,
      ...good.slice(0, 5).map((v) => ({ ...v, version: "0000000000000000" })),
    ]);
    expect(
      (
        await readServed({
          topic: served,
          brokers: kafkaBrokers(),
          registryUrl: services().SCHEMA_REGISTRY_URL,
        })
      ).length,
    ).toBe(305);

    const dir = await mkdtemp(join(tmpdir(), "tessera-consistency-cli-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "features.yaml"), yaml(source.topic));
    const cli = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "services/cli/src/main.ts",
        "consistency",
        "--definitions",
        join(dir, "features.yaml"),
        "--archive",
        root,
        "--topic",
        served,
        "--json",
        "--metrics-file",
        join(dir, "consistency.prom"),
        "--fail-on-mismatch",
      ],
      { cwd: repoRoot, encoding: "utf8", env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: "1" } },
    );
    expect(cli.status, cli.stderr).toBe(1);
    const report = JSON.parse(cli.stdout);
    expect(report.views).toEqual([
      { view: "cards", version: current.version, compared: 300, otherVersion: 5 },
    ]);
    const byFeature = Object.fromEntries(report.features.map((f: { feature: string }) => [f.feature, f]));
    expect(byFeature["amount_sum_6h"].mismatchShare).toBeGreaterThan(0.5);
    expect(byFeature["amount_sum_6h"].meanAbsDiff).toBeGreaterThan(1);
    for (const name of ["n_1h", "amount_mean_1d", "amount_max_1h", "last_merchants"]) {
      expect([name, byFeature[name].mismatches, byFeature[name].missing, byFeature[name].extra]).toEqual([
        name,
        0,
        0,
        0,
      ]);
    }
    const metrics = readFileSync(join(dir, "consistency.prom"), "utf8");
    expect(metrics).toMatch(
      /tessera_consistency_mismatch_ratio\{view="cards",feature="amount_sum_6h"\} (1|0\.\d*[1-9])/,
    );
    expect(metrics).toMatch(/tessera_consistency_mismatch_ratio\{view="cards",feature="n_1h"\} 0\n/);
  });

  it("reports 0 mismatches on the real pipeline: processor → Redis → feature server → served topic", {
    timeout: 110_000,
  }, async () => {
    // Fresh events (the processor judges lateness against its clock), archived and processed.
    const live = await paymentSource(kafkaBrokers(), services().SCHEMA_REGISTRY_URL, uniqueName("pipeline"));
    cleanup.push(() => live.close());
    const liveServed = uniqueName("served-live");
    await ensureTopics(live.kafka, [
      { topic: liveServed, partitions: 1 },
      { topic: `${live.topic}.dlt`, partitions: 1 },
      { topic: `${live.topic}.features`, partitions: 1 },
    ]);
    const liveRoot = await mkdtemp(join(tmpdir(), "tessera-pipeline-"));
    cleanup.push(() => rm(liveRoot, { recursive: true, force: true }));
    const now = Date.now();
    const liveEvents = payments(4000, now - 3 * 3_600_000, { hours: 3, cards: 25, seed: 21 }).map((e) => ({
      ...e,
      event_time: Math.min(e.event_time, now - 5000),
    }));
    await live.publish(liveEvents);
    await archiveAll(live, liveRoot, liveEvents.length, startArchiver, { groupId: uniqueName("archiver") });

    const definitions = parseDefinitionsYaml(yaml(live.topic));
    const keyPrefix = `${uniqueName("pipeline")}:`;
    const processor = await startProcessor(
      loadProcessorConfig({
        env: {},
        overrides: {
          name: uniqueName("pipeline"),
          definitions: "unused.yaml",
          kafka: { brokers: kafkaBrokers(), schemaRegistryUrl: services().SCHEMA_REGISTRY_URL },
          store: { kind: "redis", redisUrl: services().REDIS_URL, keyPrefix },
          topics: { deadLetter: `${live.topic}.dlt`, features: `${live.topic}.features` },
          publishFeatures: false,
          flush: { maxEvents: 2000, maxDelayMs: 100 },
          ops: { port: 0 },
        },
      }),
      { definitions },
    );
    cleanup.push(() => processor.stop());
    const store = createOnlineStore({ kind: "redis", url: services().REDIS_URL, keyPrefix });
    cleanup.push(() => store.close());
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stored = await store.readOffsets(processor.groupId, live.topic);
      if ([...stored.values()].reduce((n, o) => n + o + 1, 0) >= liveEvents.length) break;
      if (Date.now() > deadline) throw new Error("the processor did not catch up in 60 s");
      await new Promise((r) => setTimeout(r, 300));
    }

    const server = await startFeatureServer(
      featureServerConfig({
        http: { port: 0 },
        grpc: { enabled: false },
        store: { kind: "redis", keyPrefix },
        auth: { allowAnonymous: true },
        reliability: { maxEventLoopDelayMs: 0 },
        featureLog: { sampleRate: 1, topic: liveServed, flushIntervalMs: 50 },
      }),
      { definitions, env: { ...process.env, ...services() } },
    );
    const cards = [...new Set(liveEvents.map((e) => e.card_id))];
    for (let round = 0; round < 3; round++) {
      const res = await fetch(`${server.url}/v1/features`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ features: ["cards:*"], entities: { card_id: cards } }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    await server.stop(); // flushes the served-vector queue

    const served = await readServed({
      topic: liveServed,
      brokers: kafkaBrokers(),
      registryUrl: services().SCHEMA_REGISTRY_URL,
    });
    expect(served).toHaveLength(3 * cards.length);
    const report = await runConsistency({ definitions, archive: liveRoot, served });
    for (const f of report.features) {
      expect([f.feature, f.compared, f.mismatches, f.missing, f.extra]).toEqual([
        f.feature,
        3 * cards.length,
        0,
        0,
        0,
      ]);
    }
    expect(served.some((v) => (v.values["n_1h"] as number) > 0)).toBe(true);
  });
});
