/**
 * What the server refuses and how it fails, over real Redis: a bad-request corpus (every answer 4xx
 * naming the field, never 5xx), a property test over arbitrary JSON bodies, 401/403/429, and the
 * store going silent or down behind a proxy (503 within the timeout, the breaker, the stale fallback,
 * recovery).
 */
import { RedisOnlineStore } from "@tessera/stores";
import fc from "fast-check";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { services, uniqueName } from "../../../test/support/index.js";
import {
  type FeatureResponse,
  type FeatureServerHandle,
  featureServerConfig,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, definitions, events, KEYS, writeTiles } from "./fixtures.js";
import { StoreProxy } from "./proxy.js";

const silent = pino({ level: "silent" });
const defs = definitions();
const now = Date.now();
const rows = events(now, 400, 10);
const redisUrl = new URL(services().REDIS_URL);
const prefix = `${uniqueName("fs-guards")}:`;
const TIMEOUT_MS = 300;

let proxy: StoreProxy;
let server: FeatureServerHandle;
let staleServer: FeatureServerHandle;
const stores: RedisOnlineStore[] = [];

const send = (base: string, body: string | unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}/v1/features`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": KEYS.all, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

beforeAll(async () => {
  const direct = new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix: prefix });
  await writeTiles(direct, defs, rows, now);
  await direct.close();
  proxy = new StoreProxy(redisUrl.hostname, Number(redisUrl.port));
  const port = await proxy.start();
  const start = async (fallback: "error" | "stale") => {
    const store = new RedisOnlineStore({
      url: `redis://127.0.0.1:${port}`,
      keyPrefix: prefix,
      timeoutMs: TIMEOUT_MS,
    });
    stores.push(store);
    return startFeatureServer(
      featureServerConfig({
        http: { port: 0 },
        grpc: { enabled: false },
        limits: { maxEntities: 1000, maxRequestBytes: 65_536 },
        reliability: {
          storeTimeoutMs: TIMEOUT_MS,
          breakerFailures: 3,
          breakerCooldownMs: 1000,
          fallback,
          maxEventLoopDelayMs: 0,
        },
      }),
      { store, definitions: defs, apiKeys: apiKeys(), logger: silent },
    );
  };
  server = await start("error");
  staleServer = await start("stale");
});
afterAll(async () => {
  await server?.stop();
  await staleServer?.stop();
  for (const store of stores) await store.close();
  await proxy?.stop();
});

const ok = { features: ["card:n_1h"], entities: { card_id: ["card-1"] } };
const ids = (n: number) => Array.from({ length: n }, (_, i) => `card-${i}`);

// [what, body (object, or raw text), field the answer must name, status (400 unless given)]
const corpus: Array<[string, unknown, string, number?]> = [
  ["unknown view", { ...ok, features: ["nope:n_1h"] }, "features[0]"],
  ["unknown feature", { ...ok, features: ["card:n_1h", "card:nope"] }, "features[1]"],
  ["reference without a view", { ...ok, features: ["n_1h"] }, "features[0]"],
  ["reference with an empty feature", { ...ok, features: ["card:"] }, "features[0]"],
  ["features not a list", { ...ok, features: "card:*" }, "features"],
  ["features empty", { ...ok, features: [] }, "features"],
  ["feature reference a number", { ...ok, features: [7] }, "features[0]"],
  ["features missing", { entities: ok.entities }, "features"],
  ["entities missing", { features: ok.features }, "entities"],
  ["entities a list", { ...ok, entities: ["card-1"] }, "entities"],
  ["entities empty", { ...ok, entities: {} }, "entities"],
  ["ids not a list", { ...ok, entities: { card_id: "card-1" } }, "entities.card_id"],
  ["ids empty", { ...ok, entities: { card_id: [] } }, "entities.card_id"],
  ["id a number", { ...ok, entities: { card_id: ["card-1", 2] } }, "entities.card_id[1]"],
  ["id null", { ...ok, entities: { card_id: [null] } }, "entities.card_id[0]"],
  ["id empty", { ...ok, entities: { card_id: [""] } }, "entities.card_id[0]"],
  ["id too long", { ...ok, entities: { card_id: ["x".repeat(300)] } }, "entities.card_id[0]"],
  ["10k entities", { ...ok, entities: { card_id: ids(10_000) } }, "body", 413],
  ["1,001 entities", { ...ok, entities: { card_id: ids(1001) } }, "entities.card_id"],
  [
    "1,200 entities over two keys",
    { features: ["card:n_1h", "merchant:n_1h"], entities: { card_id: ids(600), merchant_id: ids(600) } },
    "entities",
  ],
  ["entity key no view uses", { ...ok, entities: { card_id: ["a"], user_id: ["u"] } }, "entities.user_id"],
  [
    "entity key a view needs",
    { features: ["card:n_1h", "merchant:n_1h"], entities: { card_id: ["a"] } },
    "entities.merchant_id",
  ],
  ["at as text", { ...ok, at: String(now) }, "at"],
  ["at negative", { ...ok, at: -5 }, "at"],
  ["at fractional", { ...ok, at: now + 0.5 }, "at"],
  ["at before retention", { ...ok, at: now - 10 * 86_400_000 }, "at"],
  ["at after retention", { ...ok, at: now + 10 * 86_400_000 }, "at"],
  ["context not an object", { ...ok, context: 5 }, "context"],
  ["unknown field", { ...ok, filter: "x" }, "filter"],
  ["malformed JSON", '{"features": ["card:n_1h"], "entities": {', "body"],
  ["JSON null", "null", "body"],
  ["JSON array", "[]", "body"],
  ["JSON string", '"card:n_1h"', "body"],
  ["empty body", "", "body"],
  ["huge body", { ...ok, context: { blob: "x".repeat(200_000) } }, "body", 413],
];

