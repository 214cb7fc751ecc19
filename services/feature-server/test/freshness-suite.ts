/**
 * The freshness SLA at inference, on any online store: a view whose newest data is older than its
 * SLA is served `stale` (policy serve) or refused with 503 / UNAVAILABLE and a machine-readable
 * reason (policy refuse), over HTTP and gRPC; a view without an SLA is untouched; an idle entity is
 * fresh once the view's data is seen moving. Used by freshness.test.ts (memory) and
 * freshness.int.test.ts (real Redis).
 */
import * as grpc from "@grpc/grpc-js";
import type { OnlineStore } from "@tessera/stores";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FeatureResponse,
  type FeatureServerHandle,
  featureServerConfig,
  loadServiceDefinition,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, type Event, KEYS, writeTiles } from "./fixtures.js";

const defs = parseDefinitionsYaml(`
sources:
  - { name: tx, topic: fresh.tx, entity: card_id, timestamp: ts }
views:
  - name: served
    source: tx
    freshness: { maxAge: 5m }
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
  - name: refused
    source: tx
    freshness: { maxAge: 5m, onStale: refuse }
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
  - name: free
    source: tx
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
`);

const MIN = 60_000;
const event = (card: string, ts: number): Event => ({
  card_id: card,
  merchant_id: "m",
  ts,
  amount: 1,
  country: "FR",
});

// biome-ignore lint/suspicious/noExplicitAny: a generic client's responses are untyped JSON
type Json = any;

