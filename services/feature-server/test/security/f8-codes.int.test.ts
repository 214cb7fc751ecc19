/**
 * Finding 8: wrong codes. A text/plain body got 400, not 415; a malformed gRPC message or a
 * request context nested ~45 levels got INTERNAL, not INVALID_ARGUMENT; the OpenAPI document
 * marked /healthz, /readyz and /metrics as needing credentials; unsupported methods got 404, not
 * 405. Each now answers as docs/api.md and the OpenAPI document say.
 */
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTO_PATH } from "../../src/index.js";
import { expectOthersServed, grpcCall, grpcRaw, http, KEYS, type Secured, startSecured } from "./harness.js";

let secured: Secured;
beforeAll(async () => {
  secured = await startSecured();
});
afterAll(async () => {
  await secured?.stop();
});

const Request = protobuf.loadSync(PROTO_PATH).lookupType("tessera.v1.GetOnlineFeaturesRequest");
const body = JSON.stringify({ features: ["card:n_1h"], entities: { card_id: ["card-1"] } });

describe("finding 8: statuses follow the docs and the OpenAPI document", () => {
  it("a body that is not application/json → 415 naming content-type", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/xml"]) {
      const res = await http(`${secured.url}/v1/features`, {
        method: "POST",
        headers: { "x-api-key": KEYS.all, "content-type": type },
        body,
      });
      expect(res.status, `${type}: ${res.text}`).toBe(415);
      expect(res.body.field).toBe("content-type");
    }
    await expectOthersServed(secured);
  });

  it("gRPC: a message that does not decode → INVALID_ARGUMENT, not INTERNAL", async () => {
    const truncated = Buffer.from(
      Request.encode(
        Request.fromObject({ features: ["card:n_1h"], entities: { card_id: { ids: ["card-1"] } } }),
      ).finish(),
    ).subarray(0, 12);
    for (const bytes of [truncated, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]), Buffer.from([0xff])]) {
      const answer = await grpcRaw(secured.grpcTarget, bytes);
      expect(answer.code, answer.details).toBe(grpc.status.INVALID_ARGUMENT);
    }
    await expectOthersServed(secured);
  });

  it("gRPC: a context nested 45 levels → INVALID_ARGUMENT naming the context path", async () => {
    let value: unknown = { number: 1 };
    for (let d = 0; d < 45; d++) value = { list: { items: [value] } };
    const answer = await grpcCall(secured.grpcTarget, {
      features: ["card:n_1h"],
      entities: { card_id: { ids: ["card-1"] } },
      context: { deep: value },
    });
    expect(answer.code, answer.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(answer.field).toMatch(/^context\.deep/);
    await expectOthersServed(secured);
  });

  it("the OpenAPI document: ops routes need no credentials, feature routes do", async () => {
    const doc = (await http(`${secured.url}/docs/json`)).body;
    expect(doc.security ?? []).toEqual([]);
    for (const path of ["/healthz", "/readyz", "/metrics"])
      expect(doc.paths[path].get.security ?? []).toEqual([]);
    expect(doc.paths["/v1/features"].post.security).toEqual([{ apiKey: [] }, { bearer: [] }]);
    expect(doc.paths["/v1/features/{entityKey}/{entityId}"].get.security).toEqual([
      { apiKey: [] },
      { bearer: [] },
    ]);
    expect((await http(`${secured.url}/metrics`)).status).toBe(200);
  });

  it.each([
    ["DELETE", "/v1/features", "POST"],
    ["GET", "/v1/features", "POST"],
    ["PUT", "/v1/features", "POST"],
    ["POST", "/v1/features/card_id/card-1?features=card:n_1h", "GET, HEAD"],
    ["PATCH", "/healthz", "GET, HEAD"],
    ["DELETE", "/metrics", "GET, HEAD"],
  ])("%s %s → 405 with Allow: %s", async (method, path, allow) => {
    const res = await http(`${secured.url}${path}`, { method, headers: { "x-api-key": KEYS.all } });
    expect(res.status, res.text).toBe(405);
    expect(res.headers["allow"]).toBe(allow);
    expect((await http(`${secured.url}/v1/nothing-here`)).status).toBe(404);
  });
});
