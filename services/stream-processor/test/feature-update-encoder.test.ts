/**
 * FeatureUpdateEncoder writes each record into one reused buffer behind the Confluent header: the
 * bytes must be exactly header + avsc's own encoding, for records of any size and in any order (a
 * large record grows the buffer; a smaller one after it must not carry the larger one's tail).
 */
import { readFileSync } from "node:fs";
import type { FeatureUpdateRecord, SchemaRegistry } from "@tessera/kafka";
import { parseAvroSchema } from "@tessera/kafka";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FeatureUpdateEncoder } from "../src/codec.js";

const type = parseAvroSchema(
  readFileSync(new URL("../../../schemas/avro/feature_update.avsc", import.meta.url), "utf8"),
);
const SCHEMA_ID = 4242;
const registry = { register: async () => SCHEMA_ID } as unknown as SchemaRegistry;

const scalar = fc.oneof(fc.constant(null), fc.double({ noNaN: true }), fc.string({ unit: "grapheme" }));
const record: fc.Arbitrary<FeatureUpdateRecord> = fc.record({
  view: fc.string({ minLength: 1 }),
  version: fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 8, maxLength: 16 }),
  // Long entity keys push a record past the encoder's first 4 KB buffer.
  entity: fc.oneof(fc.string(), fc.string({ minLength: 3000, maxLength: 9000 })),
  event_time: fc.integer({ min: 0, max: 2 ** 47 }),
  computed_at: fc.integer({ min: 0, max: 2 ** 47 }),
  // Feature names are identifiers; "__proto__" would not survive a decode into a plain object.
  values: fc.dictionary(
    fc.string({ minLength: 1 }).filter((k) => k !== "__proto__"),
    fc.oneof(scalar, fc.array(scalar, { maxLength: 5 })),
  ),
});

describe("FeatureUpdateEncoder", () => {
  it("refuses to encode before the schema is registered", () => {
    const encoder = new FeatureUpdateEncoder(registry, "features.updates");
    expect(() =>
      encoder.encode({ view: "v", version: "1", entity: "e", event_time: 0, computed_at: 0, values: {} }),
    ).toThrow(/register\(\) was not called/);
  });

  it("writes the header and exactly avsc's bytes, whatever the order of record sizes", async () => {
    const encoder = new FeatureUpdateEncoder(registry, "features.updates");
    await encoder.register();
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 8 }), (records) => {
        const encoded = records.map((r) => encoder.encode(r)); // all first: none may alias another
        records.forEach((r, i) => {
          const bytes = encoded[i]!;
          expect(bytes[0]).toBe(0);
          expect(bytes.readInt32BE(1)).toBe(SCHEMA_ID);
          expect(bytes.subarray(5).equals(type.toBuffer(r))).toBe(true);
          expect(type.fromBuffer(bytes.subarray(5))).toEqual(r);
        });
      }),
      { numRuns: 200 },
    );
  });
});
