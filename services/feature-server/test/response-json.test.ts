import { GATE_CAUSES } from "@tessera/transforms";
import fc from "fast-check";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { responseSchema } from "../src/http.js";
import { featureResponseJson } from "../src/response-json.js";
import type { FeatureResponse } from "../src/serve.js";

// Whatever a feature may hold: numbers (NaN and ±Infinity too), text with escapes, flags, null, lists.
const text = fc.string({ unit: "binary", maxLength: 12 });
const value = fc.oneof(
  fc.double(),
  fc.integer(),
  text,
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), text), { maxLength: 3 }),
);
const status = fc.constantFrom("present", "missing", "stale", "quarantined", "error" as const);
const reason = fc.record(
  {
    code: fc.constantFrom("freshness_sla", "store_unavailable", "quality_gate" as const),
    message: text,
    subject: text,
    ageMs: fc.nat(),
    maxAgeMs: fc.nat(),
  },
  { requiredKeys: ["code", "message"] },
);
const gate = fc.record(
  {
    subject: text,
    state: fc.constantFrom("tripped", "acked", "overridden" as const),
    causes: fc.subarray([...GATE_CAUSES]),
    since: fc.nat(),
    overrideUntil: fc.nat(),
    onTrip: fc.constantFrom("quarantine", "refuse" as const),
    incident: text,
  },
  { requiredKeys: ["subject", "state", "causes", "since", "onTrip"] },
);
const viewInfo = fc.record(
  {
    version: text,
    newestEventTime: fc.option(fc.nat()),
    degraded: fc.boolean(),
    reasons: fc.array(reason, { maxLength: 2 }),
    gates: fc.array(gate, { maxLength: 2 }),
  },
  { requiredKeys: ["version", "newestEventTime", "degraded", "reasons"] },
);
const group = fc.integer({ min: 0, max: 4 }).chain((width) =>
  fc.record({
    features: fc.array(text, { minLength: width, maxLength: width }),
    results: fc.array(
      fc.record({
        id: text,
        values: fc.array(value, { minLength: width, maxLength: width }),
        statuses: fc.array(status, { minLength: width, maxLength: width }),
      }),
      { maxLength: 4 },
    ),
  }),
);
const response = fc.record({
  asOf: fc.nat(),
  views: fc.dictionary(text, viewInfo, { maxKeys: 2 }),
  entities: fc.dictionary(text, group, { maxKeys: 2 }),
}) as fc.Arbitrary<FeatureResponse>;

describe("the feature routes' hand-written JSON", () => {
  it("says what the response schema's own serialiser says, for any response", async () => {
    const app = Fastify();
    let next: FeatureResponse | undefined;
    app.get("/schema", { schema: { response: { 200: responseSchema } } }, async () => next);
    await app.ready();
    try {
      await fc.assert(
        fc.asyncProperty(response, async (r) => {
          next = r;
          const bySchema = (await app.inject({ method: "GET", url: "/schema" })).body;
          expect(JSON.parse(featureResponseJson(r))).toEqual(JSON.parse(bySchema));
        }),
        { numRuns: 300 },
      );
    } finally {
      await app.close();
    }
  });
});
