/**
 * The feature server in-process over the memory store: values against the batch evaluator, statuses,
 * `at`, on-demand features, the security answers (401/403/429), audit lines and gRPC parity.
 */
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { MemoryOnlineStore } from "@tessera/stores";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FeatureResponse,
  type FeatureServerHandle,
  featureServerConfig,
  loadServiceDefinition,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, definitions, events, KEYS, oracle, writeTiles } from "./fixtures.js";

const defs = definitions();
const now = Date.now();
const rows = events(now, 2000, 40);
const auditLines: Record<string, unknown>[] = [];
const auditLog = pino(
  { level: "info" },
  new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) auditLines.push(JSON.parse(line));
      done();
    },
  }),
);

let server: FeatureServerHandle;
const post = (body: unknown, key: string | null = KEYS.all) =>
  fetch(`${server.url}/v1/features`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  const store = new MemoryOnlineStore();
  await writeTiles(store, defs, rows, now);
  server = await startFeatureServer(
    featureServerConfig({ http: { port: 0 }, grpc: { port: 0 }, reliability: { maxEventLoopDelayMs: 0 } }),
    { store, definitions: defs, apiKeys: apiKeys(), auditLog, logger: pino({ level: "silent" }) },
  );
});
afterAll(() => server?.stop());

describe("POST /v1/features", () => {
  it("answers each feature the same whether asked by `view:*`, by name in any order, or a few", async () => {
    const ids = ["card-1", "card-17", "card-unknown"];
    const at = now - 1000;
    const ask = async (features: string[]) => {
      const res = await post({ features, entities: { card_id: ids }, at, context: { amount: 100 } });
      expect(res.status).toBe(200);
      const group = ((await res.json()) as FeatureResponse).entities["card_id"]!;
      return group.results.map((row) =>
        Object.fromEntries(group.features.map((name, c) => [name, [row.values[c], row.statuses[c]]])),
      );
    };
    const whole = await ask(["card:*"]);
    const names = Object.keys(whole[0]!);
    expect(names.length).toBeGreaterThan(3);
    expect(await ask([...names].reverse())).toEqual(whole);
    const few = [names[2]!, names[0]!];
    expect(await ask(few)).toEqual(
      whole.map((row) => Object.fromEntries(few.map((name) => [name, row[name]]))),
    );
  });

  it("serves the batch evaluator's values at asOf, with statuses and freshness", async () => {
    const ids = ["card-1", "card-2", "card-17", "card-unknown"];
    const res = await post({ features: ["card:*"], entities: { card_id: ids }, context: { amount: 100 } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const body = (await res.json()) as FeatureResponse;
    expect(body.asOf).toBeGreaterThanOrEqual(now);
    const group = body.entities["card_id"]!;
    expect(group.features).toContain("card:amount_vs_mean");
    expect(group.results.map((r) => r.id)).toEqual(ids);
    for (const row of group.results) {
      const expected = oracle(defs, "card", rows, row.id, body.asOf);
      for (const [c, name] of group.features.entries()) {
        if (name === "card:amount_vs_mean") continue;
        const feature = name.slice("card:".length);
        if (typeof expected[feature] === "number")
          expect(row.values[c]).toBeCloseTo(expected[feature] as number, 9);
        else expect(row.values[c]).toEqual(expected[feature]);
      }
      const mean = expected["amount_mean_6h"] as number | null;
      const odf = row.values[group.features.indexOf("card:amount_vs_mean")];
      expect(odf).toBeCloseTo(mean !== null && mean > 0 ? 100 / mean : 0, 9);
    }
    const unknown = group.results[3]!;
    expect(unknown.statuses.slice(0, 10).every((s) => s === "missing")).toBe(true);
    expect(unknown.values[0]).toBe(0); // count of an empty window
    expect(group.results[0]!.statuses).toContain("present");
    const newest = Math.max(...rows.filter((r) => ids.includes(r.card_id)).map((r) => r.ts));
    expect(body.views["card"]).toEqual({
      version: defs.views[0]!.version,
      newestEventTime: newest,
      degraded: false,
      reasons: [],
    });
  });

  it("a 1-hour count falls as `at` advances with no new events, to 0 once the window is empty", async () => {
    const counts: number[] = [];
    for (const offset of [0, 10, 20, 30, 40, 50, 60, 70]) {
      const at = now + offset * 60_000;
      const body = (await (
        await post({ features: ["card:n_1h"], entities: { card_id: ["card-3"] }, at })
      ).json()) as FeatureResponse;
      expect(body.asOf).toBe(at);
      const value = body.entities["card_id"]!.results[0]!.values[0] as number;
      expect(value).toBe(oracle(defs, "card", rows, "card-3", at)["n_1h"]);
      counts.push(value);
    }
    expect(counts[0]).toBeGreaterThan(0);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeLessThanOrEqual(counts[i - 1]!);
    expect(counts.at(-1)).toBe(0);
  });

  it("serves two entity keys in one request", async () => {
    const res = await post({
      features: ["card:n_1h", "merchant:*"],
      entities: { card_id: ["card-1"], merchant_id: ["m-0", "m-4"] },
    });
    const body = (await res.json()) as FeatureResponse;
    expect(body.entities["merchant_id"]!.features).toEqual(["merchant:n_1h", "merchant:amount_sum_1d"]);
    expect(body.entities["merchant_id"]!.results[1]!.values[1]).toBeCloseTo(
      oracle(defs, "merchant", rows, "m-4", body.asOf)["amount_sum_1d"] as number,
      6,
    );
  });

  it("GET serves one entity the same way", async () => {
    const at = now + 60_000;
    const res = await fetch(
      `${server.url}/v1/features/card_id/card-5?features=card:n_1h,card:last_country&at=${at}`,
      {
        headers: { "x-api-key": KEYS.all },
      },
    );
    const body = (await res.json()) as FeatureResponse;
    const expected = oracle(defs, "card", rows, "card-5", at);
    expect(body.entities["card_id"]!.results[0]!.values).toEqual([
      expected["n_1h"],
      expected["last_country"],
    ]);
  });

  it("401 without a key, 403 for a view outside the key's list, 429 over the rate limit", async () => {
    const request = { features: ["merchant:n_1h"], entities: { merchant_id: ["m-1"] } };
    const none = await post(request, null);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { field: string }).field).toBe("x-api-key");
    expect((await post(request, "not-a-key")).status).toBe(401);
    const forbidden = await post(request, KEYS.cardOnly);
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { field: string }).field).toBe("features[0]");
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await post(request, KEYS.slow)).status);
    expect(answers.slice(0, 3)).toEqual([200, 200, 200]);
    expect(answers.slice(3)).toEqual([429, 429]);
    const limited = await post(request, KEYS.slow);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("writes one audit line per request: key id, views, entity count, never values or secrets", async () => {
    auditLines.length = 0;
    await post({
      features: ["card:n_1h"],
      entities: { card_id: ["card-1", "card-2"] },
      context: { amount: 123456.5 },
    });
    const line = auditLines.find((l) => l["audit"] === true)!;
    expect(line).toMatchObject({ key: "all", views: ["card"], entities: 2, status: 200, protocol: "http" });
    const text = JSON.stringify(auditLines);
    expect(text).not.toContain(KEYS.all);
    expect(text).not.toContain("123456.5");
  });
});

