/**
 * @tessera/feature-server: `startFeatureServer(config, deps)` runs the HTTP and gRPC servers in the
 * calling process (main.ts for the real service; the embedded demo with a memory store).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  createKafka,
  GateFollower,
  GatePublisher,
  type ServedFeaturesRecord,
  TesseraProducer,
} from "@tessera/kafka";
import { ConfigError, createLogger, type Logger, loadDefinitions } from "@tessera/runtime";
import { createOnlineStore, type OnlineStore, type OnlineStoreConfig } from "@tessera/stores";
import type { Definitions } from "@tessera/transforms";
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from "fastify";
import { collectDefaultMetrics, Registry } from "prom-client";
import { type ApiKeyEntry, Authenticator, readKeysFile } from "./auth.js";
import { Catalog } from "./catalog.js";
import type { FeatureServerConfig } from "./config.js";
import { FeatureLogger, type FeatureLogSink } from "./feature-log.js";
import { GateBoard, type GateSource } from "./gate.js";
import type { GateOperator } from "./gate-routes.js";
import { type GrpcServer, startGrpc } from "./grpc.js";
import { buildHttp, frameworkErrors } from "./http.js";
import { jwtVerifier } from "./jwt.js";
import { LineageService } from "./lineage.js";
import { serverMetrics } from "./metrics.js";
import { FeatureService } from "./serve.js";
import { applyViews } from "./startup.js";
import { traceStore } from "./tracing.js";

export { PROTO_PATH } from "@tessera/client";
export { type ApiKeyEntry, hashKey, readKeysFile } from "./auth.js";
export { Catalog } from "./catalog.js";
export {
  configSchema,
  type FeatureServerConfig,
  featureServerConfig,
  loadFeatureServerConfig,
} from "./config.js";
export { ServeError, type ServeErrorKind } from "./errors.js";
export type { FeatureLogSink } from "./feature-log.js";
export { GateBoard, type GateSource, type GateVerdict } from "./gate.js";
export type { GateOperator } from "./gate-routes.js";
export { loadServiceDefinition } from "./grpc.js";
export { algorithmFor, type JwtAlgorithm } from "./jwt.js";
export { FEATURE_ROUTES, LATENCY_BUCKETS, SERVED_AGE_BUCKETS } from "./metrics.js";
export type { EntityGroupResult, EntityRow, FeatureRequest, FeatureResponse, Status } from "./serve.js";

export interface FeatureServerDeps {
  /** The online store; default: from config.store and REDIS_URL / CASSANDRA_* (closed on stop). */
  store?: OnlineStore;
  /** Default: loaded from config.definitions. */
  definitions?: Definitions;
  /** API keys besides (or instead of) config.auth.keysFile. */
  apiKeys?: ApiKeyEntry[];
  /** Prometheus registry; default a new one with the process metrics. */
  registry?: Registry;
  logger?: Logger;
  /** Where audit lines go (one per request); default the service logger. */
  auditLog?: Logger;
  /** Where sampled served vectors go; default the served-features topic when sampleRate > 0. */
  featureLogSink?: FeatureLogSink;
  /** Extra Fastify plugins (routes, pages) mounted on the HTTP server, e.g. the demo's dashboard. */
  plugins?: FastifyPluginAsync[];
  /**
   * Resolve only once the store has answered (default true, for in-process callers). The process
   * entry passes false: it listens at once, not ready, and retries the store (see `storeReady`).
   */
  waitForStore?: boolean;
  /** Gate states from somewhere else than the topic (tests, the embedded demo); else config.gate. */
  gates?: GateSource;
  /** Serves /v1/gates with it (the embedded demo's publisher); a server following the topic has its own. */
  gateOperator?: GateOperator;
  env?: NodeJS.ProcessEnv;
}

export interface FeatureServerHandle {
  app: FastifyInstance;
  /** Base URL of the HTTP server. */
  url: string;
  /** Bound gRPC port, or null when gRPC is disabled. */
  grpcPort: number | null;
  registry: Registry;
  /**
   * Resolves once the online store has answered (the server is ready); rejects with a ConfigError
   * if the store refuses at start-up. Until then the server listens and answers 503.
   */
  storeReady: Promise<void>;
  /** Graceful: refuses new requests (503), drains in-flight ones, then closes what it opened. */
  stop(): Promise<void>;
}

const SERVED_FEATURES_SCHEMA = fileURLToPath(
  new URL("../../../schemas/avro/served_features.avsc", import.meta.url),
);

function storeFromEnv(config: FeatureServerConfig, env: NodeJS.ProcessEnv): OnlineStoreConfig {
  const { store, reliability } = config;
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new ConfigError([`${name} is not set (needed by store.kind=${store.kind})`]);
    return value;
  };
  switch (store.kind) {
    case "redis":
      return {
        kind: "redis",
        url: need("REDIS_URL"),
        keyPrefix: store.keyPrefix,
        timeoutMs: reliability.storeTimeoutMs,
      };
    case "cassandra":
      return {
        kind: "cassandra",
        contactPoints: need("CASSANDRA_CONTACT_POINTS").split(","),
        localDataCenter: need("CASSANDRA_LOCAL_DC"),
        keyspace: store.keyspace,
        timeoutMs: reliability.storeTimeoutMs,
      };
    case "memory":
      return { kind: "memory" };
  }
}

