/**
 * Finding 9: requests without valid credentials were never throttled (200 wrong keys → 200 × 401
 * at full speed). Now failed authentication is limited per client address across both protocols
 * (limits.authFailureBurst, default 20, refilled at limits.authFailuresPerSecond, default 1/s):
 * past the budget the address gets 429 with Retry-After before its credentials are looked at.
 * Another address is not affected. (The server sees 127.0.0.2 for connections made from it.)
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcCall, http, KEYS, post, relayFrom, type Secured, startSecured } from "./harness.js";

let secured: Secured;
beforeAll(async () => {
  // The documented defaults, not the harness's raised budget.
  secured = await startSecured({ defaultAuthLimits: true });
});
afterAll(async () => {
  await secured?.stop();
});

const request = { features: ["card:amount_max_1d"], entities: { card_id: ["card-1"] } };
const grpcRequest = { features: ["card:amount_max_1d"], entities: { card_id: { ids: ["card-1"] } } };
const OTHER_HOST = "127.0.0.2";

describe("finding 9: failed authentication is rate limited per client address", () => {
  it("200 wrong keys: 20 × 401, then 429 with Retry-After; another address is served", async () => {
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 200; i++) {
      const res = await post(secured.url, request, { "x-api-key": `wrong-${i}` });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers["retry-after"] as string;
    }
    const refused = statuses.filter((s) => s === 401).length;
    // 20 at once, plus the one-a-second refill over however long the 200 requests took.
    expect(refused).toBeGreaterThanOrEqual(20);
    expect(refused).toBeLessThan(40);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses.filter((s) => s === 429).length).toBe(200 - refused);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);

    // The same address over gRPC shares the budget: refused before its key is looked at.
    const locked = await grpcCall(secured.grpcTarget, grpcRequest, { "x-api-key": "wrong-grpc" });
    expect(locked.code).toBe(grpc.status.RESOURCE_EXHAUSTED);

    // /healthz needs no credentials and still answers; another client address is unaffected.
    expect((await http(`${secured.url}/healthz`)).status).toBe(200);
    const other = await post(secured.url, request, { "x-api-key": KEYS.other }, OTHER_HOST);
    expect(other.status, other.text).toBe(200);
    const wrongThere = await post(secured.url, request, { "x-api-key": "wrong" }, OTHER_HOST);
    expect(wrongThere.status).toBe(401);
    const relay = await relayFrom(OTHER_HOST, secured.grpcTarget);
    try {
      const answer = await grpcCall(relay.target, grpcRequest, { "x-api-key": KEYS.other });
      expect(answer.code, answer.details).toBe(grpc.status.OK);
    } finally {
      await relay.close();
    }
  });

  it("bad bearer tokens count the same way, on gRPC too", async () => {
    const relay = await relayFrom("127.0.0.3", secured.grpcTarget);
    try {
      const codes: grpc.status[] = [];
      for (let i = 0; i < 30; i++) {
        const answer = await grpcCall(relay.target, grpcRequest, { authorization: `Bearer not.a.token${i}` });
        codes.push(answer.code);
      }
      expect(codes.slice(0, 20).every((c) => c === grpc.status.UNAUTHENTICATED)).toBe(true);
      expect(codes.at(-1)).toBe(grpc.status.RESOURCE_EXHAUSTED);
      const http3 = await post(secured.url, request, { "x-api-key": KEYS.other }, "127.0.0.3");
      expect(http3.status).toBe(429);
    } finally {
      await relay.close();
    }
    const fine = await post(secured.url, request, { "x-api-key": KEYS.other }, "127.0.0.4");
    expect(fine.status).toBe(200);
  });
});