export function freshnessSuite(name: string, makeStore: () => OnlineStore): void {
  describe(`freshness SLA at inference (${name})`, () => {
    const now = Date.now();
    let store: OnlineStore;
    let server: FeatureServerHandle;
    const post = async (features: string[], ids: string[]) => {
      const res = await fetch(`${server.url}/v1/features`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": KEYS.all },
        body: JSON.stringify({ features, entities: { card_id: ids } }),
      });
      return {
        status: res.status,
        retryAfter: res.headers.get("retry-after"),
        body: (await res.json()) as Json,
      };
    };
    const Client = grpc.makeGenericClientConstructor(loadServiceDefinition(), "FeatureService");
    const call = (features: string[], ids: string[]) =>
      new Promise<{ error: grpc.ServiceError | null; response: Json }>((resolve) => {
        const client = new Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
        const metadata = new grpc.Metadata();
        metadata.set("x-api-key", KEYS.all);
        (client as Json).GetOnlineFeatures(
          { features, entities: { card_id: { ids } } },
          metadata,
          (error: grpc.ServiceError | null, response: unknown) => {
            client.close();
            resolve({ error, response });
          },
        );
      });

    beforeAll(async () => {
      store = makeStore();
      // Everything stored is 10–12 minutes old: the pipeline stopped 10 minutes ago.
      await writeTiles(store, defs, [event("card-1", now - 12 * MIN), event("card-2", now - 10 * MIN)], now);
      server = await startFeatureServer(
        featureServerConfig({
          http: { port: 0 },
          grpc: { port: 0 },
          reliability: { maxEventLoopDelayMs: 0, storeTimeoutMs: 5000, retryAfterSeconds: 7 },
        }),
        { store, definitions: defs, apiKeys: apiKeys(), logger: pino({ level: "silent" }) },
      );
    });
    afterAll(async () => {
      await server?.stop();
      await store?.close();
    });

    it("serves a view past its SLA as stale, says why, and leaves a view without an SLA alone (HTTP)", async () => {
      const { status, body } = await post(["served:n_1h", "free:n_1h"], ["card-1", "card-2", "card-3"]);
      expect(status).toBe(200);
      const rows = body.entities.card_id.results;
      expect(rows.map((r: Json) => r.values)).toEqual([
        [1, 1],
        [1, 1],
        [0, 0],
      ]);
      expect(rows.map((r: Json) => r.statuses)).toEqual([
        ["stale", "present"],
        ["stale", "present"],
        ["stale", "missing"],
      ]);
      const served = body.views.served;
      expect(served.degraded).toBe(true);
      expect(served.reasons).toHaveLength(1);
      expect(served.reasons[0]).toMatchObject({ code: "freshness_sla", maxAgeMs: 5 * MIN });
      expect(served.reasons[0].ageMs).toBeGreaterThanOrEqual(10 * MIN);
      expect(served.reasons[0].message).toMatch(/over its freshness SLA of 300 s \(from the view\)/);
      expect(body.views.free).toMatchObject({ degraded: false, reasons: [] });
    });

    it("refuses a stale view whose policy is refuse: 503, Retry-After and a machine-readable reason", async () => {
      const refused = await post(["served:n_1h", "refused:n_1h"], ["card-1"]);
      expect(refused.status).toBe(503);
      expect(refused.retryAfter).toBe("7");
      expect(refused.body).toMatchObject({ error: "unavailable", reason: "freshness_sla", view: "refused" });
      expect(refused.body.message).toMatch(/view refused is \d+ s old/);
    });

    it("says the same over gRPC: STALE values, view_status, and UNAVAILABLE with reason trailers", async () => {
      const { error, response } = await call(["served:n_1h", "free:n_1h"], ["card-2"]);
      expect(error).toBeNull();
      expect(response.results[0].features["served:n_1h"]).toMatchObject({ status: "STALE" });
      expect(response.results[0].features["free:n_1h"]).toMatchObject({ status: "PRESENT" });
      expect(response.view_status.served.degraded).toBe(true);
      expect(response.view_status.served.reasons[0]).toMatchObject({
        code: "freshness_sla",
        max_age_ms: 5 * MIN,
      });
      expect(response.view_status.free).toBeUndefined();
      const refused = await call(["refused:n_1h"], ["card-2"]);
      expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(refused.error?.metadata.get("reason")).toEqual(["freshness_sla"]);
      expect(refused.error?.metadata.get("view")).toEqual(["refused"]);
      expect(refused.error?.metadata.get("retry-after")).toEqual(["7"]);
    });

    it("counts served staleness per view", async () => {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(
        /tessera_feature_server_stale_views_total\{view="served",outcome="served"\} [1-9]/,
      );
      expect(metrics).toMatch(
        /tessera_feature_server_stale_views_total\{view="refused",outcome="refused"\} [1-9]/,
      );
      expect(metrics).toMatch(
        /tessera_feature_server_served_age_seconds_bucket\{le="300",view="served"\} 0\n/,
      );
      expect(metrics).toMatch(/tessera_feature_server_view_degraded\{view="served"\} 1/);
      expect(metrics).toMatch(/tessera_feature_server_served_age_seconds_count\{view="free"\} [1-9]/);
      expect(metrics).not.toMatch(/tessera_feature_server_view_degraded\{view="free"\}/);
    });

    it("is fresh again once new data arrives, and an idle entity is fresh while the view's data moves", async () => {
      await writeTiles(store, defs, [event("card-9", now - MIN)], now);
      const moving = (await post(["served:n_1h", "refused:n_1h"], ["card-9", "card-1"])) as {
        status: number;
        body: FeatureResponse;
      };
      expect(moving.status).toBe(200);
      expect(moving.body.views["served"]).toMatchObject({ degraded: false, reasons: [] });
      expect(moving.body.entities["card_id"]!.results.map((r) => r.statuses)).toEqual([
        ["present", "present"],
        ["present", "present"],
      ]);
      // card-1's own newest event is 12 minutes old, but the view is known to be processed to a minute ago.
      const idle = await post(["refused:n_1h"], ["card-1"]);
      expect(idle.status).toBe(200);
      expect(idle.body.entities.card_id.results[0].statuses).toEqual(["present"]);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/tessera_feature_server_view_degraded\{view="served"\} 0/);
    });
  });
}
