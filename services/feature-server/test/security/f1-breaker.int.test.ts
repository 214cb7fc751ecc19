/**
 * Finding 1: one caller could open the circuit for everyone. An id that is not well-formed UTF-16
 * (a lone surrogate) made the Redis store throw, was answered 503 "store unavailable" (leaking the
 * store's message) and counted as a store failure: five such requests opened the breaker for
 * every key on both protocols. Now the id is refused at the edge (400 / INVALID_ARGUMENT naming
 * it) and nothing but a store outage counts toward the breaker.
 */
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTO_PATH } from "../../src/index.js";
import { expectOthersServed, grpcRaw, http, KEYS, post, type Secured, startSecured } from "./harness.js";

let secured: Secured;
beforeAll(async () => {
  secured = await startSecured();
});
afterAll(async () => {
  await secured?.stop();
});

const Request = protobuf.loadSync(PROTO_PATH).lookupType("tessera.v1.GetOnlineFeaturesRequest");

describe("finding 1: malformed ids cannot open the breaker", () => {
  it("HTTP: ten lone-surrogate ids → 400 naming the id, the circuit stays closed for everyone", async () => {
    // JSON's \ud800 escape is a lone surrogate once parsed: valid JSON, not well-formed text.
    const body = '{"features":["card:n_1h"],"entities":{"card_id":["card-1","\\ud800"]}}';
    for (let i = 0; i < 10; i++) {
      const res = await post(secured.url, body);
      expect(res.status, res.text).toBe(400);
      expect(res.body.field).toBe("entities.card_id[1]");
      expect(res.text).not.toMatch(/URI malformed|readTiles|redis/i);
    }
    const get = await http(`${secured.url}/v1/features/card_id/%ED%A0%80?features=card:n_1h`, {
      headers: { "x-api-key": KEYS.all },
    });
    expect(get.status).toBe(400);
    expect(get.body.field).toBe("url");
    const ready = await http(`${secured.url}/readyz`);
    expect(ready.body.detail.storeCircuitOpen).toBe(false);
    await expectOthersServed(secured);
  });

  it("gRPC: ten ids that are not UTF-8 on the wire → INVALID_ARGUMENT, the circuit stays closed", async () => {
    const bytes = Buffer.from(
      Request.encode(
        Request.fromObject({ features: ["card:n_1h"], entities: { card_id: { ids: ["card-1", "@@@"] } } }),
      ).finish(),
    );
    // What a client encoding "\ud800" naively (CESU-8) sends: ED A0 80.
    const at = bytes.indexOf("@@@");
    bytes.set([0xed, 0xa0, 0x80], at);
    for (let i = 0; i < 10; i++) {
      const answer = await grpcRaw(secured.grpcTarget, bytes);
      expect(answer.code, answer.details).toBe(grpc.status.INVALID_ARGUMENT);
      expect(answer.details).toMatch(/utf-8/i);
    }
    const ready = await http(`${secured.url}/readyz`);
    expect(ready.body.detail.storeCircuitOpen).toBe(false);
    await expectOthersServed(secured);
  });
});
