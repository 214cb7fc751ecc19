import { type OnlineBackend, StoreRequestError } from "./errors.js";
import type { EntityTiles, OnlineView, StoredTile, WriteBatch } from "./types.js";

/** Separates the parts of a view version's identity; never produced by a view name or version of its own. */
export const viewKey = (view: string, version: string) => `${view}\u0000${version}`;

/** The views a store instance has applied, with their retention. */
export class ViewRegistry {
  private readonly views = new Map<string, OnlineView>();

  constructor(private readonly backend: OnlineBackend) {}

  add(view: OnlineView): void {
    const { name, version, retentionMs } = view;
    if (typeof name !== "string" || name === "" || typeof version !== "string" || version === "") {
      throw new StoreRequestError(this.backend, "a view needs a non-empty name and version");
    }
    if (!Number.isSafeInteger(retentionMs) || retentionMs <= 0) {
      throw new StoreRequestError(
        this.backend,
        `view ${name}@${version}: retentionMs must be a positive integer`,
      );
    }
    this.views.set(viewKey(name, version), { name, version, retentionMs });
  }

  get(view: string, version: string): OnlineView {
    const found = this.views.get(viewKey(view, version));
    if (!found) {
      throw new StoreRequestError(
        this.backend,
        `view ${view}@${version} was not applied (call applyView first)`,
      );
    }
    return found;
  }
}

/** A tile is visible while tileStart + retention > now. */
export const tileAlive = (tileStart: number, retentionMs: number, now: number) =>
  tileStart + retentionMs > now;

/** Checks a whole batch before any I/O, so a bad item can never leave half a batch behind. */
export function validateBatch(backend: OnlineBackend, views: ViewRegistry, batch: WriteBatch): void {
  const fail = (message: string) => {
    throw new StoreRequestError(backend, `invalid batch: ${message}`);
  };
  const nonEmpty = (value: unknown) => typeof value === "string" && value !== "";
  for (const tile of batch.tiles) {
    views.get(tile.view, tile.version);
    if (!nonEmpty(tile.entity)) fail(`tile of ${tile.view}@${tile.version} has no entity`);
    if (!nonEmpty(tile.aggregation)) fail(`tile of entity ${tile.entity} has no aggregation`);
    if (!Number.isSafeInteger(tile.tileStart)) fail(`tileStart ${tile.tileStart} is not an integer`);
    if (!(tile.state instanceof Uint8Array)) fail(`state of ${tile.entity}/${tile.aggregation} is not bytes`);
  }
  for (const f of batch.freshness) {
    views.get(f.view, f.version);
    if (!nonEmpty(f.entity)) fail(`freshness of ${f.view}@${f.version} has no entity`);
    if (!Number.isSafeInteger(f.eventTime)) fail(`eventTime ${f.eventTime} is not an integer`);
  }
  for (const o of batch.offsets) {
    if (!nonEmpty(o.consumerGroup) || !nonEmpty(o.topic))
      fail("an offset needs a consumer group and a topic");
    if (!Number.isSafeInteger(o.partition) || o.partition < 0) fail(`partition ${o.partition} is invalid`);
    if (!Number.isSafeInteger(o.offset) || o.offset < 0) fail(`offset ${o.offset} is invalid`);
  }
}

export function validateRange(
  backend: OnlineBackend,
  fromTileStart: number,
  toTileStart: number | undefined,
) {
  if (
    !Number.isSafeInteger(fromTileStart) ||
    (toTileStart !== undefined && !Number.isSafeInteger(toTileStart))
  ) {
    throw new StoreRequestError(backend, `tile range ${fromTileStart}..${toTileStart} is not integers`);
  }
}

const byStartThenAggregation = (a: StoredTile, b: StoredTile) =>
  a.tileStart - b.tileStart || (a.aggregation < b.aggregation ? -1 : a.aggregation > b.aggregation ? 1 : 0);

export function sortTiles(entity: EntityTiles): EntityTiles {
  entity.tiles.sort(byStartThenAggregation);
  return entity;
}

/** A Uint8Array over a driver's Buffer, without copying, so every backend returns the same type. */
export const bytes = (buffer: Buffer): Uint8Array =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