/** The served-features topic through the validated producer (schema registered on first use). */
function kafkaSink(topic: string): FeatureLogSink {
  const producer = new TesseraProducer({
    clientId: "tessera-feature-server",
    schemas: { [topic]: readFileSync(SERVED_FEATURES_SCHEMA, "utf8") },
  });
  return {
    send: async (records: ServedFeaturesRecord[]) => {
      await producer.publishBatch(
        topic,
        records.map((value) => ({ value, key: value.entity })),
      );
    },
    close: () => producer.disconnect(),
  };
}

export async function startFeatureServer(
  config: FeatureServerConfig,
  deps: FeatureServerDeps = {},
): Promise<FeatureServerHandle> {
  const env = deps.env ?? process.env;
  const logger = deps.logger ?? createLogger("feature-server");
  const auditLog = deps.auditLog ?? logger;
  const registry = deps.registry ?? new Registry();
  if (!deps.registry) collectDefaultMetrics({ register: registry });
  const metrics = serverMetrics(registry);

  let definitions = deps.definitions;
  if (!definitions) {
    if (!config.definitions) {
      throw new ConfigError([
        "definitions: is required (a .yaml, .json, .ts or .js file), unless passed in-process",
      ]);
    }
    definitions = await loadDefinitions(config.definitions);
  }
  const catalog = new Catalog(definitions, config.memory.planCacheBytes);
  const ownsStore = deps.store === undefined;
  const store = traceStore(deps.store ?? createOnlineStore(storeFromEnv(config, env))); // tracing: read spans
  const closeOwned: Array<() => Promise<void>> = [];
  if (ownsStore) closeOwned.push(() => store.close());
  const starting = new AbortController();
  try {
    const { auth, limits, memory, reliability, tls } = config;
    const keys = [...(deps.apiKeys ?? []), ...(auth.keysFile ? readKeysFile(auth.keysFile) : [])];
    const tlsFiles =
      tls.certFile && tls.keyFile
        ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }
        : undefined;

    const common = {
      logger: false as const,
      bodyLimit: limits.maxRequestBytes,
      // Above any URL Node accepts (16 KiB of headers), so a long id is a 400 from the id check,
      // never a 414 from the router.
      routerOptions: { maxParamLength: 16 * 1024 },
      frameworkErrors,
      return503OnClosing: true,
      // Strict types: no coercion ("5" is not 5), unknown fields are refused rather than dropped.
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    };
    const app = (tlsFiles
      ? Fastify({ ...common, https: tlsFiles })
      : Fastify(common)) as unknown as FastifyInstance;

    const jwtEnabled = auth.jwtSecret !== undefined || auth.jwtPublicKeyFile !== undefined;
    const jwt = jwtEnabled
      ? jwtVerifier({
          secret: auth.jwtSecret,
          publicKey: auth.jwtPublicKeyFile ? readFileSync(auth.jwtPublicKeyFile) : undefined,
          issuer: auth.jwtIssuer,
          audience: auth.jwtAudience,
          maxLifetimeSeconds: auth.jwtMaxLifetimeSeconds,
        })
      : undefined;
    const authenticator = new Authenticator({
      keys,
      verifyJwt: jwt?.verify,
      allowAnonymous: auth.allowAnonymous,
      ratePerSecond: limits.ratePerSecond,
      burst: limits.burst,
      authFailuresPerSecond: limits.authFailuresPerSecond,
      authFailureBurst: limits.authFailureBurst,
      rateLimitBytes: memory.rateLimitBytes,
    });
    if (!auth.allowAnonymous && keys.length === 0 && !jwtEnabled) {
      logger.warn(
        "no API keys and no JWT configured: every request will get 401 (set auth.allowAnonymous for a local demo)",
      );
    }

    // Quality gates: followed from the topic (ready once read to its end), or given in-process.
    let gates: GateSource | undefined = deps.gates;
    let gateOperator: GateOperator | undefined = deps.gateOperator;
    if (!gates && config.gate.follow) {
      const brokers = env["KAFKA_BROKERS"];
      if (!brokers) throw new ConfigError(["KAFKA_BROKERS is not set (needed by gate.follow)"]);
      const gateKafka = createKafka({ brokers: brokers.split(","), clientId: "tessera-feature-server" });
      const follower = new GateFollower({
        kafka: gateKafka,
        topic: config.gate.topic,
        clientId: "tessera-feature-server-gate",
        onInvalid: (err, key) => logger.warn({ err, key }, "gate record skipped: invalid"),
        onChange: (subject, state) =>
          logger.info({ subject, state: state?.state ?? "released" }, "gate changed"),
      });
      closeOwned.unshift(() => follower.stop());
      await follower.start();
      gates = follower;
      // The operator API writes through the same follower (it must know what it changes).
      const publisher = new GatePublisher({ kafka: gateKafka, topic: config.gate.topic, follower });
      closeOwned.unshift(() => publisher.stop());
      await publisher.start();
      gateOperator = publisher;
    }
    const gateBoard = gates ? new GateBoard(definitions, gates) : undefined;

    const service = new FeatureService({
      catalog,
      store,
      storeTimeoutMs: reliability.storeTimeoutMs,
      breakerFailures: reliability.breakerFailures,
      breakerCooldownMs: reliability.breakerCooldownMs,
      fallback: reliability.fallback,
      lastKnownBytes: memory.lastKnownBytes,
      retryAfterSeconds: reliability.retryAfterSeconds,
      metrics,
      gates: gateBoard,
    });
    metrics.cacheSources["plans"] = () => catalog.planCacheBytes;
    metrics.cacheSources["last_known"] = () => service.lastKnownBytes;
    metrics.cacheSources["rate_limits"] = () => authenticator.stateBytes;

    let featureLog: FeatureLogger | undefined;
    if (config.featureLog.sampleRate > 0) {
      featureLog = new FeatureLogger({
        sink: deps.featureLogSink ?? kafkaSink(config.featureLog.topic),
        sampleRate: config.featureLog.sampleRate,
        maxQueue: config.featureLog.maxQueue,
        flushIntervalMs: config.featureLog.flushIntervalMs,
        metrics,
        logger,
      });
      closeOwned.unshift(() => featureLog!.close());
    }

    const lineage = new LineageService(definitions, Date.now(), env["SCHEMA_REGISTRY_URL"]);
    let stopping = false;
    const { underPressure } = await buildHttp(app, {
      config,
      service,
      lineage,
      auth: authenticator,
      metrics,
      registry,
      featureLog,
      auditLog,
      ...(gateOperator ? { gates: { operator: gateOperator, definitions } } : {}),
      readiness: () => ({
        ready: !stopping && service.storeReached && (gateBoard?.caughtUp ?? true),
        detail: {
          stopping,
          storeReached: service.storeReached,
          gatesRead: gateBoard?.caughtUp ?? null,
          storeCircuitOpen: service.breaker.open,
          views: catalog.views.size,
        },
      }),
      draining: () => stopping,
      plugins: deps.plugins ?? [],
    });
    const url = await app.listen({ host: config.http.host, port: config.http.port });

    let grpcServer: GrpcServer | undefined;
    if (config.grpc.enabled) {
      try {
        grpcServer = await startGrpc({
          host: config.grpc.host,
          port: config.grpc.port,
          tls: tlsFiles,
          service,
          auth: authenticator,
          metrics,
          featureLog,
          auditLog,
          underPressure,
          retryAfterSeconds: reliability.retryAfterSeconds,
          limits,
          maxInFlight: reliability.maxGrpcInFlight,
        });
      } catch (error) {
        await app.close();
        throw error;
      }
    }
    logger.info(
      { url, grpcPort: grpcServer?.port ?? null, views: [...catalog.views.keys()] },
      "feature server listening",
    );

    // Listening already (not ready): the store may take its time to answer the first calls.
    const storeReady = applyViews(
      store,
      definitions.views.map((view) => ({
        name: view.name,
        version: view.version,
        retentionMs: view.retentionMs,
      })),
      { maxMs: reliability.startRetryMaxMs, signal: starting.signal, logger },
    ).then(async () => {
      service.storeReached = true;
      // Ready means serving what the gates say: a server started while a gate is tripped never
      // serves that view as ok, not even for its first request.
      if (gates instanceof GateFollower) await gates.caughtUp;
    });
    storeReady.catch(() => {}); // the caller decides (main.ts exits on it)

    let stopped: Promise<void> | undefined;
    const handle: FeatureServerHandle = {
      app,
      url,
      grpcPort: grpcServer?.port ?? null,
      registry,
      storeReady,
      stop: () => {
        stopped ??= (async () => {
          stopping = true;
          starting.abort();
          const drain = reliability.drainTimeoutMs;
          const httpClosed = app.close();
          const timer = setTimeout(() => app.server.closeAllConnections?.(), drain);
          await Promise.all([httpClosed, grpcServer?.stop(drain)]);
          clearTimeout(timer);
          for (const close of closeOwned) await close().catch((err) => logger.warn({ err }, "close failed"));
        })();
        return stopped;
      },
    };
    if (deps.waitForStore ?? true) {
      await storeReady.catch(async (error) => {
        await handle.stop();
        throw error;
      });
    }
    return handle;
  } catch (error) {
    for (const close of closeOwned) await close().catch(() => {});
    throw error;
  }
}
