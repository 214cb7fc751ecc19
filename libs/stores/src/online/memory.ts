import { sortTiles, tileAlive, ViewRegistry, validateBatch, validateRange, viewKey } from "./common.js";
import { StoreUnavailableError } from "./errors.js";
import type { EntityTiles, OnlineStore, OnlineView, WriteBatch } from "./types.js";

export interface MemoryOnlineStoreConfig {
  kind: "memory";
  /** Clock for retention; tests may drive it. */
  now?: () => number;
}

interface MemoryEntity {
  /** `${aggregation}\0${tileStart}` → tile */
  tiles: Map<string, { aggregation: string; tileStart: number; state: Uint8Array }>;
  newestEventTime: number | null;
  /** When the newest event time stops being visible: retention after the write that set it. */
  freshUntil: number;
}

/** Plain Maps with the same semantics as the real stores, for unit tests and the embedded demo. */
export class MemoryOnlineStore implements OnlineStore {
  private readonly views = new ViewRegistry("memory");
  /** viewKey → entity → state */
  private readonly data = new Map<string, Map<string, MemoryEntity>>();
  /** group\0topic → partition → offset */
  private readonly offsets = new Map<string, Map<number, number>>();
  private readonly now: () => number;
  private closed = false;

  constructor(config: Omit<MemoryOnlineStoreConfig, "kind"> = {}) {
    this.now = config.now ?? Date.now;
  }

  async applyView(view: OnlineView): Promise<void> {
    this.open();
    this.views.add(view);
    const key = viewKey(view.name, view.version);
    if (!this.data.has(key)) this.data.set(key, new Map());
  }

  async writeBatch(batch: WriteBatch): Promise<void> {
    this.open();
    validateBatch("memory", this.views, batch);
    const now = this.now();
    for (const tile of batch.tiles) {
      const { retentionMs } = this.views.get(tile.view, tile.version);
      if (!tileAlive(tile.tileStart, retentionMs, now)) continue;
      const entity = this.entity(tile.view, tile.version, tile.entity);
      entity.tiles.set(`${tile.aggregation}\u0000${tile.tileStart}`, {
        aggregation: tile.aggregation,
        tileStart: tile.tileStart,
        state: tile.state.slice(),
      });
    }
    for (const f of batch.freshness) {
      const entity = this.entity(f.view, f.version, f.entity);
      entity.newestEventTime = f.eventTime;
      entity.freshUntil = now + this.views.get(f.view, f.version).retentionMs;
    }
    for (const o of batch.offsets) {
      const key = `${o.consumerGroup}\u0000${o.topic}`;
      let partitions = this.offsets.get(key);
      if (!partitions) {
        partitions = new Map();
        this.offsets.set(key, partitions);
      }
      partitions.set(o.partition, o.offset);
    }
  }

  async readTiles(
    view: string,
    version: string,
    entities: readonly string[],
    fromTileStart: number,
    toTileStart?: number,
  ): Promise<Map<string, EntityTiles>> {
    this.open();
    const { retentionMs } = this.views.get(view, version);
    validateRange("memory", fromTileStart, toTileStart);
    const now = this.now();
    const stored = this.data.get(viewKey(view, version));
    const result = new Map<string, EntityTiles>();
    for (const id of entities) {
      const entity = stored?.get(id);
      const out: EntityTiles = { tiles: [], newestEventTime: null };
      if (entity) {
        for (const [field, tile] of entity.tiles) {
          // Expired tiles are freed here, as Redis and Cassandra free them on their own.
          if (!tileAlive(tile.tileStart, retentionMs, now)) entity.tiles.delete(field);
          else if (
            tile.tileStart >= fromTileStart &&
            (toTileStart === undefined || tile.tileStart <= toTileStart)
          ) {
            out.tiles.push({
              aggregation: tile.aggregation,
              tileStart: tile.tileStart,
              state: tile.state.slice(),
            });
          }
        }
        if (entity.freshUntil > now) out.newestEventTime = entity.newestEventTime;
        if (entity.tiles.size === 0 && entity.freshUntil <= now) stored?.delete(id);
      }
      result.set(id, sortTiles(out));
    }
    return result;
  }

  async readOffsets(consumerGroup: string, topic: string): Promise<Map<number, number>> {
    this.open();
    return new Map(this.offsets.get(`${consumerGroup}\u0000${topic}`));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw new StoreUnavailableError("memory", "store is closed");
  }

  private entity(view: string, version: string, id: string): MemoryEntity {
    const stored = this.data.get(viewKey(view, version))!;
    let entity = stored.get(id);
    if (!entity) {
      entity = { tiles: new Map(), newestEventTime: null, freshUntil: 0 };
      stored.set(id, entity);
    }
    return entity;
  }
}