describe("gRPC GetOnlineFeatures", () => {
  const Client = grpc.makeGenericClientConstructor(loadServiceDefinition(), "FeatureService");
  // biome-ignore lint/suspicious/noExplicitAny: a generic client's responses are untyped JSON
  type Json = any;
  const call = (request: unknown, key: string | null = KEYS.all) =>
    new Promise<{ error: grpc.ServiceError | null; response: Json }>((resolve) => {
      const client = new Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
      const metadata = new grpc.Metadata();
      if (key) metadata.set("x-api-key", key);
      (client as Json).GetOnlineFeatures(
        request,
        metadata,
        (error: grpc.ServiceError | null, response: unknown) => {
          client.close();
          resolve({ error, response });
        },
      );
    });

  it("returns the same vector as HTTP", async () => {
    const at = now + 5 * 60_000;
    const http = (await (
      await post({
        features: ["card:*"],
        entities: { card_id: ["card-8", "nobody"] },
        at,
        context: { amount: 42 },
      })
    ).json()) as FeatureResponse;
    const { error, response } = await call({
      features: ["card:*"],
      entities: { card_id: { ids: ["card-8", "nobody"] } },
      at_ms: at,
      context: { amount: { number: 42 } },
    });
    expect(error).toBeNull();
    expect(Number(response.as_of_ms)).toBe(at);
    const group = http.entities["card_id"]!;
    expect(response.feature_names).toEqual(group.features);
    group.results.forEach((row, i) => {
      const result = response.results[i];
      expect(result.entity_id).toBe(row.id);
      group.features.forEach((name, c) => {
        const v = result.features[name].value ?? {};
        const value =
          v.number ??
          v.text ??
          v.flag ??
          (v.list ? v.list.items.map((x: Json) => x.number ?? x.text ?? null) : null);
        expect(value).toEqual(row.values[c]);
        expect(result.features[name].status).toBe(row.statuses[c]!.toUpperCase());
      });
    });
  });

  it("maps errors to gRPC codes with the field named", async () => {
    const unknown = await call({ features: ["nope:x"], entities: { card_id: { ids: ["a"] } } });
    expect(unknown.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(unknown.error?.details).toContain("features[0]");
    expect(
      (await call({ features: ["card:n_1h"], entities: { card_id: { ids: ["a"] } } }, null)).error?.code,
    ).toBe(grpc.status.UNAUTHENTICATED);
    expect(
      (await call({ features: ["merchant:n_1h"], entities: { merchant_id: { ids: ["a"] } } }, KEYS.cardOnly))
        .error?.code,
    ).toBe(grpc.status.PERMISSION_DENIED);
  });
});
