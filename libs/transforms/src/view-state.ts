/**
 * The incremental evaluator of one view: an entity dictionary of tile states (tile-state.ts), the
 * late/future judgement against processing time, and which entities changed since the last flush.
 * The stream processor runs one per partition and view; tests and the demo run the same class.
 */
import type { FeatureValue } from "./aggregators/index.js";
import type { Row, View } from "./definitions/types.js";
import { type FeatureVector, type PreparedEvent, type ViewRuntime, viewRuntime } from "./events.js";
import {
  encodeTileState,
  finalizeStored,
  finalizeTiles,
  type LogPosition,
  TileReader,
  TileState,
  tileStateExpiry,
} from "./tile-state.js";
import { DEFAULT_MAX_SKEW_MS, isLate } from "./windows.js";

/** What happened to one event. Everything but "applied", "filtered" and "skipped" belongs on the dead-letter topic. */
export type ApplyResult =
  | { status: "applied" }
  /** The entity's loaded state already includes this log position: applying it again would double-count. */
  | { status: "skipped" }
  | { status: "filtered"; reason: string }
  | { status: "late" | "future"; entity: string; reason: string }
  | { status: "invalid"; reason: string };

/** Shared objects: the hot path allocates nothing for an applied event. */
const APPLIED: ApplyResult = Object.freeze({ status: "applied" });
const SKIPPED: ApplyResult = Object.freeze({ status: "skipped" });

export interface ViewStateOptions {
  /** How far ahead of processing time an event may be stamped (default 5 min); further is "future". */
  maxSkewMs?: number;
}

/** One entity's state as a flush writes it. */
export interface EncodedEntity {
  entity: string;
  /** The tile state value (tile-state.ts encoding). */
  state: Uint8Array;
  /** Processing time after which no read can use it (the store's TTL). */
  expiresAt: number;
  newestEventTime: number;
}

/**
 * Events stamped before processing time go straight into their tiles; events stamped at or after it
 * (up to the skew) wait as pending and fold in once processing time passes them. Values read at
 * t ≥ the latest processing time are exact: only events with ts < t.
 */
export class ViewState {
  readonly runtime: ViewRuntime;
  /** Insertion order is recency order: an entity touched again after a flush moves to the end. */
  readonly entities = new Map<string, TileState>();
  /** Entities changed since the last takeDirty (each once: a TileState's `dirty` flag says whether it is here). */
  private dirty: string[] = [];
  private readonly maxSkewMs: number;
  private readonly reader: TileReader;
  private now = Number.NEGATIVE_INFINITY;
  private readonly scratch: PreparedEvent = { ok: true, entity: "", ts: 0, seq: 0, inputs: [] };

  constructor(view: View | ViewRuntime, options: ViewStateOptions = {}) {
    this.runtime = "layout" in view ? view : viewRuntime(view);
    this.maxSkewMs = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    this.reader = new TileReader(this.runtime.layout);
  }

  /** Applies one record at log position `offset` (ties in first/last go to the higher offset). */
  apply(row: Row, position: { offset: number; now: number }): ApplyResult {
    // One event object, reused: nothing keeps it (pending events are copied).
    const prepared = this.runtime.prepare(row, position.offset, this.scratch);
    if (!prepared.ok) {
      return prepared.filtered
        ? { status: "filtered", reason: prepared.reason }
        : { status: "invalid", reason: prepared.reason };
    }
    return this.applyPrepared(prepared, position.now);
  }

  /** Judges an event against processing time `now`, then adds it. */
  applyPrepared(event: PreparedEvent, now: number): ApplyResult {
    const untimely = this.judge(event, now);
    if (untimely) return untimely;
    return this.add(event, now) ? APPLIED : SKIPPED;
  }

  /** Late or future at processing time `now` (which only moves forward); undefined when on time. */
  judge(event: PreparedEvent, now: number): (ApplyResult & { status: "late" | "future" }) | undefined {
    if (now > this.now) this.now = now;
    const { retentionMs, name } = this.runtime.view;
    if (isLate(event.ts, this.now, retentionMs)) {
      return {
        status: "late",
        entity: event.entity,
        reason: `view ${name}: event time ${event.ts} is older than its retention (${retentionMs} ms) before processing time ${this.now}`,
      };
    }
    if (event.ts > this.now + this.maxSkewMs) {
      return {
        status: "future",
        entity: event.entity,
        reason: `view ${name}: event time ${event.ts} is more than ${this.maxSkewMs} ms ahead of processing time ${this.now}`,
      };
    }
    return undefined;
  }

