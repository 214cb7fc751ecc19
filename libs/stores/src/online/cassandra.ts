import { createHash } from "node:crypto";
import cassandra from "cassandra-driver";
import {
  bytes,
  sortTiles,
  tileAlive,
  ViewRegistry,
  validateBatch,
  validateRange,
  viewKey,
} from "./common.js";
import { OnlineStoreError, StoreRequestError, StoreUnavailableError, withTimeout } from "./errors.js";
import type { EntityTiles, OnlineStore, OnlineView, WriteBatch } from "./types.js";

const { errors, policies, types } = cassandra;

export interface CassandraOnlineStoreConfig {
  kind: "cassandra";
  contactPoints: string[];
  localDataCenter: string;
  /** Created on first applyView if missing. */
  keyspace: string;
  /** Replication of a keyspace this store creates. Default SimpleStrategy RF 1 (local); production: NetworkTopologyStrategy, 3 per DC. */
  replication?: Record<string, string | number>;
  /** Default localQuorum. */
  consistency?: keyof typeof types.consistencies;
  /** Bound on reads and writes. Default 2000 ms. */
  timeoutMs?: number;
  /** Bound on applyView (schema changes wait for schema agreement). Default 30000 ms. */
  schemaTimeoutMs?: number;
}

// Table per view version: partition key entity, clustered by (tile_start, aggregation), with the
// entity's newest event time as a static column, so one partition read returns everything.
// Cassandra names are [a-z0-9_]{1,48}: a readable slug plus a hash of the exact name and version.
function tableName(view: string, version: string): string {
  const slug = view
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 24);
  const hash = createHash("sha256").update(viewKey(view, version)).digest("hex").slice(0, 10);
  return `tiles_${slug}_${hash}`;
}

/**
 * Cassandra TTLs are whole seconds counted from the current whole second, so a cell can expire up
 * to 1 s before now + ttl: round up and add a second. Reads filter the extra life away exactly.
 */
const ttlSeconds = (ms: number) => Math.ceil(ms / 1000) + 1;

const cqlString = (value: string) => `'${value.replaceAll("'", "''")}'`;

// Response codes that mean "not now" rather than "never".
const codes = types.responseErrorCodes;
const TRANSIENT_CODES = new Set<number>([
  codes.unavailableException,
  codes.overloaded,
  codes.isBootstrapping,
  codes.truncateError,
  codes.writeTimeout,
  codes.readTimeout,
  codes.readFailure,
  codes.writeFailure,
]);

