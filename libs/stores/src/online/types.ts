/**
 * The online store: where the stream processor keeps tile states and partition offsets, and where
 * the feature server reads them. It stores tiles, never final values (finalisation happens at
 * request time), and it is sized for exactly two callers:
 *
 * - the stream processor: `applyView` at start, `readOffsets` on partition assignment, `readTiles`
 *   to reload an entity's state, `writeBatch` once per micro-batch flush;
 * - the feature server: `applyView` at start, `readTiles` per request.
 *
 * Every time below is epoch milliseconds.
 */

/** A view version as the store needs it. `retentionMs` is the state TTL: the largest window plus one hop. */
export interface OnlineView {
  name: string;
  version: string;
  retentionMs: number;
}

/** The absolute (not incremental) state of one aggregation's tile for one entity. */
export interface TileWrite {
  view: string;
  version: string;
  entity: string;
  /** Start of the tile: k·H for tile k. */
  tileStart: number;
  /** Id of the aggregation (feature) within the view. */
  aggregation: string;
  /** Serialised partial aggregate; opaque to the store. */
  state: Uint8Array;
}

/** The last offset applied from one partition, for one consumer group. */
export interface OffsetWrite {
  consumerGroup: string;
  topic: string;
  partition: number;
  offset: number;
}

/** Newest event time the writer has seen for an entity of a view version (absolute, overwrites). */
export interface FreshnessWrite {
  view: string;
  version: string;
  entity: string;
  eventTime: number;
}

/** One micro-batch flush. Applied all-or-nothing; see `OnlineStore.writeBatch`. */
export interface WriteBatch {
  tiles: readonly TileWrite[];
  offsets: readonly OffsetWrite[];
  freshness: readonly FreshnessWrite[];
}

export interface StoredTile {
  aggregation: string;
  tileStart: number;
  state: Uint8Array;
}

/** What the store holds for one entity. An unknown entity has no tiles and `newestEventTime: null`. */
export interface EntityTiles {
  /** Sorted by tileStart, then aggregation. */
  tiles: StoredTile[];
  newestEventTime: number | null;
}

/**
 * Retention, the same on every backend (measured on the writer's clock, `now`):
 * - a tile is visible while `tileStart + retentionMs > now`; a write of an already expired tile is
 *   dropped, and the backend frees expired tiles (Redis: HDEL on a later write and key expiry;
 *   Cassandra: per-cell TTL);
 * - an entity's newest event time is visible for `retentionMs` after the last write that set it,
 *   so an idle entity disappears entirely.
 *
 * Errors: every call settles within the configured timeout. `StoreUnavailableError` (retriable:
 * connection loss, timeout, overload) or `StoreRequestError` (not retriable: bad input, view not
 * applied, batch the backend refuses). A `writeBatch` that failed with `StoreUnavailableError` may
 * or may not have been applied; because it carries absolute values, retrying it is safe.
 */
export interface OnlineStore {
  /**
   * Create what the view version needs (Redis: nothing but the registration; Cassandra: keyspace and
   * table). Idempotent. Each process must apply a view before it writes or reads it.
   */
  applyView(view: OnlineView): Promise<void>;
  /**
   * Write tiles, offsets and freshness atomically: after a crash the stored offsets always match
   * the stored tiles. That is the processor's exactly-once effect: on reassignment it reads the
   * offsets and skips events at or below them.
   */
  writeBatch(batch: WriteBatch): Promise<void>;
  /**
   * Tiles of each entity with `fromTileStart <= tileStart <= toTileStart` (no upper bound when
   * omitted), with its newest event time, in one round trip. The result has an entry for every
   * requested entity.
   */
  readTiles(
    view: string,
    version: string,
    entities: readonly string[],
    fromTileStart: number,
    toTileStart?: number,
  ): Promise<Map<string, EntityTiles>>;
  /** Stored offsets of a consumer group on a topic: partition → last applied offset. */
  readOffsets(consumerGroup: string, topic: string): Promise<Map<number, number>>;
  close(): Promise<void>;
}
