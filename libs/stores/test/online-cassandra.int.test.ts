import { randomBytes } from "node:crypto";
import cassandra from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cassandraContactPoint } from "../../../test/support/index.js";
import { createOnlineStore, type OnlineStore } from "../src/index.js";
import { onlineStoreContract } from "./online-contract.js";

// Cassandra names allow [a-zA-Z0-9_] only.
const keyspace = `test_online_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;

onlineStoreContract("cassandra", {
  open: () => createOnlineStore({ kind: "cassandra", ...cassandraContactPoint(), keyspace }),
  remote: {
    get upstream() {
      const [host = "127.0.0.1", port = "9042"] = (cassandraContactPoint().contactPoints[0] ?? "").split(":");
      return { host, port: Number(port) };
    },
    at: (port, timeoutMs) =>
      createOnlineStore({
        kind: "cassandra",
        contactPoints: [`127.0.0.1:${port}`],
        localDataCenter: cassandraContactPoint().localDataCenter,
        keyspace,
        timeoutMs,
        schemaTimeoutMs: timeoutMs,
      }),
  },
});

describe("cassandra online store: layout and flush", () => {
  let client: cassandra.Client;
  let store: OnlineStore;
  const view = { name: "clicks", version: "abc123", retentionMs: 3_600_000 };

  beforeAll(async () => {
    client = new cassandra.Client(cassandraContactPoint());
    store = createOnlineStore({ kind: "cassandra", ...cassandraContactPoint(), keyspace });
    await store.applyView(view);
  });
  afterAll(async () => {
    await store.close();
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await client.shutdown();
  });

  const tableOf = async () => {
    const tables = await client.execute(
      "SELECT table_name, default_time_to_live, comment FROM system_schema.tables WHERE keyspace_name = ?",
      [keyspace],
    );
    return tables.rows.find((row) => String(row.get("comment")).includes("view clicks version abc123"))!;
  };
  const write = async (group: string, entity: string, state: number[], expiresAt: number) => {
    const { epoch, offset } = await store.claimPartition(group, "t", 0);
    const owner = { consumerGroup: group, topic: "t", partition: 0, epoch };
    await store.writeBatch({
      owner,
      expectedOffset: offset,
      offset: offset + 1,
      states: [{ view: "clicks", version: "abc123", entity, state: new Uint8Array(state), expiresAt }],
    });
    return owner;
  };

  it("creates a table per view version and state format, with twice the retention as default TTL", async () => {
    const table = await tableOf();
    expect(table.get("table_name")).toMatch(/^states_clicks_[0-9a-f]{10}$/);
    expect(table.get("default_time_to_live")).toBe(7201);
  });

  it("sets each state's TTL from its expiresAt, and its write time from the owner's epoch and offset", async () => {
    const group = `g_${randomBytes(3).toString("hex")}`;
    const owner = await write(group, "ttl", [1], Date.now() + 600_000);
    const row = await client.execute(
      `SELECT TTL(state) AS ttl, WRITETIME(state) AS at FROM ${keyspace}.${(await tableOf()).get("table_name")} WHERE entity = 'ttl'`,
    );
    const ttl = row.first().get("ttl") as number;
    expect(ttl).toBeGreaterThanOrEqual(599);
    expect(ttl).toBeLessThanOrEqual(602);
    expect(String(row.first().get("at"))).toBe(String(BigInt(owner.epoch) * 2n ** 32n));
  });

  it("lets no write of an older owner win over a newer one's, whatever order they arrive in", async () => {
    const group = `g_${randomBytes(3).toString("hex")}`;
    await write(group, "late", [1], Date.now() + 600_000); // epoch e, offset 0
    const newer = await write(group, "late", [2], Date.now() + 600_000); // epoch e + 1, offset 1
    // A write of the old epoch arriving now (a zombie's, delayed in the network) carries an older timestamp.
    const table = (await tableOf()).get("table_name");
    await client.execute(
      `INSERT INTO ${keyspace}.${table} (entity, state) VALUES ('late', 0x09) USING TIMESTAMP ?`,
      [cassandra.types.Long.fromString(String(BigInt(newer.epoch - 1) * 2n ** 32n + 999n))],
      { prepare: true },
    );
    expect([...(await store.readStates("clicks", "abc123", ["late"]))[0]!]).toEqual([2]);
  });
});
