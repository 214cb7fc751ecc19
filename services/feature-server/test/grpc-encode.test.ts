import { toProto } from "@tessera/client";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadServiceDefinition, responseToProto, serializeResponse } from "../src/grpc.js";
import type { FeatureResponse, Status } from "../src/serve.js";

const method = loadServiceDefinition()["GetOnlineFeatures"]!;
const encode = method.responseSerialize as (value: unknown) => Buffer;
const decode = method.responseDeserialize as (bytes: Buffer) => unknown;

// The results as protobufjs objects: what the server sent before results were written by hand.
const STATUS: Record<Status, string> = {
  present: "PRESENT",
  missing: "MISSING",
  stale: "STALE",
  quarantined: "QUARANTINED",
  error: "ERROR",
};
function byProtobufjs(response: FeatureResponse): Buffer {
  const results = Object.entries(response.entities).flatMap(([entityKey, group]) =>
    group.results.map((row) => ({
      entity_key: entityKey,
      entity_id: row.id,
      features: Object.fromEntries(
        group.features.map((name, c) => [
          name,
          { value: toProto(row.values[c]), status: STATUS[row.statuses[c]!] },
        ]),
      ),
    })),
  );
  return encode({ ...responseToProto(response), results });
}

const text = fc.string({ unit: "binary", maxLength: 200 }); // past 127 bytes: two-byte lengths
const scalar = fc.oneof(fc.double(), fc.integer(), text, fc.boolean(), fc.constant(null));
const value = fc.oneof(scalar, fc.array(fc.oneof(fc.double(), text, fc.boolean()), { maxLength: 4 }));
const status = fc.constantFrom<Status>("present", "missing", "stale", "quarantined", "error");
const group = fc.uniqueArray(text, { maxLength: 5 }).chain((features) =>
  fc.record({
    features: fc.constant(features),
    results: fc.array(
      fc.record({
        id: text,
        values: fc.array(value, { minLength: features.length, maxLength: features.length }),
        statuses: fc.array(status, { minLength: features.length, maxLength: features.length }),
      }),
      { maxLength: 5 },
    ),
  }),
);
const response = fc.record({
  asOf: fc.nat(),
  views: fc.dictionary(
    text,
    fc.record({
      version: text,
      newestEventTime: fc.option(fc.nat()),
      degraded: fc.boolean(),
      reasons: fc.constant([]),
    }),
    { maxKeys: 2 },
  ),
  entities: fc.dictionary(text, group, { maxKeys: 3 }),
}) as fc.Arbitrary<FeatureResponse>;

describe("gRPC results written by hand", () => {
  it("decode to what protobufjs' own encoding of the response decodes to, for any response", () => {
    const serialize = serializeResponse(encode);
    fc.assert(
      fc.property(response, (r) => {
        expect(decode(serialize(responseToProto(r)))).toEqual(decode(byProtobufjs(r)));
      }),
      { numRuns: 300 },
    );
  });
});
