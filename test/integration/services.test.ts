/** One round trip per real service, with plain clients: proof that the harness hands out live servers. */
import cassandra from "cassandra-driver";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { describe, expect, it } from "vitest";
import { cassandraContactPoint, kafkaBrokers, services, uniqueName } from "../support/index.js";

describe("real services", () => {
  it("Kafka: a produced record is consumed back", async () => {
    const kafka = new Kafka({ clientId: "roundtrip", brokers: kafkaBrokers(), logLevel: logLevel.ERROR });
    const topic = uniqueName("roundtrip");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();

    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: "k", value: "hello kafka" }] });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName("roundtrip-group") });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const received = await new Promise<string>((resolve) => {
      void consumer.run({ eachMessage: async ({ message }) => resolve(String(message.value)) });
    });
    await consumer.disconnect();
    expect(received).toBe("hello kafka");
  });

  it("schema registry: register, fetch by id, reject an incompatible change", async () => {
    const base = services().SCHEMA_REGISTRY_URL;
    const subject = uniqueName("roundtrip-value");
    const v1 = {
      type: "record",
      name: "Thing",
      fields: [{ name: "id", type: "string" }],
    };
    const post = (path: string, body: unknown, method = "POST") =>
      fetch(`${base}${path}`, {
        method,
        headers: { "content-type": "application/vnd.schemaregistry.v1+json" },
        body: JSON.stringify(body),
      });

    await post(`/config/${subject}`, { compatibility: "BACKWARD" }, "PUT");
    const registered = await post(`/subjects/${subject}/versions`, { schema: JSON.stringify(v1) });
    expect(registered.status).toBe(200);
    const { id } = (await registered.json()) as { id: number };

    const fetched = await fetch(`${base}/schemas/ids/${id}`);
    const { schema } = (await fetched.json()) as { schema: string };
    expect(JSON.parse(schema)).toMatchObject({ name: "Thing" });

    // A new required field without a default cannot read old data: not backward compatible.
    const v2 = { ...v1, fields: [...v1.fields, { name: "amount", type: "double" }] };
    const check = await post(`/compatibility/subjects/${subject}/versions/latest`, {
      schema: JSON.stringify(v2),
    });
    expect(((await check.json()) as { is_compatible: boolean }).is_compatible).toBe(false);
    const rejected = await post(`/subjects/${subject}/versions`, { schema: JSON.stringify(v2) });
    expect(rejected.status).toBe(409);
  });

  it("Redis: set and get", async () => {
    const redis = new Redis(services().REDIS_URL, { lazyConnect: true });
    await redis.connect();
    const key = uniqueName("roundtrip");
    await redis.set(key, "hello redis", "PX", 60_000);
    expect(await redis.get(key)).toBe("hello redis");
    await redis.quit();
  });

  it("Cassandra: create table, insert, select", async () => {
    const client = new cassandra.Client(cassandraContactPoint());
    await client.connect();
    await client.execute(
      "CREATE KEYSPACE IF NOT EXISTS tessera_roundtrip WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    );
    const table = `tessera_roundtrip.${uniqueName("t").replaceAll("-", "_")}`;
    await client.execute(`CREATE TABLE ${table} (id text PRIMARY KEY, amount double)`);
    await client.execute(`INSERT INTO ${table} (id, amount) VALUES (?, ?)`, ["card-1", 12.5], {
      prepare: true,
    });
    const result = await client.execute(`SELECT amount FROM ${table} WHERE id = ?`, ["card-1"], {
      prepare: true,
    });
    expect(result.first()?.["amount"]).toBe(12.5);
    await client.execute(`DROP TABLE ${table}`);
    await client.shutdown();
  });
});
