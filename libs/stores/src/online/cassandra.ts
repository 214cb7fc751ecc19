import { createHash } from "node:crypto";
import { FORMAT_VERSION } from "@tessera/transforms";
import cassandra from "cassandra-driver";
import { bytes, ViewRegistry, validateBatch, validateIds, validatePartition, viewKey } from "./common.js";
import {
  OnlineStoreError,
  StoreFencedError,
  StoreRequestError,
  StoreUnavailableError,
  withTimeout,
} from "./errors.js";
import type { Claim, OnlineStore, OnlineView, WriteBatch } from "./types.js";

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

// Table per view version: one row per entity holding its whole tile state. Cassandra names are
// [a-z0-9_]{1,48}: a readable slug plus a hash of the exact name, version and state format (a changed
// encoding gets a new table, so old values are never misread).
function tableName(view: string, version: string): string {
  const slug = view
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 24);
  const hash = createHash("sha256")
    .update(`${viewKey(view, version)}\u0000${FORMAT_VERSION}`)
    .digest("hex")
    .slice(0, 10);
  return `states_${slug}_${hash}`;
}

/**
 * Write timestamps order the writers: a state written by epoch e at offset o carries e·2³² + (o mod
 * 2³²), so any write of a newer owner beats any write of an older one, whatever order they arrive
 * in (last write wins per cell), and within one owner a later flush beats an earlier one.
 */
const writeTimestamp = (epoch: number, offset: number) =>
  BigInt(epoch) * 2n ** 32n + BigInt(offset % 2 ** 32);

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

/** Requests one call keeps in flight (the driver refuses past ~2048 per connection). */
const READ_CONCURRENCY = 256;
const WRITE_CONCURRENCY = 256;

