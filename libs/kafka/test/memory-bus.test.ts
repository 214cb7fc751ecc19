import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { busContract } from "../../../test/contracts/bus-contract.js";
import { MemoryBroker, murmur2, SchemaRegistry, TesseraProducer, UnknownTopicError } from "../src/index.js";

let n = 0;
busContract(
  "memory",
  () => new MemoryBroker().client(),
  (prefix) => `${prefix}-${n++}`,
);

describe("murmur2", () => {
  // Reference values from Kafka's own Utils.murmur2 tests (clients/src/test/.../UtilsTest.java).
  it.each([
    ["21", -973932308],
    ["foobar", -790332482],
    ["a-little-bit-long-string", -985981536],
    ["a-little-bit-longer-string", -1486304829],
    ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ["abc", 479470107],
  ])("murmur2(%s) = %i", (key, expected) => {
    expect(murmur2(Buffer.from(key))).toBe(expected);
  });
});

describe("TesseraProducer over the memory bus and registry", () => {
  it("validates, frames and delivers like the real pair", async () => {
    const broker = new MemoryBroker();
    broker.createTopic("payments", 2);
    const registry = SchemaRegistry.inMemory();
    const schema = JSON.parse(
      readFileSync(new URL("../../../schemas/avro/payment_transaction.avsc", import.meta.url), "utf8"),
    );
    const producer = new TesseraProducer({ kafka: broker.client(), registry, schemas: { payments: schema } });
    const event = {
      transaction_id: "t",
      card_id: "c",
      merchant_id: "m",
      amount: 1.5,
      currency: "EUR",
      country: "FR",
      event_time: 1,
    };
    await producer.publish("payments", event, { key: "c" });
    await expect(producer.publish("payments", { ...event, amount: "x" } as never)).rejects.toThrow(/amount/);
    await expect(producer.publish("nope", event)).rejects.toThrow(UnknownTopicError);
    const stored = [...broker.topics.get("payments")!.partitions.flat()];
    expect(stored).toHaveLength(1);
    expect(stored[0]!.value![0]).toBe(0);
    const decoded = await registry.avroDeserializer().deserialize("payments", stored[0]!.value!);
    expect(decoded).toEqual(event);
  });
});
