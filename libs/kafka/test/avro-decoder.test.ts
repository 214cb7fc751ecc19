import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AvroDecoder,
  isRetriable,
  parseAvroSchema,
  RegistryUnavailableError,
  SchemaRegistry,
} from "../src/index.js";

const paymentSchema = JSON.parse(
  readFileSync(new URL("../../../schemas/avro/payment_transaction.avsc", import.meta.url), "utf8"),
);
const paymentType = parseAvroSchema(paymentSchema);

const frame = (id: number, body: Buffer) => {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, body]);
};

const payment = fc.record({
  transaction_id: fc.string(),
  card_id: fc.string(),
  merchant_id: fc.string(),
  amount: fc.double({ noNaN: true }),
  currency: fc.constantFrom("EUR", "USD"),
  country: fc.string({ maxLength: 2 }),
  event_time: fc.integer({ min: 0, max: 2 ** 40 }),
});

describe("AvroDecoder (the processor's, drift worker's and archiver's one decoder)", () => {
  it("decodes what the registry's generic deserializer decodes, value for value", async () => {
    const registry = SchemaRegistry.inMemory();
    const id = await registry.register("payments-value", paymentSchema);
    const decoder = new AvroDecoder(registry);
    const generic = registry.avroDeserializer();
    await fc.assert(
      fc.asyncProperty(payment, async (p) => {
        const bytes = frame(id, paymentType.toBuffer(p));
        const decoded = await decoder.decode(bytes);
        expect(decoded.ok).toBe(true);
        if (decoded.ok) {
          expect(decoded.value).toEqual(await generic.deserialize("payments", bytes));
          expect(decoded.writer.id).toBe(id);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("names why a record cannot be decoded", async () => {
    const registry = SchemaRegistry.inMemory();
    const id = await registry.register("payments-value", paymentSchema);
    const jsonId = await registry.register("json-value", { type: "object" }, "JSON");
    const decoder = new AvroDecoder(registry);
    const body = paymentType.toBuffer({
      transaction_id: "t",
      card_id: "c",
      merchant_id: "m",
      amount: 1,
      currency: "EUR",
      country: "FR",
      event_time: 1,
    });
    const reasons = async (payload: Buffer | null) => {
      const d = await decoder.decode(payload);
      return d.ok ? "ok" : d.reason;
    };
    expect(await reasons(frame(id, body))).toBe("ok");
    expect(await reasons(null)).toBe("decode_error");
    expect(await reasons(Buffer.from("{}"))).toBe("decode_error");
    expect(await reasons(frame(id, body.subarray(0, body.length - 3)))).toBe("decode_error");
    expect(await reasons(frame(id, Buffer.concat([body, Buffer.from([1])])))).toBe("decode_error");
    expect(await reasons(frame(987_654, body))).toBe("unknown_schema");
    expect(await reasons(frame(jsonId, body))).toBe("schema_mismatch");
  });

  it("resolves schema references", async () => {
    const registry = SchemaRegistry.inMemory();
    const money = {
      type: "record",
      name: "Money",
      namespace: "t",
      fields: [{ name: "cents", type: "long" }],
    };
    await registry.register("money-value", money);
    const order = {
      type: "record",
      name: "Order",
      namespace: "t",
      fields: [
        { name: "id", type: "string" },
        { name: "total", type: "t.Money" },
      ],
    };
    const id = await registry.client.register(
      "orders-value",
      {
        schema: JSON.stringify(order),
        schemaType: "AVRO",
        references: [{ name: "t.Money", subject: "money-value", version: 1 }],
      },
      false,
    );
    const type = parseAvroSchema({ ...order, fields: [order.fields[0], { name: "total", type: money }] });
    const decoded = await new AvroDecoder(registry).decode(
      frame(id, type.toBuffer({ id: "o", total: { cents: 5 } })),
    );
    expect(decoded).toMatchObject({ ok: true, value: { id: "o", total: { cents: 5 } } });
  });

  it("throws a retriable error while the registry is away, and caches nothing then", async () => {
    const registry = SchemaRegistry.inMemory();
    const id = await registry.register("payments-value", paymentSchema);
    const real = registry.client.getBySubjectAndId.bind(registry.client);
    let down = true;
    registry.client.getBySubjectAndId = async (subject, schemaId, format) => {
      if (down) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
      return real(subject, schemaId, format);
    };
    const decoder = new AvroDecoder(registry);
    const bytes = frame(
      id,
      paymentType.toBuffer({
        transaction_id: "t",
        card_id: "c",
        merchant_id: "m",
        amount: 1,
        currency: "EUR",
        country: "FR",
        event_time: 1,
      }),
    );
    const error = await decoder.decode(bytes).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect(isRetriable(error)).toBe(true);
    down = false;
    expect((await decoder.decode(bytes)).ok).toBe(true);
  });
});
