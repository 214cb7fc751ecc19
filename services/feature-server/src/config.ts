/**
 * Feature server configuration: a YAML/JSON file and TESSERA_FEATURE_SERVER_* variables, validated
 * by @tessera/runtime's loadConfig. Connection settings come from the shared variables (REDIS_URL,
 * CASSANDRA_CONTACT_POINTS, CASSANDRA_LOCAL_DC, KAFKA_BROKERS, SCHEMA_REGISTRY_URL).
 */

import { tesseraStateTopics, tesseraTopics } from "@tessera/kafka";
import {
  bool,
  definitionsFileTypes,
  int,
  type JsonSchema,
  loadConfig,
  num,
  obj,
  str,
  type TracingConfig,
  tracingConfigSchema,
} from "@tessera/runtime";

export type Fallback = "error" | "stale";

export interface FeatureServerConfig {
  /** Feature definitions: YAML/JSON, or a TypeScript/JavaScript module (default export). Not needed when
   * the caller passes `definitions` to startFeatureServer. */
  definitions?: string;
  http: { host: string; port: number };
  grpc: { enabled: boolean; host: string; port: number };
  /** PEM files; when both are set, HTTP is served over HTTPS and gRPC over TLS. */
  tls: { certFile?: string; keyFile?: string };
  store: {
    kind: "redis" | "cassandra" | "memory";
    /** Redis key prefix (several deployments can share a server). */
    keyPrefix: string;
    /** Cassandra keyspace. */
    keyspace: string;
  };
  auth: {
    /** YAML/JSON file of API keys (hashed); see docs/security.md. */
    keysFile?: string;
    /** HS256 shared secret, or a PEM public key file (RSA → RS256, EC P-256 → ES256) for JWTs. */
    jwtSecret?: string;
    jwtPublicKeyFile?: string;
    /** When set, tokens must carry this `iss` / `aud` (a token without the claim is refused). */
    jwtIssuer?: string;
    jwtAudience?: string;
    /** Longest a token may live: `exp` at most this far from now (and from `iat`). */
    jwtMaxLifetimeSeconds: number;
    /** Serve without credentials (local demo only): every view, the default rate limit. */
    allowAnonymous: boolean;
  };
  /** Request limits: each holds on HTTP and gRPC alike (docs/security.md). */
  limits: {
    /** Largest HTTP body / gRPC message. */
    maxRequestBytes: number;
    maxEntities: number;
    maxFeatures: number;
    maxContextDepth: number;
    /** Per key (API key id or JWT subject) unless the key sets its own. */
    ratePerSecond: number;
    burst: number;
    /** Failed authentications per client address: refill rate and budget. */
    authFailuresPerSecond: number;
    authFailureBurst: number;
  };
  /** Byte budgets of the in-memory caches. */
  memory: {
    planCacheBytes: number;
    /** Last known tiles for `reliability.fallback: stale` (all views together). */
    lastKnownBytes: number;
    /** Rate-limit buckets (per principal and per client address). */
    rateLimitBytes: number;
  };
  reliability: {
    /** Bound on one store read; past it the request fails (503) or falls back. */
    storeTimeoutMs: number;
    /** Consecutive store failures that open the circuit, and how long it stays open. */
    breakerFailures: number;
    breakerCooldownMs: number;
    /** What a request gets while the store is down: an error (503), or last known values marked stale. */
    fallback: Fallback;
    /** Start-up: the first store calls are retried with backoff up to this delay between tries. */
    startRetryMaxMs: number;
    /** Load shedding (@fastify/under-pressure); 0 disables a check. */
    maxEventLoopDelayMs: number;
    maxHeapUsedBytes: number;
    /** gRPC calls in progress beyond which new calls get UNAVAILABLE (an overloaded server sheds
     * instead of collapsing into missed deadlines). */
    maxGrpcInFlight: number;
    retryAfterSeconds: number;
    /** Graceful shutdown: how long in-flight requests may take to finish. */
    drainTimeoutMs: number;
  };
  featureLog: {
    /** Share of served vectors logged to the topic (0 disables). */
    sampleRate: number;
    topic: string;
    /** Records waiting to be sent; beyond it new samples are dropped (and counted). */
    maxQueue: number;
    flushIntervalMs: number;
  };
  /** Quality gates (docs/operations.md): followed from the compacted gate topic on KAFKA_BROKERS. */
  gate: {
    /** Follow the gate topic; the server is ready only once it has read it to the end. */
    follow: boolean;
    topic: string;
  };
  /** OpenTelemetry traces (docs/tracing.md); off by default. */
  tracing: TracingConfig;
}

