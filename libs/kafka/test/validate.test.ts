import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { avroProblems, parseAvroSchema, schemaIdOf } from "../src/index.js";

const payment = parseAvroSchema(
  readFileSync(new URL("../../../schemas/avro/payment_transaction.avsc", import.meta.url), "utf8"),
);
const good = {
  transaction_id: "t-1",
  card_id: "card-1",
  merchant_id: "m-1",
  amount: 12.5,
  currency: "EUR",
  country: "FR",
  event_time: 1_700_000_000_000,
};

describe("avroProblems", () => {
  it("accepts a valid event", () => {
    expect(avroProblems(payment, good)).toEqual([]);
  });

  it("names a field of the wrong type and shows the value", () => {
    expect(avroProblems(payment, { ...good, amount: "12,5" })).toEqual([
      'amount: expected double, got "12,5"',
    ]);
  });

  it("names a missing field", () => {
    const { card_id: _, ...withoutCard } = good;
    expect(avroProblems(payment, withoutCard)).toEqual([
      "card_id: expected string, got nothing (field missing)",
    ]);
  });

  it("rejects undeclared fields, so a misspelt name is not dropped silently", () => {
    expect(avroProblems(payment, { ...good, ammount: 3 })).toEqual(["(event): undeclared field(s) ammount"]);
  });

  it("gives nested paths and union alternatives", () => {
    const type = parseAvroSchema({
      type: "record",
      name: "Outer",
      fields: [
        {
          name: "inner",
          type: { type: "record", name: "Inner", fields: [{ name: "score", type: ["null", "double"] }] },
        },
      ],
    });
    expect(avroProblems(type, { inner: { score: "high" } })).toEqual([
      'inner.score: expected null | double, got "high"',
    ]);
  });

  it("finds no problem in any event built from the schema's own types", () => {
    const event = fc.record({
      transaction_id: fc.string(),
      card_id: fc.string(),
      merchant_id: fc.string(),
      amount: fc.double({ noNaN: true }),
      currency: fc.string(),
      country: fc.string(),
      event_time: fc.integer({ min: 0, max: 2 ** 48 }),
    });
    fc.assert(fc.property(event, (e) => avroProblems(payment, e).length === 0));
  });

  it("reports every wrongly typed field of a record", () => {
    fc.assert(
      fc.property(
        fc.subarray(["card_id", "merchant_id", "currency", "country"], { minLength: 1 }),
        (fields) => {
          const broken = { ...good, ...Object.fromEntries(fields.map((f) => [f, 42])) };
          const problems = avroProblems(payment, broken);
          return (
            problems.length === fields.length &&
            fields.every((f) => problems.some((p) => p.startsWith(`${f}:`)))
          );
        },
      ),
    );
  });
});

describe("schemaIdOf", () => {
  it("reads the id of a Confluent-framed payload", () => {
    expect(schemaIdOf(Buffer.from([0, 0, 0, 1, 2, 99]))).toBe(258);
  });
  it("is undefined for unframed or short payloads", () => {
    expect(schemaIdOf(Buffer.from([1, 0, 0, 0, 1]))).toBeUndefined();
    expect(schemaIdOf(Buffer.from([0, 0, 1]))).toBeUndefined();
    expect(schemaIdOf(null)).toBeUndefined();
  });
});
