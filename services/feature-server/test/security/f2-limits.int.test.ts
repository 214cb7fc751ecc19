/**
 * Finding 2: memory exhaustion over gRPC. gRPC ignored limits.maxFeatures, and the plan cache kept
 * up to 1,024 entries keyed by the whole feature list: thirty lists of 100k references took the
 * heap from 65 to 281 MiB for good. Now every limit holds on both protocols (one check), and the
 * plan cache is bounded in bytes (memory.planCacheBytes, shown by tessera_feature_server_cache_bytes).
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOthersServed, grpcCall, http, KEYS, post, type Secured, startSecured } from "./harness.js";

let secured: Secured;
beforeAll(async () => {
  secured = await startSecured();
});
afterAll(async () => {
  await secured?.stop();
});

const entities = { card_id: { ids: ["card-1"] } };
const refs = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => (i % 2 ? "card:n_1h" : "card:amount_max_1d"));

async function cacheBytes(): Promise<number> {
  const text = (await http(`${secured.url}/metrics`)).text;
  const line = text
    .split("\n")
    .find((l) => l.startsWith('tessera_feature_server_cache_bytes{cache="plans"}'));
  if (!line) throw new Error('no tessera_feature_server_cache_bytes{cache="plans"} series');
  return Number(line.split(" ").at(-1));
}

describe("finding 2: every limit on every protocol, caches bounded in bytes", () => {
  it("gRPC: more than limits.maxFeatures references → INVALID_ARGUMENT naming features", async () => {
    for (const n of [501, 60_000]) {
      const answer = await grpcCall(secured.grpcTarget, { features: refs(n), entities });
      expect(answer.code, answer.details).toBe(grpc.status.INVALID_ARGUMENT);
      expect(answer.field).toBe("features");
    }
    const ok = await grpcCall(secured.grpcTarget, { features: refs(500), entities });
    expect(ok.code, ok.details).toBe(grpc.status.OK);
    await expectOthersServed(secured);
  });

  it("gRPC: a reference longer than 512 characters, an id longer than 256 → INVALID_ARGUMENT naming it", async () => {
    const long = await grpcCall(secured.grpcTarget, { features: [`card:${"x".repeat(600)}`], entities });
    expect(long.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(long.field).toBe("features[0]");
    const id = await grpcCall(secured.grpcTarget, {
      features: ["card:n_1h"],
      entities: { card_id: { ids: ["card-1", "i".repeat(257)] } },
    });
    expect(id.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(id.field).toBe("entities.card_id[1]");
  });

  it("a message larger than limits.maxRequestBytes: 413 over HTTP, RESOURCE_EXHAUSTED over gRPC", async () => {
    const big = "x".repeat(1_100_000);
    const answer = await grpcCall(secured.grpcTarget, {
      features: ["card:n_1h"],
      entities,
      context: { blob: { text: big } },
    });
    expect(answer.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const res = await post(secured.url, {
      features: ["card:n_1h"],
      entities: { card_id: ["card-1"] },
      context: { big },
    });
    expect(res.status).toBe(413);
    await expectOthersServed(secured);
  });

  it("GET: more than limits.maxFeatures comma-separated references → 400 naming features", async () => {
    const res = await http(`${secured.url}/v1/features/card_id/card-1?features=${refs(501).join(",")}`, {
      headers: { "x-api-key": KEYS.all },
    });
    expect(res.status, res.text).toBe(400);
    expect(res.body.field).toBe("features");
  });

  it("context nesting: the same bound over HTTP and gRPC", async () => {
    let json: unknown = 1;
    let proto: unknown = { number: 1 };
    for (let d = 0; d < 20; d++) {
      json = [json];
      proto = { list: { items: [proto] } };
    }
    const res = await post(secured.url, {
      features: ["card:n_1h"],
      entities: { card_id: ["card-1"] },
      context: { x: json },
    });
    expect(res.status).toBe(400);
    expect(res.body.field).toMatch(/^context\.x(\[0\])+$/);
    const answer = await grpcCall(secured.grpcTarget, {
      features: ["card:n_1h"],
      entities,
      context: { x: proto },
    });
    expect(answer.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(answer.field).toBe(res.body.field);
  });

  it("distinct feature lists cannot grow the plan cache past its byte budget", async () => {
    // 600 distinct lists of 500 references (≈ 12 KB of key each: ≈ 7 MB if nothing were evicted).
    const budget = 4 * 1024 * 1024;
    for (let i = 0; i < 600; i++) {
      const list = refs(500);
      list[i % 500] = `card:amount_sum_1h`;
      list[(i * 7 + 3) % 500] = `merchant:n_1h`;
      const answer = await grpcCall(secured.grpcTarget, {
        features: list,
        entities: { ...entities, merchant_id: { ids: ["m-1"] } },
      });
      expect(answer.code, answer.details).toBe(grpc.status.OK);
    }
    const bytes = await cacheBytes();
    expect(bytes).toBeGreaterThan(budget / 2);
    expect(bytes).toBeLessThanOrEqual(budget);
    await expectOthersServed(secured);
  });
});