export const configSchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    definitions: str(`Path of the feature definitions (${definitionsFileTypes.join(", ")})`, {
      minLength: 1,
    }),
    http: obj({
      host: str("HTTP bind address", { default: "127.0.0.1" }),
      port: int("HTTP port (0: any free port)", 8080),
    }),
    grpc: obj({
      enabled: bool("serve gRPC", true),
      host: str("gRPC bind address", { default: "127.0.0.1" }),
      port: int("gRPC port (0: any free port)", 50051),
    }),
    tls: obj({ certFile: str("PEM certificate chain"), keyFile: str("PEM private key") }),
    store: obj({
      kind: { type: "string", enum: ["redis", "cassandra", "memory"], default: "redis" },
      keyPrefix: str("Redis key prefix", { default: "tessera:" }),
      keyspace: str("Cassandra keyspace", { default: "tessera" }),
    }),
    auth: obj({
      keysFile: str("API keys file"),
      jwtSecret: str("HS256 secret for JWTs (at least 32 bytes)", { minLength: 1 }),
      jwtPublicKeyFile: str("PEM public key for JWTs: RSA (RS256) or EC P-256 (ES256)"),
      jwtIssuer: str("Required JWT issuer"),
      jwtAudience: str("Required JWT audience"),
      jwtMaxLifetimeSeconds: int("Longest JWT lifetime accepted", 3600, 1),
      allowAnonymous: bool("serve without credentials (local demo only)", false),
    }),
    limits: obj({
      maxRequestBytes: int("Largest HTTP body or gRPC message", 1_048_576, 1),
      maxEntities: int("Entity ids per request", 1000, 1),
      maxFeatures: int("Feature references per request", 500, 1),
      maxContextDepth: int("Nesting of lists/objects in the request context", 16, 1),
      ratePerSecond: int("Requests per second per key", 1000, 1),
      burst: int("Requests a key may make at once", 2000, 1),
      authFailuresPerSecond: {
        type: "number",
        exclusiveMinimum: 0,
        default: 1,
        description: "Failed authentications per second an address regains",
      },
      authFailureBurst: int("Failed authentications an address may make at once", 20, 1),
    }),
    memory: obj({
      planCacheBytes: int("Resolved feature lists kept", 4 * 1024 * 1024, 0),
      lastKnownBytes: int("Last known tiles for the stale fallback", 64 * 1024 * 1024, 0),
      rateLimitBytes: int("Rate-limit buckets", 16 * 1024 * 1024, 1024),
    }),
    reliability: obj({
      storeTimeoutMs: int("Bound on one store read", 250, 1),
      breakerFailures: int("Consecutive failures that open the circuit", 5, 1),
      breakerCooldownMs: int("How long the circuit stays open", 2000, 1),
      fallback: { type: "string", enum: ["error", "stale"], default: "error" },
      startRetryMaxMs: int("Longest wait between start-up store retries", 5000, 1),
      maxEventLoopDelayMs: int("Shed load above this event-loop delay (0: off)", 200),
      maxHeapUsedBytes: int("Shed load above this heap size (0: off)", 0),
      maxGrpcInFlight: int("gRPC calls in progress before new ones are shed", 512, 1),
      retryAfterSeconds: int("Retry-After on 503", 1, 1),
      drainTimeoutMs: int("Graceful shutdown bound", 10_000, 0),
    }),
    featureLog: obj({
      sampleRate: num("Share of served vectors logged", 0, 0, { maximum: 1 }),
      topic: str("Served-features topic", { default: tesseraTopics.servedFeatures }),
      maxQueue: int("Pending records before samples are dropped", 10_000, 1),
      flushIntervalMs: int("How often queued records are sent", 200, 1),
    }),
    gate: obj({
      follow: { type: "boolean", default: false },
      topic: str("Compacted quality-gate topic", { default: tesseraStateTopics.gate, minLength: 1 }),
    }),
    tracing: tracingConfigSchema,
  },
};

export function loadFeatureServerConfig(
  options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {},
): FeatureServerConfig {
  return loadConfig<FeatureServerConfig>({
    schema: configSchema,
    envPrefix: "TESSERA_FEATURE_SERVER",
    ...options,
  });
}

/** A full config from a partial one (defaults filled, validated): for in-process use and tests. */
export function featureServerConfig(partial: Record<string, unknown>): FeatureServerConfig {
  return loadFeatureServerConfig({ env: {}, overrides: partial });
}
