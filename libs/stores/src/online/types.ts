/**
 * The online store: where the stream processor keeps each entity's tile state and each partition's
 * offset, and where the feature server reads the states. It stores tile state, never final values
 * (finalisation happens at request time), and it is sized for exactly two callers:
 *
 * - the stream processor: `applyView` at start, `claimPartition` when it takes a partition over,
 *   `readStates` to (re)load entities, `writeBatch` once per micro-batch flush;
 * - the feature server: `applyView` at start, `readStates` per request.
 *
 * A state is one opaque value per (view, version, entity): libs/transforms' tile-state encoding.
 * Every time below is epoch milliseconds.
 */

/** A view version as the store needs it. `retentionMs` is the state TTL: the largest window plus one hop. */
export interface OnlineView {
  name: string;
  version: string;
  retentionMs: number;
}

/** The absolute (not incremental) state of one entity for one view version. */
export interface StateWrite {
  view: string;
  version: string;
  entity: string;
  /** Encoded tile state; opaque to the store. */
  state: Uint8Array;
  /** When no read can use it any more: the store frees it then (a write already past it deletes). */
  expiresAt: number;
}

/** Who writes a partition: its consumer group, topic and partition, and the epoch its claim returned. */
export interface PartitionOwner {
  consumerGroup: string;
  topic: string;
  partition: number;
  epoch: number;
}

/** What a claim returns: the new owner's epoch and the offset stored for the partition (−1: none). */
export interface Claim {
  epoch: number;
  offset: number;
}

/** One micro-batch flush of one partition. See `OnlineStore.writeBatch`. */
export interface WriteBatch {
  owner: PartitionOwner;
  /** The partition's offset the store should hold now: what this owner claimed or last wrote. */
  expectedOffset: number;
  /** The partition's last applied offset, stored with the states. */
  offset: number;
  states: readonly StateWrite[];
}

/**
 * Fencing. Ownership is the store's, not the process's: `claimPartition` makes the caller the
 * partition's owner with an epoch higher than any before it, and every flush is checked against it
 * inside the store's own atomic write. A writer whose epoch is no longer the partition's — it stalled
 * past its session and another replica claimed the partition — gets `StoreFencedError` ("epoch")
 * and must drop its state; so does one whose `expectedOffset` is above what the store holds
 * ("offset": the store lost writes, e.g. a Redis failover, and the owner must reload and replay). A
 * stored offset above the expected one is the owner's own earlier attempt whose reply was lost: a
 * retry after `StoreUnavailableError` may expect the offset from before it.
 * A state written by a newer epoch is never overwritten by an older one.
 *
 * Atomicity: a flush's states and offset land together on Redis (one node) and memory. On Redis
 * Cluster (one write per hash slot) and Cassandra (one write per partition) the states land before
 * the offset, each whole; a crash between them leaves states ahead of the stored offset, which is
 * safe because every state carries the log position it includes (libs/transforms) and replayed
 * offsets are skipped per entity.
 *
 * Retention: a state is visible until its `expiresAt` (writer's clock); the backend frees it then.
 *
 * Errors: every call settles within the configured timeout. `StoreUnavailableError` (retriable:
 * connection loss, timeout, overload), `StoreFencedError` (not retriable: ownership lost), or
 * `StoreRequestError` (not retriable: bad input, view not applied, value the backend refuses). A
 * `writeBatch` that failed as unavailable may or may not have been applied; retrying it is safe.
 */
export interface OnlineStore {
  /**
   * Create what the view version needs (Redis: nothing but the registration; Cassandra: keyspace and
   * table). Idempotent. Each process must apply a view before it writes or reads it.
   */
  applyView(view: OnlineView): Promise<void>;
  /** Takes a partition over: a new epoch for it, and the offset stored so far, in one atomic step. */
  claimPartition(consumerGroup: string, topic: string, partition: number): Promise<Claim>;
  /** Writes states and the partition's offset if `owner` still owns it and the offset is as expected. */
  writeBatch(batch: WriteBatch): Promise<void>;
  /** The state of each entity, in the order asked (null: none), in one round trip per node. */
  readStates(view: string, version: string, entities: readonly string[]): Promise<(Uint8Array | null)[]>;
  /** Stored offsets of a consumer group on a topic: partition → last applied offset. */
  readOffsets(consumerGroup: string, topic: string): Promise<Map<number, number>>;
  close(): Promise<void>;
}
