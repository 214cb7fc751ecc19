import { Counter, Gauge, Histogram, type Registry } from "prom-client";

// Sub-millisecond resolution where the targets are (p99 ≤ 2 ms), coarse beyond.
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** The `route` label values of feature requests (HTTP routes and the gRPC method): what SLOs count. */
export const FEATURE_ROUTES = ["/v1/features", "/v1/features/:entityKey/:entityId", "GetOnlineFeatures"];

/** Seconds, from "just flushed" to "a day behind": SLO thresholds must be one of these. */
export const SERVED_AGE_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 21600, 86400];

export function serverMetrics(registry: Registry) {
  /** Cache name → its current size in bytes (filled in by whoever owns each cache). */
  const cacheSources: Record<string, () => number> = {};
  return {
    cacheSources,
    cacheBytes: new Gauge({
      name: "tessera_feature_server_cache_bytes",
      help: "Estimated bytes held per in-memory cache (plans, last_known, rate_limits); each is bounded by memory.*",
      labelNames: ["cache"] as const,
      registers: [registry],
      collect() {
        for (const [cache, bytes] of Object.entries(cacheSources)) this.set({ cache }, bytes());
      },
    }),
    requestDuration: new Histogram({
      name: "tessera_feature_server_request_duration_seconds",
      help: "Request latency by protocol, route and outcome (HTTP status or gRPC code)",
      labelNames: ["protocol", "route", "code"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    storeDuration: new Histogram({
      name: "tessera_feature_server_store_read_duration_seconds",
      help: "One online-store round trip (one view of one request)",
      labelNames: ["view", "outcome"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    entities: new Counter({
      name: "tessera_feature_server_entities_total",
      help: "Entity ids served",
      labelNames: ["protocol"] as const,
      registers: [registry],
    }),
    shed: new Counter({
      name: "tessera_feature_server_shed_total",
      help: "Requests refused with 503 / UNAVAILABLE because the process is under pressure",
      labelNames: ["protocol"] as const,
      registers: [registry],
    }),
    limited: new Counter({
      name: "tessera_feature_server_rate_limited_total",
      help: "Requests refused by the per-key rate limit",
      labelNames: ["protocol"] as const,
      registers: [registry],
    }),
    denied: new Counter({
      name: "tessera_feature_server_denied_total",
      help: "Requests refused for missing/bad credentials or a view outside the key's list",
      labelNames: ["protocol", "reason"] as const,
      registers: [registry],
    }),
    breakerOpen: new Gauge({
      name: "tessera_feature_server_store_circuit_open",
      help: "1 while the online-store circuit breaker is open",
      registers: [registry],
    }),
    servedAge: new Histogram({
      name: "tessera_feature_server_served_age_seconds",
      help: "Age at asOf of the newest data of a view (the newest event time seen in its states), one per view per request: event → servable freshness",
      labelNames: ["view"] as const,
      buckets: SERVED_AGE_BUCKETS,
      registers: [registry],
    }),
    staleServed: new Counter({
      name: "tessera_feature_server_stale_views_total",
      help: "Views served past their freshness SLA: outcome served (status stale) or refused (503, per view policy)",
      labelNames: ["view", "outcome"] as const,
      registers: [registry],
    }),
    viewDegraded: new Gauge({
      name: "tessera_feature_server_view_degraded",
      help: "1 while the last request of a view found it past its freshness SLA or served it from last known values",
      labelNames: ["view"] as const,
      registers: [registry],
    }),
    gateServed: new Counter({
      name: "tessera_feature_server_gated_views_total",
      help: "Views served under a quality gate that is not ok: quarantined, refused (503) or overridden (served normally)",
      labelNames: ["view", "outcome"] as const,
      registers: [registry],
    }),
    featureLog: new Counter({
      name: "tessera_feature_server_feature_log_records_total",
      help: "Sampled served vectors: sent, dropped (queue full) or failed (send error)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
  };
}

export type ServerMetrics = ReturnType<typeof serverMetrics>;
