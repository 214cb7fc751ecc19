/**
 * One event traced end to end, asserted from the spans an in-process OTLP receiver got (OTLP/HTTP
 * protobuf, as a collector would): an inference service's request publishes a payment through
 * TesseraProducer (PRODUCER span, W3C context in the Kafka headers) → the stream processor's flush
 * span links to it → the FeatureUpdate records carry the flush's context → the service then reads
 * the features through @tessera/client (CLIENT span) → the feature server's SERVER span is its
 * child, with the store read and finalise spans under it. Real Kafka, registry and Redis.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { createClient } from "@tessera/client";
import { featureServerConfig, startFeatureServer } from "@tessera/feature-server";
import { type BusRecord, createKafka, ensureTopics, SchemaRegistry, TesseraProducer } from "@tessera/kafka";
import { setupTracing, spanContextFromHeaders } from "@tessera/runtime";
import { createOnlineStore } from "@tessera/stores";
import { loadProcessorConfig, startProcessor } from "@tessera/stream-processor";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../support/index.js";
import { type OtlpReceiver, startOtlpReceiver } from "../support/otlp-receiver.js";

const paymentSchema = JSON.parse(
  readFileSync(new URL("../../schemas/avro/payment_transaction.avsc", import.meta.url), "utf8"),
);
const silent = pino({ level: "silent" });

describe("tracing end to end", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    cleanup.push(() => receiver.close());
    // As each service's main does with `tracing: { enabled: true, endpoint }` (one process here).
    const tracing = await setupTracing(
      { enabled: true, endpoint: receiver.url, sampleRatio: 1 },
      { serviceName: "tessera-e2e" },
    );
    cleanup.push(() => tracing.shutdown());
  });

  it("producer → processor flush → served request → FeatureUpdate, from the exported spans", async () => {
    const env = services();

    const topic = uniqueName("trace");
    const features = `${topic}.features`;
    const deadLetter = `${topic}.dead-letter`;
    const kafka = createKafka({ brokers: kafkaBrokers() });
    await ensureTopics(kafka, [
      { topic, partitions: 1 },
      { topic: features, partitions: 1 },
      { topic: deadLetter, partitions: 1 },
    ]);
    const yaml = `
sources:
  - { name: tx, topic: ${topic}, entity: card_id, timestamp: event_time }
views:
  - name: cards
    source: tx
    features:
      - { name: n_1h, op: count, window: 1h, hop: 5m }
      - { name: sum_1h, op: sum, column: amount, window: 1h, hop: 5m }
`;
    const definitions = parseDefinitionsYaml(yaml);
    const keyPrefix = `${uniqueName("trace")}:`;
    const registry = new SchemaRegistry(env.SCHEMA_REGISTRY_URL);
    cleanup.push(async () => registry.close());

    const processor = await startProcessor(
      loadProcessorConfig({
        env: {},
        overrides: {
          name: uniqueName("trace"),
          definitions: "inline.yaml",
          kafka: { brokers: kafkaBrokers(), schemaRegistryUrl: env.SCHEMA_REGISTRY_URL },
          store: { kind: "redis", redisUrl: env.REDIS_URL, keyPrefix },
          topics: { deadLetter, features },
          flush: { maxDelayMs: 100 },
          fromBeginning: true,
          ops: { port: 0 },
        },
      }),
      { definitions, registry, logger: silent, ops: false },
    );
    cleanup.push(() => processor.stop());

    const store = createOnlineStore({ kind: "redis", url: env.REDIS_URL, keyPrefix, timeoutMs: 5000 });
    const server = await startFeatureServer(
      featureServerConfig({ http: { port: 0 }, grpc: { port: 0 }, auth: { allowAnonymous: true } }),
      { store, definitions, logger: silent },
    );
    cleanup.push(() => server.stop());
    cleanup.push(() => store.close());
    const client = createClient({ url: server.url, deadlineMs: 5000 });
    cleanup.push(() => client.close());
    const grpcClient = createClient({ grpc: `127.0.0.1:${server.grpcPort}`, deadlineMs: 5000 });
    cleanup.push(() => grpcClient.close());

    const producer = new TesseraProducer({
      brokers: kafkaBrokers(),
      registry,
      schemas: { [topic]: paymentSchema },
    });
    cleanup.push(() => producer.disconnect());

    // The inference service: one request that publishes the payment, then scores it with fresh features.
    const tracer = trace.getTracer("e2e.inference-service");
    const root = tracer.startSpan("POST /score", { kind: SpanKind.SERVER });
    const card = "card-traced";
    const served = await context.with(trace.setSpan(context.active(), root), async () => {
      await producer.publish(
        topic,
        {
          transaction_id: "tx-1",
          card_id: card,
          merchant_id: "m-1",
          amount: 42,
          currency: "EUR",
          country: "FR",
          event_time: Date.now() - 1000,
        },
        { key: card },
      );
      // Until the processor's flush is visible to the server.
      for (const started = Date.now(); Date.now() - started < 60_000; ) {
        const result = await client.getFeatures({ features: ["cards:n_1h"], entities: { card_id: [card] } });
        if (result.entities.card_id[0]!.features["cards:n_1h"]!.value === 1) return result;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error("the event never reached the feature server");
    });
    const viaGrpc = await context.with(trace.setSpan(context.active(), root), () =>
      grpcClient.getFeatures({ features: ["cards:n_1h"], entities: { card_id: [card] } }),
    );
    expect(viaGrpc.entities.card_id[0]!.features["cards:n_1h"]).toEqual({ value: 1, status: "present" });
    root.end();
    expect(served.entities.card_id[0]!.features["cards:n_1h"]).toEqual({ value: 1, status: "present" });

    // The FeatureUpdate record the flush published, with its headers.
    const consumer = kafka.consumer({ groupId: uniqueName("trace-features") });
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topics: [features], fromBeginning: true });
    const update = await new Promise<BusRecord>((resolve) => {
      void consumer.run({ eachMessage: async ({ message }) => resolve(message) });
    });
    expect(update.key?.toString()).toBe(card);
    const updateContext = spanContextFromHeaders(update.headers);
    expect(updateContext, "FeatureUpdate carries a traceparent").toBeDefined();

    const traceId = root.spanContext().traceId;
    const spans = await receiver.waitFor(
      (all) =>
        all.some((s) => s.scope === "tessera.stream-processor") &&
        all.some((s) => s.name === "finalise" && s.traceId === traceId) &&
        all.some((s) => s.name === "tessera.v1.FeatureService/GetOnlineFeatures") &&
        all.some((s) => s.name === "POST /score"),
      30_000,
    );
    const one = (what: string, pick: (s: (typeof spans)[number]) => boolean) => {
      const found = spans.filter(pick);
      expect(found.length, what).toBeGreaterThan(0);
      return found.at(-1)!;
    };

    // producer: a child of the service's request, its context in the record's headers.
    const rootSpan = one("root", (s) => s.name === "POST /score");
    const publish = one("publish", (s) => s.scope === "tessera.kafka" && s.name === `${topic} publish`);
    expect(publish.kind).toBe(4); // PRODUCER
    expect(publish.traceId).toBe(traceId);
    expect(publish.parentSpanId).toBe(rootSpan.spanId);
    expect(publish.attributes["messaging.destination.name"]).toBe(topic);

    // processor flush: a trace of its own, linked to the producer's span.
    const flush = one(
      "flush linked to the publish",
      (s) => s.scope === "tessera.stream-processor" && s.links.some((l) => l.spanId === publish.spanId),
    );
    expect(flush.name).toBe(`${topic} flush`);
    expect(flush.kind).toBe(5); // CONSUMER
    expect(flush.parentSpanId).toBe("");
    expect(flush.links).toContainEqual({
      traceId: publish.traceId,
      spanId: publish.spanId,
      attributes: expect.objectContaining({ "messaging.kafka.offset": 0 }),
    });
    expect(flush.attributes["messaging.destination.partition.id"]).toBe("0");
    expect(flush.attributes["tessera.states"]).toBeGreaterThan(0);

    // FeatureUpdate: its headers name the flush span.
    expect(updateContext!.traceId).toBe(flush.traceId);
    expect(updateContext!.spanId).toBe(flush.spanId);

    // served request: client → server → store read and finalise, in the service's trace.
    const request = one(
      "HTTP server span",
      (s) => s.scope === "tessera.feature-server" && s.name === "POST /v1/features" && s.traceId === traceId,
    );
    expect(request.kind).toBe(2); // SERVER
    const lastCall = one("its client span", (s) => s.spanId === request.parentSpanId);
    expect(lastCall.scope).toBe("tessera.client");
    expect(lastCall.kind).toBe(3); // CLIENT
    expect(lastCall.parentSpanId).toBe(rootSpan.spanId);
    expect(request.attributes["http.response.status_code"]).toBe(200);
    const read = one("store read", (s) => s.name === "store readStates" && s.parentSpanId === request.spanId);
    expect(read.attributes["tessera.view"]).toBe("cards");
    expect(read.attributes["tessera.entities"]).toBe(1);
    one("finalise", (s) => s.name === "finalise" && s.parentSpanId === request.spanId);
    // The gRPC call: the same shape under its own client span.
    const rpc = one(
      "gRPC server span",
      (s) => s.scope === "tessera.feature-server" && s.name === "tessera.v1.FeatureService/GetOnlineFeatures",
    );
    expect(rpc.kind).toBe(2);
    expect(rpc.traceId).toBe(traceId);
    expect(rpc.attributes["rpc.grpc.status_code"]).toBe(0);
    const rpcCall = one("gRPC client span", (s) => s.spanId === rpc.parentSpanId);
    expect(rpcCall.scope).toBe("tessera.client");
    expect(rpcCall.parentSpanId).toBe(rootSpan.spanId);
    one("gRPC store read", (s) => s.name === "store readStates" && s.parentSpanId === rpc.spanId);
    // Every request span of the polling loop is in the same trace, each under its own client span.
    const requests = spans.filter((s) => s.scope === "tessera.feature-server" && s.kind === 2);
    expect(requests.every((s) => s.traceId === traceId)).toBe(true);
  }, 180_000);

  it("a feature-server process with TESSERA_FEATURE_SERVER_TRACING_* continues the caller's trace over HTTP", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trace-process-"));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      join(dir, "features.yaml"),
      "sources:\n  - { name: tx, topic: t, entity: card_id, timestamp: ts }\nviews:\n  - name: cards\n    source: tx\n    features:\n      - { name: n_1h, op: count, window: 1h }\n",
    );
    const child = spawn(
      process.execPath,
      [
        "--conditions=@tessera/source",
        "--import",
        "tsx",
        join(import.meta.dirname, "../../services/feature-server/src/main.ts"),
      ],
      {
        env: {
          ...process.env,
          TESSERA_FEATURE_SERVER_DEFINITIONS: join(dir, "features.yaml"),
          TESSERA_FEATURE_SERVER_HTTP_PORT: "0",
          TESSERA_FEATURE_SERVER_GRPC_ENABLED: "false",
          TESSERA_FEATURE_SERVER_STORE_KIND: "memory",
          TESSERA_FEATURE_SERVER_AUTH_ALLOW_ANONYMOUS: "true",
          TESSERA_FEATURE_SERVER_TRACING_ENABLED: "true",
          TESSERA_FEATURE_SERVER_TRACING_ENDPOINT: receiver.url,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    let log = "";
    child.stderr!.on("data", (chunk) => {
      log += chunk;
    });
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on("data", (chunk) => {
        log += chunk;
        const match = /"url":"(http:[^"]+)"/.exec(log);
        if (match) resolve(match[1]!);
      });
      void exited.then((code) => reject(new Error(`exited ${code}: ${log}`)));
    });
    const client = createClient({ url, deadlineMs: 5000 });
    const root = trace
      .getTracer("e2e.inference-service")
      .startSpan("POST /score-remote", { kind: SpanKind.SERVER });
    const result = await context.with(trace.setSpan(context.active(), root), () =>
      client.getFeatures({ features: ["cards:n_1h"], entities: { card_id: ["c-1"] } }),
    );
    root.end();
    await client.close();
    expect(result.entities.card_id[0]!.features["cards:n_1h"]).toEqual({ value: 0, status: "missing" });
    child.kill("SIGTERM"); // shutdown exports what the process still holds
    expect(await exited).toBe(0);

    const traceId = root.spanContext().traceId;
    const spans = await receiver.waitFor((all) =>
      ["tessera-feature-server", "tessera-e2e"].every((service) =>
        all.some(
          (s) =>
            s.service === service && s.traceId === traceId && s.kind === (service === "tessera-e2e" ? 3 : 2),
        ),
      ),
    );
    const call = spans.find((s) => s.scope === "tessera.client" && s.traceId === traceId)!;
    const served = spans.find(
      (s) => s.service === "tessera-feature-server" && s.traceId === traceId && s.kind === 2,
    )!;
    expect(served.parentSpanId).toBe(call.spanId);
    expect(served.name).toBe("POST /v1/features");
    expect(
      spans.some(
        (s) =>
          s.service === "tessera-feature-server" &&
          s.parentSpanId === served.spanId &&
          s.name === "store readStates",
      ),
    ).toBe(true);
  }, 120_000);
});
