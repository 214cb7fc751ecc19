/**
 * Online store figures: Redis memory per entity, flush and read latencies on Redis and Cassandra,
 * and Cassandra's largest flush. Short on purpose (the machine is shared).
 *
 *   node --conditions=@tessera/source --import tsx bench/online-stores/run.ts
 *
 * Services from REDIS_URL, CASSANDRA_CONTACT_POINTS, CASSANDRA_LOCAL_DC (default: the native stack).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { type AddressInfo, createServer } from "node:net";
import {
  createOnlineStore,
  type OnlineStore,
  StoreRequestError,
  type TileWrite,
  type WriteBatch,
} from "@tessera/stores";
import cassandra from "cassandra-driver";
import { Redis } from "ioredis";

const REDIS_URL = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";
const CONTACT_POINTS = (process.env["CASSANDRA_CONTACT_POINTS"] ?? "127.0.0.1:9042").split(",");
const LOCAL_DC = process.env["CASSANDRA_LOCAL_DC"] ?? "datacenter1";

const AGGREGATIONS = 10;
const TILES = 14;
const HOP = 3_600_000;
const STATE_BYTES = 16; // e.g. a sum and a count as two float64s
const run = randomBytes(3).toString("hex");
const view = { name: "bench", version: run, retentionMs: (TILES + 1) * HOP };

const tilesOf = (entity: string, now: number): TileWrite[] => {
  const latest = Math.floor(now / HOP) * HOP;
  const tiles: TileWrite[] = [];
  for (let a = 0; a < AGGREGATIONS; a++) {
    for (let k = 0; k < TILES; k++) {
      tiles.push({
        view: view.name,
        version: view.version,
        entity,
        aggregation: `feature_${a}`,
        tileStart: latest - k * HOP,
        state: randomBytes(STATE_BYTES),
      });
    }
  }
  return tiles;
};
const freshnessOf = (entity: string, now: number) => ({
  view: view.name,
  version: view.version,
  entity,
  eventTime: now,
});

function quantiles(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms (n=${samples.length})`;
}

async function timed(times: number, fn: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await fn();
    samples.push(performance.now() - started);
  }
  return samples;
}

async function readLatencies(name: string, store: OnlineStore, entities: string[]) {
  const from = Math.floor(Date.now() / HOP) * HOP - (TILES - 1) * HOP;
  await timed(50, () => store.readTiles(view.name, view.version, [entities[0]!], from)); // warm-up
  console.log(
    `${name} readTiles 1 entity (${AGGREGATIONS * TILES} tiles): ${quantiles(await timed(500, () => store.readTiles(view.name, view.version, [entities[0]!], from)))}`,
  );
  const hundred = entities.slice(0, 100);
  console.log(
    `${name} readTiles 100 entities: ${quantiles(await timed(100, () => store.readTiles(view.name, view.version, hundred, from)))}`,
  );
}

async function redisFigures() {
  const keyPrefix = `bench-online-${run}:`;
  const store = createOnlineStore({ kind: "redis", url: REDIS_URL, keyPrefix, timeoutMs: 5000 });
  const redis = new Redis(REDIS_URL);
  try {
    await store.applyView(view);
    const now = Date.now();
    const entities = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    // Flush: 100 entities × 140 tiles = 14,000 tiles per batch (batches built before timing).
    const big: WriteBatch[] = [];
    for (let i = 0; i < entities.length; i += 100) {
      const batch = entities.slice(i, i + 100);
      big.push({
        tiles: batch.flatMap((e) => tilesOf(e, now)),
        freshness: batch.map((e) => freshnessOf(e, now)),
        offsets: [{ consumerGroup: "bench", topic: run, partition: 0, offset: i }],
      });
    }
    let next = 0;
    const flushes = await timed(big.length, () => store.writeBatch(big[next++]!));
    console.log(
      `redis writeBatch 100 entities × ${AGGREGATIONS * TILES} tiles (14,000 tiles): ${quantiles(flushes)}`,
    );
    const small = {
      tiles: entities.slice(0, 50).flatMap((e) => tilesOf(e, now).slice(0, AGGREGATIONS)),
      freshness: entities.slice(0, 50).map((e) => freshnessOf(e, now)),
      offsets: [{ consumerGroup: "bench", topic: run, partition: 0, offset: 1 }],
    };
    console.log(
      `redis writeBatch 50 entities × ${AGGREGATIONS} tiles (500 tiles): ${quantiles(await timed(200, () => store.writeBatch(small)))}`,
    );
    await readLatencies("redis", store, entities);
  } finally {
    const keys = await redis.keys(`${keyPrefix}*`);
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    await redis.quit();
    await store.close();
  }
}

/**
 * Memory per entity, on a private redis-server so its hash encoding threshold can be set:
 * 128 entries is Redis' default, above it a hash leaves the compact listpack encoding.
 */