function translate(err: unknown, what: string): OnlineStoreError {
  if (err instanceof OnlineStoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const transient =
    err instanceof errors.NoHostAvailableError ||
    err instanceof errors.OperationTimedOutError ||
    err instanceof errors.BusyConnectionError ||
    (err instanceof errors.ResponseError && TRANSIENT_CODES.has((err as { code: number }).code));
  if (transient) return new StoreUnavailableError("cassandra", `${what}: ${message}`, { cause: err });
  const hint = /batch too large/i.test(message)
    ? " (the flush exceeds the server's batch_size_fail_threshold: flush fewer tiles at a time)"
    : "";
  return new StoreRequestError("cassandra", `${what}: ${message}${hint}`, { cause: err });
}

/** How many partition reads one readTiles keeps in flight (the driver refuses past ~2048 per connection). */
const READ_CONCURRENCY = 256;

/**
 * Cassandra. A flush is one logged batch over tile partitions and the offsets partition: the
 * batchlog guarantees that all of it is applied eventually, even if the coordinator dies, but a
 * reader may briefly see part of it (no isolation across partitions). The processor only relies
 * on the first property. Cassandra refuses batches above batch_size_fail_threshold (50 KiB by
 * default), which caps the flush size; see the README.
 */
export class CassandraOnlineStore implements OnlineStore {
  private readonly client: cassandra.Client;
  private readonly views = new ViewRegistry("cassandra");
  private readonly tables = new Map<string, string>();
  private readonly keyspace: string;
  private readonly replication: Record<string, string | number>;
  private readonly consistency: number;
  private readonly timeoutMs: number;
  private readonly schemaTimeoutMs: number;
  /** Schema changes are not prepared and wait for schema agreement, so they get the longer timeout. */
  private readonly ddl: cassandra.QueryOptions;
  private keyspaceReady: Promise<void> | undefined;
  private closed = false;

  constructor(config: Omit<CassandraOnlineStoreConfig, "kind">) {
    if (!/^[a-zA-Z][a-zA-Z0-9_]{0,47}$/.test(config.keyspace)) {
      throw new StoreRequestError(
        "cassandra",
        `keyspace ${JSON.stringify(config.keyspace)} is not a valid name`,
      );
    }
    this.keyspace = config.keyspace;
    this.replication = config.replication ?? { class: "SimpleStrategy", replication_factor: 1 };
    this.consistency = types.consistencies[config.consistency ?? "localQuorum"];
    this.timeoutMs = config.timeoutMs ?? 2000;
    this.schemaTimeoutMs = config.schemaTimeoutMs ?? 30_000;
    this.ddl = { prepare: false, readTimeout: this.schemaTimeoutMs };
    this.client = new cassandra.Client({
      contactPoints: config.contactPoints,
      localDataCenter: config.localDataCenter,
      // Token-aware: a prepared statement's partition key routes it straight to a replica.
      policies: {
        loadBalancing: new policies.loadBalancing.DefaultLoadBalancingPolicy({
          localDc: config.localDataCenter,
        }),
      },
      encoding: { useBigIntAsLong: true },
      socketOptions: { connectTimeout: this.timeoutMs, readTimeout: this.timeoutMs },
      queryOptions: { consistency: this.consistency, prepare: true },
    });
  }

  async applyView(view: OnlineView): Promise<void> {
    this.views.add(view);
    const table = tableName(view.name, view.version);
    await this.call("applyView", this.schemaTimeoutMs, async () => {
      await this.ensureKeyspace();
      // default_time_to_live is a backstop: every write sets its own TTL. Expired cells become
      // tombstones; with TTL-only deletes a short gc_grace (3 h, the default hint window) is safe.
      await this.client.execute(
        `CREATE TABLE IF NOT EXISTS ${this.keyspace}.${table} (
           entity text, tile_start bigint, aggregation text, state blob,
           newest_event_time bigint static, fresh_until bigint static,
           PRIMARY KEY ((entity), tile_start, aggregation))
         WITH default_time_to_live = ${ttlSeconds(view.retentionMs)} AND gc_grace_seconds = 10800
           AND comment = ${cqlString(`tessera view ${view.name} version ${view.version}`)}`,
        [],
        this.ddl,
      );
    });
    this.tables.set(viewKey(view.name, view.version), table);
  }

  async writeBatch(batch: WriteBatch): Promise<void> {
    validateBatch("cassandra", this.views, batch);
    const now = Date.now();
    const queries: { query: string; params: unknown[] }[] = [];
    for (const tile of batch.tiles) {
      const { retentionMs } = this.views.get(tile.view, tile.version);
      if (!tileAlive(tile.tileStart, retentionMs, now)) continue;
      // TTL from the tile's start, not from the write: the tile expires at tileStart + retention,
      // as on every backend.
      const ttl = ttlSeconds(tile.tileStart + retentionMs - now);
      queries.push({
        query: `INSERT INTO ${this.keyspace}.${this.table(tile.view, tile.version)} (entity, tile_start, aggregation, state) VALUES (?, ?, ?, ?) USING TTL ?`,
        params: [
          tile.entity,
          BigInt(tile.tileStart),
          tile.aggregation,
          Buffer.from(tile.state.buffer, tile.state.byteOffset, tile.state.byteLength),
          ttl,
        ],
      });
    }
    for (const f of batch.freshness) {
      const { retentionMs } = this.views.get(f.view, f.version);
      queries.push({
        query: `UPDATE ${this.keyspace}.${this.table(f.view, f.version)} USING TTL ? SET newest_event_time = ?, fresh_until = ? WHERE entity = ?`,
        params: [ttlSeconds(retentionMs), BigInt(f.eventTime), BigInt(now + retentionMs), f.entity],
      });
    }
    for (const o of batch.offsets) {
      queries.push({
        query: `INSERT INTO ${this.keyspace}.offsets (consumer_group, topic, kafka_partition, last_offset) VALUES (?, ?, ?, ?)`,
        params: [o.consumerGroup, o.topic, o.partition, BigInt(o.offset)],
      });
    }
    if (queries.length === 0) return;
    await this.call("writeBatch", this.timeoutMs, async () => {
      await this.client.batch(queries, { prepare: true, logged: true, consistency: this.consistency });
    });
  }

  async readTiles(
    view: string,
    version: string,
    entities: readonly string[],
    fromTileStart: number,
    toTileStart?: number,
  ): Promise<Map<string, EntityTiles>> {
    const { retentionMs } = this.views.get(view, version);
    validateRange("cassandra", fromTileStart, toTileStart);
    const now = Date.now();
    // Expired tiles are filtered in the query: TTLs are whole seconds, so a cell may outlive its tile by < 1 s.
    const from = BigInt(Math.max(fromTileStart, now - retentionMs + 1));
    const to = BigInt(toTileStart ?? Number.MAX_SAFE_INTEGER);
    const query = `SELECT tile_start, aggregation, state, newest_event_time, fresh_until FROM ${this.keyspace}.${this.table(view, version)} WHERE entity = ? AND tile_start >= ? AND tile_start <= ?`;
    const unique = [...new Set(entities)];
    const result = new Map<string, EntityTiles>();
    await this.call("readTiles", this.timeoutMs, async () => {
      let next = 0;
      const worker = async () => {
        while (next < unique.length) {
          const entity = unique[next++]!;
          result.set(entity, await this.readEntity(query, [entity, from, to], now));
        }
      };
      await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, unique.length) }, worker));
    });
    return new Map(entities.map((entity) => [entity, result.get(entity)!]));
  }

  async readOffsets(consumerGroup: string, topic: string): Promise<Map<number, number>> {
    const offsets = new Map<number, number>();
    // The first call may have to create the offsets table: give it the schema timeout.
    const ms = this.keyspaceReady ? this.timeoutMs : this.schemaTimeoutMs;
    await this.call("readOffsets", ms, async () => {
      await this.ensureKeyspace();
      const rows = await this.client.execute(
        `SELECT kafka_partition, last_offset FROM ${this.keyspace}.offsets WHERE consumer_group = ? AND topic = ?`,
        [consumerGroup, topic],
      );
      for (const row of rows)
        offsets.set(row.get("kafka_partition") as number, Number(row.get("last_offset")));
    });
    return offsets;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await withTimeout("cassandra", "close", this.timeoutMs, this.client.shutdown()).catch(() => {});
  }

  private async readEntity(query: string, params: unknown[], now: number): Promise<EntityTiles> {
    const out: EntityTiles = { tiles: [], newestEventTime: null };
    let pageState: string | undefined;
    do {
      const page = await this.client.execute(query, params, { fetchSize: 5000, pageState });
      for (const row of page.rows) {
        const newest = row.get("newest_event_time") as bigint | null;
        const until = row.get("fresh_until") as bigint | null;
        if (newest !== null && until !== null && Number(until) > now) out.newestEventTime = Number(newest);
        // A partition with only its static column set returns one row with null clustering columns.
        const tileStart = row.get("tile_start") as bigint | null;
        if (tileStart === null) continue;
        out.tiles.push({
          aggregation: row.get("aggregation") as string,
          tileStart: Number(tileStart),
          state: bytes(row.get("state") as Buffer),
        });
      }
      pageState = page.pageState ?? undefined;
    } while (pageState);
    return sortTiles(out);
  }

  /** Keyspace and offsets table, once per store instance. */
  private ensureKeyspace(): Promise<void> {
    this.keyspaceReady ??= (async () => {
      const replication = Object.entries(this.replication)
        .map(([key, value]) => `${cqlString(key)}: ${cqlString(String(value))}`)
        .join(", ");
      await this.client.execute(
        `CREATE KEYSPACE IF NOT EXISTS ${this.keyspace} WITH replication = {${replication}}`,
        [],
        this.ddl,
      );
      await this.client.execute(
        `CREATE TABLE IF NOT EXISTS ${this.keyspace}.offsets (
           consumer_group text, topic text, kafka_partition int, last_offset bigint,
           PRIMARY KEY ((consumer_group, topic), kafka_partition))`,
        [],
        this.ddl,
      );
    })().catch((err) => {
      this.keyspaceReady = undefined;
      throw err;
    });
    return this.keyspaceReady;
  }

  private table(view: string, version: string): string {
    const table = this.tables.get(viewKey(view, version));
    if (!table)
      throw new StoreRequestError(
        "cassandra",
        `view ${view}@${version} was not applied (call applyView first)`,
      );
    return table;
  }

  private async call(what: string, ms: number, fn: () => Promise<void>): Promise<void> {
    if (this.closed) throw new StoreUnavailableError("cassandra", `${what}: store is closed`);
    try {
      await withTimeout("cassandra", what, ms, fn());
    } catch (err) {
      throw translate(err, what);
    }
  }
}
