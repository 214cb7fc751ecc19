/**
 * The feature server over real Redis and Cassandra: tiles written through the online store from
 * events computed by libs/transforms, then served values compared with the batch evaluator at asOf,
 * and a 1-hour count that falls as `at` advances with no new events.
 */

import { CassandraOnlineStore, type OnlineStore, RedisOnlineStore } from "@tessera/stores";
import cassandra from "cassandra-driver";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cassandraContactPoint, services, uniqueName } from "../../../test/support/index.js";
import {
  type FeatureResponse,
  type FeatureServerHandle,
  featureServerConfig,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, definitions, events, KEYS, oracle, writeTiles } from "./fixtures.js";

const silent = pino({ level: "silent" });

const keyspace = uniqueName("fs").replaceAll("-", "_");
// Redis keys expire with the view's retention; the Cassandra keyspace is dropped after the file.
const backends: Record<string, () => OnlineStore> = {
  redis: () =>
    new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix: `${uniqueName("fs")}:`, timeoutMs: 2000 }),
  cassandra: () => new CassandraOnlineStore({ ...cassandraContactPoint(), keyspace, timeoutMs: 5000 }),
};

afterAll(async () => {
  const client = new cassandra.Client(cassandraContactPoint());
  await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
  await client.shutdown();
});

describe.each(Object.keys(backends))("served from %s", (backend) => {
  const defs = definitions();
  const now = Date.now();
  const rows = events(now, 800, 16);
  let store: OnlineStore;
  let server: FeatureServerHandle;
  const post = async (body: unknown) => {
    const res = await fetch(`${server.url}/v1/features`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEYS.all },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as FeatureResponse;
  };

  beforeAll(async () => {
    store = backends[backend]!();
    await writeTiles(store, defs, rows, now);
    server = await startFeatureServer(
      featureServerConfig({
        http: { port: 0 },
        grpc: { enabled: false },
        reliability: { maxEventLoopDelayMs: 0, storeTimeoutMs: 5000 },
      }),
      { store, definitions: defs, apiKeys: apiKeys(), logger: silent },
    );
  });
  afterAll(async () => {
    await server?.stop();
    await store?.close();
  });

  const compare = (body: FeatureResponse, view: string, key: string) => {
    const group = body.entities[key]!;
    for (const row of group.results) {
      const expected = oracle(defs, view, rows, row.id, body.asOf);
      group.features.forEach((name, c) => {
        const feature = name.slice(view.length + 1);
        if (!(feature in expected)) return; // on-demand
        const want = expected[feature];
        if (typeof want === "number") expect(row.values[c], `${row.id} ${name}`).toBeCloseTo(want, 9);
        else expect(row.values[c], `${row.id} ${name}`).toEqual(want);
      });
    }
  };

  it("serves the batch evaluator's values at request time and at later `at`", async () => {
    const cards = Array.from({ length: 16 }, (_, i) => `card-${i}`);
    const body = await post({
      features: ["card:*", "merchant:*"],
      entities: { card_id: cards, merchant_id: ["m-0", "m-1", "m-2", "m-3", "m-4"] },
    });
    expect(body.asOf).toBeGreaterThanOrEqual(now);
    compare(body, "card", "card_id");
    compare(body, "merchant", "merchant_id");
    expect(body.entities["card_id"]!.results.every((r) => r.statuses.includes("present"))).toBe(true);
    for (const minutes of [7, 33, 95, 600]) {
      const later = await post({
        features: ["card:*"],
        entities: { card_id: cards },
        at: now + minutes * 60_000,
      });
      compare(later, "card", "card_id");
    }
  });

  it("a 1-hour count falls as `at` advances with no new events", async () => {
    // The card with the most events in the last hour.
    const recent = rows.filter((r) => r.ts >= now - 3_600_000);
    const counts = new Map<string, number>();
    for (const r of recent) counts.set(r.card_id, (counts.get(r.card_id) ?? 0) + 1);
    const card = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    const series: number[] = [];
    for (let minutes = 0; minutes <= 70; minutes += 5) {
      const at = now + minutes * 60_000;
      const body = await post({ features: ["card:n_1h"], entities: { card_id: [card] }, at });
      const value = body.entities["card_id"]!.results[0]!.values[0] as number;
      expect(value).toBe(oracle(defs, "card", rows, card, at)["n_1h"]);
      series.push(value);
    }
    expect(series[0]).toBeGreaterThan(1);
    for (let i = 1; i < series.length; i++) expect(series[i]).toBeLessThanOrEqual(series[i - 1]!);
    expect(series.at(-1)).toBe(0);
    expect(new Set(series).size).toBeGreaterThan(2); // it fell in steps, not all at once
  });
});
