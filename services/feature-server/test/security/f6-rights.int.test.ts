/**
 * Finding 6: a key without rights on a view got 400 listing that view's features, where 403 is
 * documented: feature names could be enumerated by a caller with no rights on the view. Now rights
 * are checked before a reference is resolved: any view outside the key's list is 403, whether or
 * not it (or the feature) exists, and no answer names anything of it.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOthersServed, grpcCall, KEYS, post, type Secured, startSecured } from "./harness.js";

let secured: Secured;
beforeAll(async () => {
  secured = await startSecured();
});
afterAll(async () => {
  await secured?.stop();
});

const cardOnly = { "x-api-key": KEYS.cardOnly };
// Feature names of the merchant view, which card-only may not read.
const MERCHANT_FEATURES = ["n_1h", "amount_sum_1d"];

describe("finding 6: nothing about a view is revealed to a key without rights on it", () => {
  it.each([
    ["an unknown feature of a forbidden view", "merchant:nope"],
    ["a known feature of a forbidden view", "merchant:n_1h"],
    ["every feature of a forbidden view", "merchant:*"],
    ["a view that does not exist", "ledger:balance"],
  ])("HTTP and gRPC: %s → 403 naming the reference, listing nothing", async (_what, ref) => {
    const res = await post(
      secured.url,
      { features: ["card:n_1h", ref], entities: { merchant_id: ["m-1"] } },
      cardOnly,
    );
    expect(res.status, res.text).toBe(403);
    expect(res.body.field).toBe("features[1]");
    for (const name of MERCHANT_FEATURES) expect(res.text).not.toContain(name);
    const answer = await grpcCall(
      secured.grpcTarget,
      { features: ["card:n_1h", ref], entities: { merchant_id: { ids: ["m-1"] } } },
      cardOnly,
    );
    expect(answer.code, answer.details).toBe(grpc.status.PERMISSION_DENIED);
    expect(answer.field).toBe("features[1]");
    for (const name of MERCHANT_FEATURES) expect(answer.details).not.toContain(name);
  });

  it("its own views still resolve as documented: an unknown feature of card is 400", async () => {
    const res = await post(
      secured.url,
      { features: ["card:nope"], entities: { card_id: ["card-1"] } },
      cardOnly,
    );
    expect(res.status).toBe(400);
    expect(res.body.field).toBe("features[0]");
    await expectOthersServed(secured);
  });
});
