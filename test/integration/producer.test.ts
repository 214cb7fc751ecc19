/** The producer API against the real broker and registry, checked by independent readers. */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import avro from "avsc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BrokerUnavailableError,
  createKafka,
  ensureTopics,
  type PaymentTransactionRecord,
  SchemaRegistry,
  SchemaRegistryError,
  SchemaValidationError,
  TesseraProducer,
  UnknownTopicError,
} from "../../libs/kafka/src/index.js";
import { kafkaBrokers, services, uniqueName } from "../support/index.js";

const run = promisify(execFile);
const paymentSchema = JSON.parse(
  readFileSync(new URL("../../schemas/avro/payment_transaction.avsc", import.meta.url), "utf8"),
);

type Payment = PaymentTransactionRecord;

const payment = (i: number): Payment => ({
  transaction_id: `t-${i}`,
  card_id: `card-${i % 3}`,
  merchant_id: "m-42",
  amount: 10 + i,
  currency: "EUR",
  country: "FR",
  event_time: 1_700_000_000_000 + i,
});

/** Raw record values as kcat (librdkafka, not KafkaJS) reads them. */
async function kcatValues(topic: string, count: number): Promise<Buffer[]> {
  const { stdout } = await run(
    "kcat",
    [
      "-b",
      kafkaBrokers()[0]!,
      "-C",
      "-t",
      topic,
      "-o",
      "beginning",
      "-c",
      String(count),
      "-e",
      "-q",
      "-f",
      "%S %s\n",
    ],
    { encoding: "buffer", timeout: 20_000 },
  );
  // `%S` prints the value's size in bytes, so binary payloads are split without guessing.
  const values: Buffer[] = [];
  let at = 0;
  while (at < stdout.length) {
    const space = stdout.indexOf(0x20, at);
    const size = Number(stdout.subarray(at, space).toString());
    values.push(stdout.subarray(space + 1, space + 1 + size));
    at = space + 1 + size + 1;
  }
  return values;
}

async function endOffset(topic: string): Promise<number> {
  const admin = createKafka({ brokers: kafkaBrokers() }).admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

describe("TesseraProducer", () => {
  const topic = uniqueName("payments");
  let producer: TesseraProducer<{ [topic]: Payment }>;

  beforeAll(async () => {
    await ensureTopics(createKafka({ brokers: kafkaBrokers() }), [{ topic, partitions: 3 }]);
    producer = new TesseraProducer({
      brokers: kafkaBrokers(),
      registry: new SchemaRegistry(services().SCHEMA_REGISTRY_URL),
      schemas: { [topic]: paymentSchema },
    });
  });
  afterAll(() => producer.disconnect());

  it("writes the Confluent wire format that kcat reads: magic byte 0, the registered id, Avro payload", async () => {
    await producer.publish(topic, payment(1), { key: "card-1" });
    await producer.publishBatch(
      topic,
      [2, 3].map((i) => ({ value: payment(i), key: `card-${i}` })),
    );
    const { id } = await producer.schemaFor(topic);

    const values = await kcatValues(topic, 3);
    expect(values).toHaveLength(3);
    // Decode with the schema fetched by id over plain HTTP and avsc: no Tessera code on this side.
    const response = await fetch(`${services().SCHEMA_REGISTRY_URL}/schemas/ids/${id}`);
    const type = avro.Type.forSchema(JSON.parse(((await response.json()) as { schema: string }).schema));
    const decoded = values.map((value) => {
      expect(value[0]).toBe(0);
      expect(value.readInt32BE(1)).toBe(id);
      return type.fromBuffer(value.subarray(5));
    });
    expect(decoded.map((d) => d.transaction_id).sort()).toEqual(["t-1", "t-2", "t-3"]);
    expect(decoded.find((d) => d.transaction_id === "t-2")).toMatchObject(payment(2));
  });

  it("rejects an invalid event naming the field, and sends nothing", async () => {
    const before = await endOffset(topic);
    const bad = { ...payment(9), amount: "lots" } as unknown as Payment;
    await expect(producer.publish(topic, bad)).rejects.toThrow(SchemaValidationError);
    await expect(producer.publish(topic, bad)).rejects.toThrow(/amount: expected double, got "lots"/);
    // One bad event in a batch: the good ones are not sent either.
    await expect(
      producer.publishBatch(topic, [
        { value: payment(10) },
        { value: { ...payment(11), card_id: null } as never },
      ]),
    ).rejects.toThrow(/events\[1\]\.card_id: expected string, got null/);
    expect(await endOffset(topic)).toBe(before);
  });

  it("names an unknown topic instead of waiting for it", async () => {
    const started = Date.now();
    await expect(producer.publish("no-such-topic-here" as typeof topic, payment(1))).rejects.toThrow(
      UnknownTopicError,
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("fails fast and clearly when no broker answers", async () => {
    const lonely = new TesseraProducer({
      brokers: ["127.0.0.1:1"],
      retries: 1,
      registry: new SchemaRegistry(services().SCHEMA_REGISTRY_URL),
    });
    const started = Date.now();
    const error = await lonely.publish(topic, payment(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect((error as BrokerUnavailableError).retriable).toBe(true);
    expect((error as Error).message).toContain("127.0.0.1:1");
    expect(Date.now() - started).toBeLessThan(15_000);
    await lonely.disconnect();
  });

  it("reports an unreachable registry as a retriable registry error", async () => {
    const orphan = new TesseraProducer({
      brokers: kafkaBrokers(),
      registry: new SchemaRegistry("http://127.0.0.1:1"),
      schemas: { [topic]: paymentSchema },
    });
    const error = await orphan.publish(topic, payment(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaRegistryError);
    expect((error as SchemaRegistryError).retriable).toBe(true);
    await orphan.disconnect();
  });

  it("uses the latest registered schema when it brings none", async () => {
    const reader = new TesseraProducer({
      brokers: kafkaBrokers(),
      registry: new SchemaRegistry(services().SCHEMA_REGISTRY_URL),
    });
    await reader.publish(topic, payment(20));
    expect((await reader.schemaFor(topic)).id).toBe((await producer.schemaFor(topic)).id);
    await reader.disconnect();
  });
});
