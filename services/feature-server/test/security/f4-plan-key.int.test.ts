/**
 * Finding 4: the plan-cache key joined features with "\n", so ["card:x\nmerchant:y"] got 400 until
 * ["card:x","merchant:y"] was cached, then 200 — with an audit line naming only the first view
 * although both views' values were served. Now the key is the JSON of the list (unambiguous), and
 * the audit line names the served views a request resolved to.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOthersServed, grpcCall, post, type Secured, startSecured } from "./harness.js";

let secured: Secured;
beforeAll(async () => {
  secured = await startSecured();
});
afterAll(async () => {
  await secured?.stop();
});

const entities = { card_id: ["card-1"], merchant_id: ["m-1"] };

describe("finding 4: a feature list is never mistaken for another", () => {
  it("HTTP: the joined reference is refused before and after the split list is cached", async () => {
    const joined = { features: ["card:n_1h\nmerchant:n_1h"], entities };
    const split = { features: ["card:n_1h", "merchant:n_1h"], entities };
    expect((await post(secured.url, joined)).status).toBe(400);
    const served = await post(secured.url, split);
    expect(served.status).toBe(200);
    expect(Object.keys(served.body.views).sort()).toEqual(["card", "merchant"]);
    const after = await post(secured.url, joined);
    expect(after.status, after.text).toBe(400);
    expect(after.body.field).toBe("features[0]");
    const lines = secured.audit.filter((l) => l.protocol === "http");
    expect(lines.at(-2)).toMatchObject({ status: 200, views: ["card", "merchant"] });
    expect(lines.at(-1)).toMatchObject({ status: 400 });
    await expectOthersServed(secured);
  });

  it("gRPC: the same", async () => {
    const ids = { card_id: { ids: ["card-1"] }, merchant_id: { ids: ["m-1"] } };
    const split = await grpcCall(secured.grpcTarget, {
      features: ["card:n_1h", "merchant:n_1h"],
      entities: ids,
    });
    expect(split.code).toBe(grpc.status.OK);
    const joined = await grpcCall(secured.grpcTarget, {
      features: ["card:n_1h\nmerchant:n_1h"],
      entities: ids,
    });
    expect(joined.code, joined.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(joined.field).toBe("features[0]");
    const lines = secured.audit.filter((l) => l.protocol === "grpc");
    expect(lines.at(-2)).toMatchObject({ status: "OK", views: ["card", "merchant"] });
    await expectOthersServed(secured);
  });
});
