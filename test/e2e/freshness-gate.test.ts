/**
 * The freshness SLA end to end on the real stack (Kafka, schema registry, Redis): payments flow
 * through the stream processor; the processor stops while payments keep coming; the drift worker
 * sees the view's newest feature update pass its SLA, pages its owner (Alertmanager webhook, owner
 * labels) and trips the view's gate on the compacted gate topic; a feature server following that
 * topic serves the view `quarantined` over HTTP and gRPC. The processor restarts, catches up, and
 * the gate clears by itself: one FIRING and one RESOLVED, routed to the view's owner.
 */
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createClient } from "@tessera/client";
import { type Bus, createKafka, ensureTopics, SchemaRegistry, TesseraProducer } from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { RedisOnlineStore } from "@tessera/stores";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig, startDriftWorker } from "../../services/drift-worker/src/index.js";
import { referenceProfile } from "../../services/drift-worker/test/scenario.js";
import {
  type FeatureServerHandle,
  featureServerConfig,
  startFeatureServer,
} from "../../services/feature-server/src/index.js";
import {
  loadProcessorConfig,
  type Processor,
  startProcessor,
} from "../../services/stream-processor/src/index.js";
import { kafkaBrokers, services, uniqueName } from "../support/index.js";

const SLA_S = 5;
const schema = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../schemas/avro/${name}.avsc`, import.meta.url), "utf8"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An Alertmanager stand-in: keeps every alert posted to it. */
async function alertmanager() {
  const alerts: Array<{ labels: Record<string, string>; endsAt?: string }> = [];
  const server = (await import("node:http")).createServer((request, response) => {
    let text = "";
    request.on("data", (c) => {
      text += c;
    });
    request.on("end", () => {
      alerts.push(...JSON.parse(text));
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2/alerts`;
  return { url, alerts, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("freshness SLA → view gate → feature server, and back", () => {
  const source = uniqueName("freshness-gate.tx");
  const topics = {
    features: uniqueName("features"),
    predictions: uniqueName("predictions"),
    labels: uniqueName("labels"),
    alerts: uniqueName("alerts"),
    deadLetter: uniqueName("dead-letter"),
  };
  const gateTopic = uniqueName("tessera.gate");
  const keyPrefix = `${uniqueName("freshness-gate")}:`;
  const defs = parseDefinitionsYaml(`
sources:
  - { name: tx, topic: ${source}, entity: card_id, timestamp: event_time, owner: payments-platform }
views:
  - name: cards
    source: tx
    owner: risk-features
    onCall: { receiver: risk-pager, labels: { tier: "1" } }
    freshness: { maxAge: ${SLA_S}s }
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
`);
  const cleanup: Array<() => Promise<unknown>> = [];
  let kafka: Bus;
  let registry: SchemaRegistry;
  let producer: TesseraProducer;
  let processor: Processor | undefined;
  let server: FeatureServerHandle;
  let webhook: Awaited<ReturnType<typeof alertmanager>>;
  let producing = true;
  let sending: Promise<void> = Promise.resolve();

  const startProcessorNow = () =>
    startProcessor(
      loadProcessorConfig({
        env: {},
        overrides: {
          name: uniqueName("freshness-gate").replace(/[^a-z0-9-]/g, "-"),
          definitions: "unused.yaml",
          kafka: { brokers: kafkaBrokers(), schemaRegistryUrl: services().SCHEMA_REGISTRY_URL },
          store: { kind: "redis", redisUrl: services().REDIS_URL, keyPrefix },
          flush: { maxEvents: 500, maxDelayMs: 200 },
          topics: { deadLetter: topics.deadLetter, features: topics.features },
        },
      }),
      { kafka, registry, definitions: defs, logger: createLogger("stream-processor", "warn") },
    );

  beforeAll(async () => {
    kafka = createKafka({ brokers: kafkaBrokers(), clientId: "freshness-gate-test" });
    registry = new SchemaRegistry(services().SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());
    await ensureTopics(
      kafka,
      [source, ...Object.values(topics)].map((topic) => ({ topic, partitions: 1 })),
    );
    producer = new TesseraProducer({
      kafka,
      registry,
      schemas: { [source]: schema("payment_transaction") },
    });
    await producer.connect();
    cleanup.push(() => producer.disconnect());
    webhook = await alertmanager();
    cleanup.push(() => webhook.close());

    const store = new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix, timeoutMs: 2000 });
    cleanup.push(() => store.close());
    server = await startFeatureServer(
      featureServerConfig({
        http: { port: 0 },
        grpc: { port: 0 },
        auth: { allowAnonymous: true },
        // The drift worker and the processor run in this process: their work must not shed requests.
        reliability: { maxEventLoopDelayMs: 0 },
        gate: { follow: true, topic: gateTopic },
      }),
      {
        store,
        definitions: defs,
        logger: createLogger("feature-server", "silent"),
        env: { KAFKA_BROKERS: services().KAFKA_BROKERS },
      },
    );
    cleanup.push(() => server.stop());
    const worker = await startDriftWorker(
      defaultConfig({
        http: { port: 0 },
        topics,
        groupId: uniqueName("drift-worker"),
        fromBeginning: true,
        evaluation: { intervalMs: 500 },
        hysteresis: { resolveAfter: 1, coolDownMs: 0 },
        // Topic-level freshness stays quiet: the view's SLA is what this test is about.
        freshness: { warnSeconds: 3600, criticalSeconds: 7200 },
        gates: { enabled: true, topic: gateTopic, clearAfterMs: 2000 },
        webhook: { url: webhook.url, retries: 2, repeatMs: 3_600_000 },
      }),
      {
        profile: referenceProfile(),
        definitions: defs,
        kafka,
        registry,
        logger: createLogger("drift-worker", "warn"),
      },
    );
    cleanup.push(() => worker.stop());

    // Payments for ten cards, stamped now, every 200 ms until the test ends.
    let n = 0;
    sending = (async () => {
      while (producing) {
        const now = Date.now();
        await producer.publishBatch(
          source,
          Array.from({ length: 10 }, (_, i) => {
            const value = {
              transaction_id: `tx-${n++}`,
              card_id: `card-${i}`,
              merchant_id: "m-1",
              amount: 10,
              currency: "EUR",
              country: "FR",
              event_time: now,
            };
            return { key: value.card_id, value };
          }),
        );
        await sleep(200);
      }
    })();
    processor = await startProcessorNow();
  }, 120_000);

  afterAll(async () => {
    producing = false;
    await sending.catch(() => {});
    await processor?.stop();
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  const http = () => createClient({ url: server.url, deadlineMs: 2000, retry: false });
  const grpc = () => createClient({ grpc: `127.0.0.1:${server.grpcPort}`, deadlineMs: 2000, retry: false });
  /** The status of card-0's count, over one protocol. */
  const status = async (client: ReturnType<typeof http>) => {
    const result = await client.getFeatures({ features: ["cards:n_1h"], entities: { card_id: ["card-0"] } });
    return result.entities["card_id"]![0]!.features["cards:n_1h"]!.status;
  };
  const until = async (what: string, ok: () => Promise<boolean>, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(200);
    }
  };

  it("a stopped processor quarantines the view within its SLA; a restarted one clears it, one alert pair", async () => {
    const [onHttp, onGrpc] = [http(), grpc()];
    try {
      await until("card-0 served present", async () => (await status(onHttp)) === "present", 60_000);
      expect(await status(onGrpc)).toBe("present");

      await processor!.stop();
      processor = undefined;
      const stopped = Date.now();
      await until(
        "the view quarantined over HTTP",
        async () => (await status(onHttp)) === "quarantined",
        30_000,
      );
      const tripAfter = (Date.now() - stopped) / 1000;
      // Breached at SLA_S past the newest update; noticed within an evaluation or two, then followed.
      expect(tripAfter).toBeGreaterThan(SLA_S - 1);
      expect(tripAfter).toBeLessThan(SLA_S + 10);
      expect(await status(onGrpc)).toBe("quarantined");
      const raw = (await (
        await fetch(`${server.url}/v1/features`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ features: ["cards:n_1h"], entities: { card_id: ["card-0"] } }),
        })
      ).json()) as { views: Record<string, { degraded: boolean; gates: Array<Record<string, unknown>> }> };
      expect(raw.views["cards"]!.degraded).toBe(true);
      expect(raw.views["cards"]!.gates[0]).toMatchObject({
        subject: "view:cards",
        state: "tripped",
        causes: ["freshness_sla"],
      });

      processor = await startProcessorNow();
      await until("the view served present again", async () => (await status(onHttp)) === "present", 60_000);
      expect(await status(onGrpc)).toBe("present");
      console.log(
        `freshness gate: tripped ${tripAfter.toFixed(1)} s after the processor stopped (SLA ${SLA_S} s); ` +
          `served present again ${((Date.now() - stopped) / 1000).toFixed(1)} s after the stop`,
      );
      await until(
        "the RESOLVED at the webhook",
        async () => webhook.alerts.some((a) => a.labels["subject"] === "view:cards" && a.endsAt),
        10_000,
      );
      const pair = webhook.alerts.filter((a) => a.labels["subject"] === "view:cards");
      expect(pair.map((a) => (a.endsAt ? "resolved" : "firing"))).toEqual(["firing", "resolved"]);
      for (const alert of pair)
        expect(alert.labels).toMatchObject({
          alertname: "TesseraDataFreshness",
          team: "risk-features",
          oncall: "risk-pager",
          tier: "1",
          severity: "critical",
        });
    } finally {
      await Promise.all([onHttp.close(), onGrpc.close()]);
    }
  });
});