/**
 * Cassandra. A flush writes each state as one cell (concurrent single-partition inserts, timestamped
 * by the owner's epoch and offset, so an older owner's write always loses), then sets the partition's
 * offset with a lightweight transaction conditional on the owner's epoch and the expected offset.
 * Claims are lightweight transactions on the group's counter and the partition's row, one partition.
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
  /** Lightweight transactions (Paxos at LOCAL_SERIAL), and reads that see their outcome. */
  private readonly lwt: cassandra.QueryOptions;
  private readonly serialRead: cassandra.QueryOptions;
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
    this.lwt = { prepare: true, serialConsistency: types.consistencies.localSerial };
    this.serialRead = { prepare: true, consistency: types.consistencies.localSerial };
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
        `CREATE TABLE IF NOT EXISTS ${this.keyspace}.${table} (entity text PRIMARY KEY, state blob, expires_at bigint)
         WITH default_time_to_live = ${ttlSeconds(view.retentionMs * 2)} AND gc_grace_seconds = 10800
           AND comment = ${cqlString(`tessera view ${view.name} version ${view.version}`)}`,
        [],
        this.ddl,
      );
    });
    this.tables.set(viewKey(view.name, view.version), table);
  }

  async claimPartition(consumerGroup: string, topic: string, partition: number): Promise<Claim> {
    validatePartition("cassandra", consumerGroup, topic, partition);
    const key = [consumerGroup, topic];
    const row = [consumerGroup, topic, partition];
    const partitions = `${this.keyspace}.partitions`;
    return this.call("claimPartition", this.schemaTimeoutMs, async () => {
      await this.ensureKeyspace();
      // The partition's row and the group's counter exist before the first claim (no-ops after).
      await this.client.execute(
        `INSERT INTO ${partitions} (consumer_group, topic, kafka_partition, owner_epoch, last_offset) VALUES (?, ?, ?, 0, -1) IF NOT EXISTS`,
        row,
        this.lwt,
      );
      await this.client.execute(
        `UPDATE ${partitions} SET epoch = 0 WHERE consumer_group = ? AND topic = ? IF epoch = null`,
        key,
        this.lwt,
      );
      // Compare-and-set on the counter, with the offset read in the same round: retried on contention.
      for (let attempt = 0; attempt < 20; attempt++) {
        const current = (
          await this.client.execute(
            `SELECT epoch, last_offset FROM ${partitions} WHERE consumer_group = ? AND topic = ? AND kafka_partition = ?`,
            row,
            this.serialRead,
          )
        ).first();
        const epoch = current.get("epoch") as bigint;
        const offset = current.get("last_offset") as bigint;
        const claimed = await this.client.batch(
          [
            {
              query: `UPDATE ${partitions} SET epoch = ? WHERE consumer_group = ? AND topic = ? IF epoch = ?`,
              params: [epoch + 1n, ...key, epoch],
            },
            {
              query: `UPDATE ${partitions} SET owner_epoch = ? WHERE consumer_group = ? AND topic = ? AND kafka_partition = ? IF last_offset = ?`,
              params: [epoch + 1n, ...row, offset],
            },
          ],
          this.lwt,
        );
        if (claimed.first().get("[applied]") === true)
          return { epoch: Number(epoch + 1n), offset: Number(offset) };
      }
      throw new StoreUnavailableError(
        "cassandra",
        `claimPartition: partition ${partition} of ${topic} stayed contended`,
      );
    });
  }

  async writeBatch(batch: WriteBatch): Promise<void> {
    validateBatch("cassandra", this.views, batch);
    const { owner } = batch;
    const now = Date.now();
    const timestamp = writeTimestamp(owner.epoch, batch.offset);
    const writes = new Map<string, unknown[][]>();
    const deletes = new Map<string, unknown[][]>();
    for (const s of batch.states) {
      const table = `${this.keyspace}.${this.table(s.view, s.version)}`;
      const ttl = Math.ceil((s.expiresAt - now) / 1000);
      const into = ttl > 0 ? writes : deletes;
      let list = into.get(table);
      if (!list) {
        list = [];
        into.set(table, list);
      }
      list.push(
        ttl > 0
          ? [
              s.entity,
              Buffer.from(s.state.buffer, s.state.byteOffset, s.state.byteLength),
              BigInt(Math.ceil(s.expiresAt)),
              timestamp,
              ttl + 1,
            ]
          : [timestamp, s.entity],
      );
    }
    await this.call("writeBatch", this.timeoutMs, async () => {
      // Each state is one cell, whole; the timestamp decides between writers (see writeTimestamp).
      const concurrent = { concurrencyLevel: WRITE_CONCURRENCY, raiseOnFirstError: true };
      await Promise.all([
        ...[...writes].map(([table, params]) =>
          cassandra.concurrent.executeConcurrent(
            this.client,
            `INSERT INTO ${table} (entity, state, expires_at) VALUES (?, ?, ?) USING TIMESTAMP ? AND TTL ?`,
            params,
            concurrent,
          ),
        ),
        ...[...deletes].map(([table, params]) =>
          cassandra.concurrent.executeConcurrent(
            this.client,
            `DELETE FROM ${table} USING TIMESTAMP ? WHERE entity = ?`,
            params,
            concurrent,
          ),
        ),
      ]);
      const result = await this.client.execute(
        `UPDATE ${this.keyspace}.partitions SET last_offset = ? WHERE consumer_group = ? AND topic = ? AND kafka_partition = ? IF owner_epoch = ? AND last_offset >= ?`,
        [
          BigInt(batch.offset),
          owner.consumerGroup,
          owner.topic,
          owner.partition,
          BigInt(owner.epoch),
          BigInt(batch.expectedOffset),
        ],
        this.lwt,
      );
      const row = result.first();
      if (row.get("[applied]") === true) return;
      // Above the expected offset is this owner's own earlier attempt whose reply was lost: that lands too.
      const held = Number(row.get("owner_epoch") ?? 0);
      const stored = Number(row.get("last_offset") ?? -1);
      const where = `partition ${owner.partition} of ${owner.topic}`;
      throw held !== owner.epoch
        ? new StoreFencedError("cassandra", "epoch", `${where} is owned by epoch ${held}, not ${owner.epoch}`)
        : new StoreFencedError(
            "cassandra",
            "offset",
            `${where} holds offset ${stored}, not ${batch.expectedOffset}`,
          );
    });
  }

  async readStates(
    view: string,
    version: string,
    entities: readonly string[],
  ): Promise<(Uint8Array | null)[]> {
    this.views.get(view, version);
    validateIds("cassandra", entities);
    // TTLs are whole seconds: a cell may outlive its expiresAt by up to 2 s, filtered away exactly here.
    const query = `SELECT state, expires_at FROM ${this.keyspace}.${this.table(view, version)} WHERE entity = ?`;
    const now = Date.now();
    const out: (Uint8Array | null)[] = new Array(entities.length).fill(null);
    await this.call("readStates", this.timeoutMs, async () => {
      let next = 0;
      const worker = async () => {
        while (next < entities.length) {
          const i = next++;
          const row = (await this.client.execute(query, [entities[i]])).first();
          const state = row?.get("state") as Buffer | null | undefined;
          if (state && Number(row!.get("expires_at")) > now) out[i] = bytes(state);
        }
      };
      await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, entities.length) }, worker));
    });
    return out;
  }

  async readOffsets(consumerGroup: string, topic: string): Promise<Map<number, number>> {
    const offsets = new Map<number, number>();
    // The first call may have to create the partitions table: give it the schema timeout.
    const ms = this.keyspaceReady ? this.timeoutMs : this.schemaTimeoutMs;
    await this.call("readOffsets", ms, async () => {
      await this.ensureKeyspace();
      const rows = await this.client.execute(
        `SELECT kafka_partition, last_offset FROM ${this.keyspace}.partitions WHERE consumer_group = ? AND topic = ?`,
        [consumerGroup, topic],
        this.serialRead,
      );
      for (const row of rows) {
        const partition = row.get("kafka_partition") as number | null;
        const offset = Number(row.get("last_offset") ?? -1);
        if (partition !== null && offset >= 0) offsets.set(partition, offset);
      }
    });
    return offsets;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await withTimeout("cassandra", "close", this.timeoutMs, this.client.shutdown()).catch(() => {});
  }

  /** Keyspace and partitions table, once per store instance. */
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
      // Per (group, topic): the claim counter (static); per partition: its owner's epoch and offset.
      await this.client.execute(
        `CREATE TABLE IF NOT EXISTS ${this.keyspace}.partitions (
           consumer_group text, topic text, kafka_partition int,
           epoch bigint static, owner_epoch bigint, last_offset bigint,
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

  private async call<T>(what: string, ms: number, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError("cassandra", `${what}: store is closed`);
    try {
      return await withTimeout("cassandra", what, ms, fn());
    } catch (err) {
      throw translate(err, what);
    }
  }
}