  /**
   * Adds an event already judged on time. Returns false (and changes nothing) when the entity's loaded
   * state already includes the event's log position — a replayed offset.
   */
  add(event: PreparedEvent, now: number): boolean {
    if (now > this.now) this.now = now;
    let state = this.entities.get(event.entity);
    if (!state) {
      state = new TileState(this.runtime.layout);
      this.entities.set(event.entity, state);
    } else {
      if (event.seq <= state.loadedFrom.offset) return false;
      if (!state.dirty) {
        // First touch since the last flush: to the recent end (eviction takes from the front).
        this.entities.delete(event.entity);
        this.entities.set(event.entity, state);
      }
    }
    state.add(event, this.now);
    if (!state.dirty) {
      state.dirty = true;
      this.dirty.push(event.entity);
    }
    return true;
  }

  has(entity: string): boolean {
    return this.entities.has(entity);
  }

  /**
   * Loads an entity's stored value (null: nothing stored). Events of `partition` at or below the log
   * offset the value includes will be skipped; a value stamped by another partition (the topic was
   * repartitioned) cannot say which of this partition's events it holds, so none are skipped.
   */
  restore(entity: string, value: Uint8Array | null, partition = -1): void {
    if (value === null) {
      this.entities.set(entity, new TileState(this.runtime.layout));
      return;
    }
    const state = this.reader.load(value).toState();
    if (state.loadedFrom.partition !== partition) state.loadedFrom = { partition: -1, offset: -1 };
    this.entities.set(entity, state);
  }

  /** Feature values of an entity at t (t ≥ processing time for exactness). */
  valueAt(entity: string, t: number): FeatureVector {
    const state = this.entities.get(entity) ?? new TileState(this.runtime.layout);
    state.fold(this.now);
    const values: FeatureValue[] = [];
    finalizeTiles(this.runtime.layout, state, t, values);
    const out: FeatureVector = {};
    this.runtime.view.features.forEach((f, i) => {
      out[f.name] = values[i]!;
    });
    return out;
  }

  get dirtyCount(): number {
    return this.dirty.length;
  }

  /** The entities changed since the last call, encoded whole and stamped with the log position they include. */
  takeDirty(position?: LogPosition): EncodedEntity[] {
    const out: EncodedEntity[] = [];
    for (const entity of this.dirty) {
      const state = this.entities.get(entity);
      if (!state?.dirty) continue; // pruned since
      state.dirty = false;
      state.fold(this.now); // pending events already due: folded, the value can carry its window vector
      out.push({
        entity,
        state: encodeTileState(state, position, this.now),
        expiresAt: tileStateExpiry(state),
        newestEventTime: state.newest,
      });
    }
    this.dirty = [];
    return out;
  }

  /**
   * Drops tiles past retention and entities left with nothing. An emptied entity needs no write even
   * if unflushed: whatever the store holds of it has expired too.
   */
  prune(now: number = this.now): void {
    for (const [entity, state] of this.entities) {
      state.fold(now);
      if (state.prune(now)) continue;
      this.entities.delete(entity);
      state.dirty = false;
    }
  }

  /** Drops up to `count` flushed entities, least recently touched first. Returns how many went. */
  evict(count: number): number {
    let gone = 0;
    for (const [entity, state] of this.entities) {
      if (gone >= count) break;
      if (state.dirty) continue;
      this.entities.delete(entity);
      gone++;
    }
    return gone;
  }

  /** Tiles held in memory (records across hop groups), for the gauge. */
  tilesHeld(): number {
    let tiles = 0;
    for (const state of this.entities.values()) for (const n of state.counts) tiles += n;
    return tiles;
  }

  get size(): number {
    return this.entities.size;
  }

  get processingTime(): number {
    return this.now;
  }
}

/**
 * Feature server path: an entity's stored value finalised at request time t (the same code that
 * built it). Returns values by feature name.
 */
export function finalizeAt(view: View | ViewRuntime, value: Uint8Array, t: number): FeatureVector {
  const runtime = "layout" in view ? view : viewRuntime(view);
  const reader = new TileReader(runtime.layout).load(value);
  const values: FeatureValue[] = [];
  finalizeStored(reader, t, values);
  const out: FeatureVector = {};
  runtime.view.features.forEach((f, i) => {
    out[f.name] = values[i]!;
  });
  return out;
}
