import { randomBytes } from "node:crypto";
import cassandra from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cassandraContactPoint } from "../../../test/support/index.js";
import { createOnlineStore, type OnlineStore, StoreRequestError } from "../src/index.js";
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

  it("creates a table per view version with the retention as default TTL", async () => {
    const tables = await client.execute(
      "SELECT table_name, default_time_to_live, comment FROM system_schema.tables WHERE keyspace_name = ?",
      [keyspace],
    );
    const clicks = tables.rows.find((row) =>
      String(row.get("comment")).includes("view clicks version abc123"),
    );
    expect(clicks?.get("table_name")).toMatch(/^tiles_clicks_[0-9a-f]{10}$/);
    expect(clicks?.get("default_time_to_live")).toBe(3601);
  });

  it("sets each tile's TTL from its start, not from the write", async () => {
    const now = Date.now();
    const tileStart = now - 3_000_000; // 600 s of retention left
    await store.writeBatch({
      tiles: [
        {
          view: "clicks",
          version: "abc123",
          entity: "ttl",
          aggregation: "count",
          tileStart,
          state: new Uint8Array([1]),
        },
      ],
      freshness: [],
      offsets: [],
    });
    const tables = await client.execute(
      "SELECT table_name, comment FROM system_schema.tables WHERE keyspace_name = ?",
      [keyspace],
    );
    const table = tables.rows
      .find((row) => String(row.get("comment")).includes("view clicks"))
      ?.get("table_name");
    const row = await client.execute(
      `SELECT TTL(state) AS ttl FROM ${keyspace}.${table} WHERE entity = 'ttl'`,
    );
    const ttl = row.first().get("ttl") as number;
    expect(ttl).toBeGreaterThanOrEqual(599);
    expect(ttl).toBeLessThanOrEqual(602);
  });

  it("refuses a flush larger than the server's batch limit as a request error, writing nothing", async () => {
    const now = Date.now();
    const group = `g_${randomBytes(3).toString("hex")}`;
    // ~9.8 MB: above the local stack's batch_size_fail_threshold (8 MiB), below the 16 MiB frame limit.
    const tiles = Array.from({ length: 1200 }, (_, i) => ({
      view: "clicks",
      version: "abc123",
      entity: `big-${i}`,
      aggregation: "count",
      tileStart: now,
      state: new Uint8Array(8192),
    }));
    const attempt = store.writeBatch({
      tiles,
      freshness: [],
      offsets: [{ consumerGroup: group, topic: "t", partition: 0, offset: 1 }],
    });
    await expect(attempt).rejects.toBeInstanceOf(StoreRequestError);
    await expect(attempt).rejects.toThrow(/[Bb]atch too large/);
    expect(await store.readOffsets(group, "t")).toEqual(new Map());
    const read = await store.readTiles("clicks", "abc123", ["big-0", "big-1199"], 0);
    expect([...read.values()].flatMap((e) => e.tiles)).toEqual([]);
  });
});
