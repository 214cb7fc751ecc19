/**
 * One view's state within one partition: the incremental tiles of the entities held in memory and
 * which of them changed since the last flush. No I/O: the processor loads entities from the store
 * and writes what `takeDirty()` returns.
 */
import type { FreshnessWrite, EntityTiles as StoredEntity, TileWrite } from "@tessera/stores";
import {
  type EntityState,
  EntityTiles,
  type FeatureVector,
  isLate,
  type PreparedEvent,
  type ViewRuntime,
} from "@tessera/transforms";

/**
 * Events stamped ahead of processing time wait outside the tiles until the clock passes them
 * (libs/transforms EntityTiles). They are stored as one more "aggregation" of the entity, under the
 * flush's processing time rounded down to a second: the newest such field is the current list
 * (empty bytes: none). Readers that finalise tiles skip it as an unknown feature.
 */
export const PENDING = "__pending";

interface Held {
  tiles: EntityTiles;
  /** Newest event time applied (or stored) for the entity: the freshness the store keeps. */
  newest: number;
}

/** One view's slice of a partition. */
export class ViewSlot {
  /** Insertion order is recency order: an entity touched again is moved to the end. */
  readonly entities = new Map<string, Held>();
  private readonly dirty = new Set<string>();

  constructor(readonly runtime: ViewRuntime) {}

  has(entity: string): boolean {
    return this.entities.has(entity);
  }

  /** Loads an entity from what the store returned (unknown entities come back empty). */
  restore(entity: string, stored: StoredEntity): void {
    const state: EntityState = { tiles: [], pending: null };
    let pendingAt = Number.NEGATIVE_INFINITY;
    for (const tile of stored.tiles) {
      if (tile.aggregation === PENDING) {
        if (tile.tileStart > pendingAt) {
          pendingAt = tile.tileStart;
          state.pending = tile.state.byteLength > 0 ? tile.state : null;
        }
      } else {
        state.tiles.push({ feature: tile.aggregation, tileStart: tile.tileStart, bytes: tile.state });
      }
    }
    this.entities.set(entity, {
      tiles: EntityTiles.restore(this.runtime, entity, state),
      newest: stored.newestEventTime ?? Number.NEGATIVE_INFINITY,
    });
  }

  /** Late/future judgement against processing time `now`; undefined when the event is on time. */
  judge(
    event: PreparedEvent,
    now: number,
    maxSkewMs: number,
  ): { reason: "late" | "future"; detail: string } | undefined {
    const { retentionMs, name } = this.runtime.view;
    if (isLate(event.ts, now, retentionMs)) {
      return {
        reason: "late",
        detail: `view ${name}: event time ${event.ts} is older than its retention (${retentionMs} ms) before processing time ${now}`,
      };
    }
    if (event.ts > now + maxSkewMs) {
      return {
        reason: "future",
        detail: `view ${name}: event time ${event.ts} is more than ${maxSkewMs} ms ahead of processing time ${now}`,
      };
    }
    return undefined;
  }

  /** Applies an on-time event of an entity already held (restored or new). */
  apply(event: PreparedEvent, now: number): void {
    let held = this.entities.get(event.entity);
    if (!held) {
      held = { tiles: new EntityTiles(this.runtime), newest: Number.NEGATIVE_INFINITY };
      this.entities.set(event.entity, held);
    } else if (!this.dirty.has(event.entity)) {
      // First touch since the last flush: move to the recent end (eviction takes from the front).
      this.entities.delete(event.entity);
      this.entities.set(event.entity, held);
    }
    held.tiles.add(event, now);
    if (event.ts > held.newest) held.newest = event.ts;
    this.dirty.add(event.entity);
  }

  get dirtyCount(): number {
    return this.dirty.size;
  }

  /** The absolute states of every tile touched since the last call, and the touched entities. */
  takeDirty(now: number): { tiles: TileWrite[]; freshness: FreshnessWrite[]; touched: string[] } {
    const { name: view, version } = this.runtime.view;
    const tiles: TileWrite[] = [];
    const freshness: FreshnessWrite[] = [];
    const pendingAt = Math.floor(now / 1000) * 1000;
    for (const entity of this.dirty) {
      const held = this.entities.get(entity)!;
      const state = held.tiles.takeDirty();
      for (const t of state.tiles) {
        tiles.push({ view, version, entity, tileStart: t.tileStart, aggregation: t.feature, state: t.bytes });
      }
      // Non-null when the pending list changed, including to empty once it folded into tiles.
      if (state.pending !== null) {
        tiles.push({
          view,
          version,
          entity,
          tileStart: pendingAt,
          aggregation: PENDING,
          state: state.pending,
        });
      }
      freshness.push({ view, version, entity, eventTime: held.newest });
    }
    const touched = [...this.dirty];
    this.dirty.clear();
    return { tiles, freshness, touched };
  }

  valueAt(entity: string, t: number): FeatureVector {
    return this.entities.get(entity)!.tiles.valueAt(t);
  }

  newestOf(entity: string): number {
    return this.entities.get(entity)!.newest;
  }

  /** Drops up to `count` clean (flushed) entities, least recently touched first. Returns how many went. */
  evict(count: number): number {
    let gone = 0;
    for (const entity of this.entities.keys()) {
      if (gone >= count) break;
      if (this.dirty.has(entity)) continue;
      this.entities.delete(entity);
      gone++;
    }
    return gone;
  }

  /** Drops tiles past retention and entities left with nothing. */
  prune(now: number): void {
    for (const [entity, held] of this.entities) {
      if (this.dirty.has(entity)) continue;
      if (!held.tiles.prune(now)) this.entities.delete(entity);
    }
  }

  /**
   * Tiles held, for the gauge: exact up to `sample` entities, else extrapolated from the first
   * `sample` (counting means serialising, too dear to do for every entity at every scrape).
   */
  tilesHeld(sample = 2000): number {
    let seen = 0;
    let tiles = 0;
    for (const held of this.entities.values()) {
      if (seen === sample) break;
      tiles += held.tiles.exportState().tiles.length;
      seen++;
    }
    return seen === 0 ? 0 : Math.round((tiles / seen) * this.entities.size);
  }
}
