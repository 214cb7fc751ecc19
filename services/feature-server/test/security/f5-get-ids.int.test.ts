/**
 * Finding 5: GET with an id of 101–256 characters (documented as allowed) got 414
 * FST_ERR_MAX_PARAM_LENGTH without a `field`, and 414 is not in the OpenAPI document. Now the
 * router takes any id a URL can carry and the id check decides: ≤ 256 characters (code points)
 * served, longer refused with 400 naming `entityId`.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOthersServed, grpcCall, http, KEYS, type Secured, startSecured } from "./harness.js";

let secured: Secured;
beforeAll(async () => {
  secured = await startSecured();
});
afterAll(async () => {
  await secured?.stop();
});

const get = (id: string) =>
  http(`${secured.url}/v1/features/card_id/${encodeURIComponent(id)}?features=card:n_1h`, {
    headers: { "x-api-key": KEYS.all },
  });

describe("finding 5: the documented id length holds on GET", () => {
  it("ids of 101, 200 and 256 characters → 200; 257 → 400 naming entityId", async () => {
    for (const n of [101, 200, 256]) {
      const res = await get("i".repeat(n));
      expect(res.status, `${n}: ${res.text}`).toBe(200);
      expect(res.body.entities.card_id.results[0].id).toHaveLength(n);
    }
    const long = await get("i".repeat(257));
    expect(long.status).toBe(400);
    expect(long.body.field).toBe("entityId");
    await expectOthersServed(secured);
  });

  it("the limit counts characters, not UTF-16 units or bytes: 256 emoji are allowed on GET and gRPC", async () => {
    const emoji = "🃏".repeat(256); // 512 UTF-16 units, 1,024 UTF-8 bytes, 3,072 percent-encoded
    const res = await get(emoji);
    expect(res.status, res.text).toBe(200);
    expect(res.body.entities.card_id.results[0].id).toBe(emoji);
    const answer = await grpcCall(secured.grpcTarget, {
      features: ["card:n_1h"],
      entities: { card_id: { ids: [emoji] } },
    });
    expect(answer.code, answer.details).toBe(grpc.status.OK);
  });

  it("the OpenAPI document lists every status the route answers with, and no 414", async () => {
    const doc = (await http(`${secured.url}/docs/json`)).body;
    const codes = Object.keys(doc.paths["/v1/features/{entityKey}/{entityId}"].get.responses);
    expect(codes).not.toContain("414");
    for (const code of ["200", "400", "401", "403", "429", "503"]) expect(codes).toContain(code);
  });
});