describe("bad requests", () => {
  it.each(corpus)("%s → 4xx naming the field", async (_what, body, field, status = 400) => {
    const res = await send(server.url, body);
    const answer = (await res.json()) as { field?: string; message: string };
    expect(res.status, answer.message).toBe(status);
    expect(answer.field).toBe(field);
    expect(answer.message).toContain(field);
  });

  it("wrong content type → 415 naming content-type", async () => {
    const res = await send(server.url, JSON.stringify(ok), { "content-type": "application/xml" });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { field: string }).field).toBe("content-type");
  });

  it("GET: missing features, bad at → 400 naming the field", async () => {
    const get = (query: string) =>
      fetch(`${server.url}/v1/features/card_id/card-1${query}`, { headers: { "x-api-key": KEYS.all } });
    const missing = await get("");
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { field: string }).field).toBe("features");
    const bad = await get("?features=card:n_1h&at=soon");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { field: string }).field).toBe("at");
  });

  it("arbitrary JSON bodies never get a 5xx", async () => {
    const body = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          features: fc.oneof(
            fc.array(fc.constantFrom("card:*", "card:n_1h", "merchant:*", "x:y", ":", "card:")),
            fc.jsonValue(),
          ),
          entities: fc.oneof(
            fc.dictionary(
              fc.constantFrom("card_id", "merchant_id", "other"),
              fc.array(fc.oneof(fc.string(), fc.jsonValue())),
            ),
            fc.jsonValue(),
          ),
          at: fc.oneof(fc.integer(), fc.double(), fc.constant(now), fc.jsonValue()),
          context: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(body, async (value) => {
        const res = await send(server.url, value);
        await res.arrayBuffer();
        return res.status < 500;
      }),
      { numRuns: 150 },
    );
  });
});

describe("access", () => {
  it("no key → 401, a view outside the key's list → 403, over the limit → 429 with Retry-After", async () => {
    expect((await send(server.url, ok, { "x-api-key": "" })).status).toBe(401);
    expect((await send(server.url, ok, { "x-api-key": "wrong" })).status).toBe(401);
    expect((await send(server.url, ok, { authorization: "Bearer abc", "x-api-key": "" })).status).toBe(401);
    const merchant = { features: ["merchant:n_1h"], entities: { merchant_id: ["m-1"] } };
    expect((await send(server.url, merchant, { "x-api-key": KEYS.cardOnly })).status).toBe(403);
    expect((await send(server.url, merchant, { "x-api-key": KEYS.all })).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await send(server.url, ok, { "x-api-key": KEYS.slow })).status);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(4);
    expect(statuses.at(-1)).toBe(429);
  });
});

describe("store failures", () => {
  const timed = async (base: string) => {
    const started = performance.now();
    const res = await send(base, ok);
    return {
      res,
      ms: performance.now() - started,
      body: (await res.json()) as FeatureResponse & { message?: string },
    };
  };

  it("silent store → 503 within the timeout; the breaker then answers at once; recovery after the cooldown", async () => {
    expect((await timed(server.url)).res.status).toBe(200);
    proxy.mode = "silent";
    for (let i = 0; i < 3; i++) {
      const { res, ms } = await timed(server.url);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).not.toBeNull();
      expect(ms).toBeLessThan(TIMEOUT_MS + 700);
    }
    const open = await timed(server.url);
    expect(open.res.status).toBe(503);
    expect(open.body.message).toContain("circuit");
    expect(open.ms).toBeLessThan(100);
    proxy.mode = "pass";
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const back = await waitFor(
      () => timed(server.url),
      (r) => r.res.status === 200,
    );
    expect(back.res.status).toBe(200);
  });

  it("store down (connections cut, refused) → 503 fast, then recovery", async () => {
    proxy.cut();
    const { res, ms } = await timed(server.url);
    expect(res.status).toBe(503);
    expect(ms).toBeLessThan(TIMEOUT_MS + 700);
    proxy.mode = "pass";
    const back = await waitFor(
      () => timed(server.url),
      (r) => r.res.status === 200,
    );
    expect(back.res.status).toBe(200);
  });

  it("fallback 'stale': last known values, marked stale, still finalised at the new asOf", async () => {
    // (The connection may still be coming back from the previous test.)
    const read = async () =>
      (await (
        await send(staleServer.url, { features: ["card:*"], entities: { card_id: ["card-2"] } })
      ).json()) as FeatureResponse;
    const fresh = await waitFor(read, (r) => r.entities["card_id"]!.results[0]!.statuses.includes("present"));
    proxy.mode = "silent";
    const res = await send(staleServer.url, {
      features: ["card:*"],
      entities: { card_id: ["card-2", "card-never-read"] },
      context: { amount: 10 },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as FeatureResponse;
    const [known, unknown] = body.entities["card_id"]!.results;
    expect(known!.statuses.every((s) => s === "stale")).toBe(true);
    expect(known!.values.slice(0, 10)).toEqual(fresh.entities["card_id"]!.results[0]!.values.slice(0, 10));
    expect(unknown!.statuses.every((s) => s === "error")).toBe(true);
    proxy.mode = "pass";
  });
});

async function waitFor<T>(fn: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let value = await fn();
  while (!done(value) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    value = await fn();
  }
  return value;
}