async function redisMemory() {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const server = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  // The server takes a moment to listen; ioredis reconnects meanwhile.
  const redis = new Redis({ port, host: "127.0.0.1" });
  redis.on("error", () => {});
  try {
    const now = Date.now();
    const entities = Array.from({ length: 100 }, (_, i) => `user-${i}`);
    for (const listpackEntries of [128, 512]) {
      await redis.config("SET", "hash-max-listpack-entries", String(listpackEntries));
      const keyPrefix = `m${listpackEntries}:`;
      const store = createOnlineStore({ kind: "redis", url: `redis://127.0.0.1:${port}`, keyPrefix });
      await store.applyView(view);
      await store.writeBatch({
        tiles: entities.flatMap((e) => tilesOf(e, now)),
        freshness: entities.map((e) => freshnessOf(e, now)),
        offsets: [],
      });
      await store.close();
      let bytes = 0;
      for (const e of entities)
        bytes += (await redis.memory("USAGE", `${keyPrefix}t:bench:${run}:{${e}}`, "SAMPLES", "0")) ?? 0;
      const encoding = await redis.object("ENCODING", `${keyPrefix}t:bench:${run}:{${entities[0]}}`);
      console.log(
        `redis memory per entity (${AGGREGATIONS} features × ${TILES} tiles, ${STATE_BYTES}-byte states, hash-max-listpack-entries ${listpackEntries}): ${Math.round(bytes / entities.length)} B (${encoding})`,
      );
    }
  } finally {
    redis.disconnect();
    server.kill();
  }
}

async function cassandraFigures() {
  const keyspace = `bench_online_${run}`;
  const store = createOnlineStore({
    kind: "cassandra",
    contactPoints: CONTACT_POINTS,
    localDataCenter: LOCAL_DC,
    keyspace,
    timeoutMs: 10_000,
  });
  const client = new cassandra.Client({ contactPoints: CONTACT_POINTS, localDataCenter: LOCAL_DC });
  try {
    await store.applyView(view);
    const now = Date.now();
    const entities = Array.from({ length: 200 }, (_, i) => `user-${i}`);

    // Largest flush the server accepts (batch_size_fail_threshold), in 16-byte tiles.
    let [ok, tooLarge] = [1, 4096];
    while (tooLarge - ok > 8) {
      const size = Math.floor((ok + tooLarge) / 2);
      const tiles = entities.flatMap((e) => tilesOf(e, now)).slice(0, size);
      try {
        await store.writeBatch({
          tiles,
          freshness: [],
          offsets: [{ consumerGroup: "bench", topic: run, partition: 0, offset: 1 }],
        });
        ok = size;
      } catch (err) {
        if (!(err instanceof StoreRequestError)) throw err;
        tooLarge = size;
      }
    }
    console.log(`cassandra largest accepted flush: ~${ok} tiles of ${STATE_BYTES} bytes (+ 1 offset)`);

    // Load in batches the server accepts: one entity (140 tiles) per flush.
    for (const e of entities) {
      await store.writeBatch({ tiles: tilesOf(e, now), freshness: [freshnessOf(e, now)], offsets: [] });
    }
    // A flush well inside the limit: 40 entities × 10 tiles, their freshness and an offset.
    const flush = {
      tiles: entities.slice(0, 40).flatMap((e) => tilesOf(e, now).slice(0, AGGREGATIONS)),
      freshness: entities.slice(0, 40).map((e) => freshnessOf(e, now)),
      offsets: [{ consumerGroup: "bench", topic: run, partition: 0, offset: 2 }],
    };
    console.log(
      `cassandra writeBatch 400 tiles + 40 freshness + offset (logged): ${quantiles(await timed(100, () => store.writeBatch(flush)))}`,
    );
    await readLatencies("cassandra", store, entities);

    // The alternative read: one IN query over the partition keys (coordinator fans out).
    const tables = await client.execute(
      "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
      [keyspace],
    );
    const table = tables.rows.map((r) => r.get("table_name") as string).find((t) => t.startsWith("tiles_"));
    const from = Math.floor(Date.now() / HOP) * HOP - (TILES - 1) * HOP;
    const hundred = entities.slice(0, 100);
    const inQuery = `SELECT entity, tile_start, aggregation, state, newest_event_time, fresh_until FROM ${keyspace}.${table} WHERE entity IN ? AND tile_start >= ?`;
    await timed(20, () => client.execute(inQuery, [hundred, from], { prepare: true, fetchSize: 100_000 }));
    const inSamples = await timed(100, () =>
      client.execute(inQuery, [hundred, from], { prepare: true, fetchSize: 100_000 }),
    );
    console.log(`cassandra one IN query, 100 entities (for comparison): ${quantiles(inSamples)}`);
  } finally {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await client.shutdown();
    await store.close();
  }
}

await redisMemory();
await redisFigures();
await cassandraFigures();
