/**
 * Finding 7: a failed on-demand feature (context.amount "12,5" through CEL's double()) was served
 * as null/present over HTTP and NaN/PRESENT over gRPC; the docs say status `error`. Now a result
 * that is not a feature value (NaN, ±Infinity) is the failure it is.
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

const FEATURES = ["card:amount_mean_6h", "card:amount_ratio"];
// card-1 has amount_mean_6h != 0 in the fixture data, so the ratio evaluates double(context.amount).

describe("finding 7: an on-demand failure is status error on both protocols", () => {
  it("HTTP: text that is no number → null with status error; a number → present", async () => {
    const bad = await post(secured.url, {
      features: FEATURES,
      entities: { card_id: ["card-1"] },
      context: { amount: "12,5" },
    });
    expect(bad.status).toBe(200);
    const row = bad.body.entities.card_id.results[0];
    expect(row.statuses[0]).toBe("present");
    expect(row.values[1]).toBeNull();
    expect(row.statuses[1]).toBe("error");
    const good = await post(secured.url, {
      features: FEATURES,
      entities: { card_id: ["card-1"] },
      context: { amount: "12.5" },
    });
    const ok = good.body.entities.card_id.results[0];
    expect(ok.statuses[1]).toBe("present");
    expect(ok.values[1]).toBeCloseTo(12.5 / ok.values[0], 9);
    await expectOthersServed(secured);
  });

  it("gRPC: ERROR with no value, never NaN/PRESENT", async () => {
    const answer = await grpcCall(secured.grpcTarget, {
      features: FEATURES,
      entities: { card_id: { ids: ["card-1"] } },
      context: { amount: { text: "12,5" } },
    });
    expect(answer.code, answer.details).toBe(grpc.status.OK);
    const result = answer.response.results[0].features["card:amount_ratio"];
    expect(result.status).toBe("ERROR");
    expect(result.value?.number).toBeUndefined();
  });
});
