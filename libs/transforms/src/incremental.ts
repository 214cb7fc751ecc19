import type { FeatureValue } from "./aggregators/index.js";
import { ByteReader, ByteWriter } from "./bytes.js";
import type { Row, View } from "./definitions/types.js";
import { type FeatureVector, type PreparedEvent, type ViewRuntime, viewRuntime } from "./events.js";
import { DEFAULT_MAX_SKEW_MS, isExpired, isLate, windowStart } from "./windows.js";

/** What happened to one event. Everything but "applied" and "filtered" belongs on the dead-letter topic. */
export type ApplyResult =
  | { status: "applied" }
  | { status: "filtered"; reason: string }
  | { status: "late" | "future"; entity: string; reason: string }
  | { status: "invalid"; reason: string };

/** One shared object: the hot path allocates nothing for an applied event. */
const APPLIED: ApplyResult = Object.freeze({ status: "applied" });

/** One tile of one feature, as the online store keeps it: opaque bytes under (feature, tile start). */
export interface StoredTile {
  feature: string;
  tileStart: number;
  bytes: Uint8Array;
}

/** An entity's whole state: its tiles plus events stamped ahead of processing time (see EntityTiles). */
export interface EntityState {
  tiles: StoredTile[];
  /** Encoded pending events, or null when there are none. */
  pending: Uint8Array | null;
}

/** Processing time after which a tile can never be read again: a TTL for stores (Redis EXPIRE, Cassandra TTL). */
export function tileExpiresAt(tileStartMs: number, hopMs: number, retentionMs: number): number {
  return tileStartMs + hopMs + retentionMs;
}

/**
 * The incremental evaluator for one entity: tiles per hop, applied in any arrival order.
 *
 * Events stamped before processing time `now` go straight into their tiles. Events stamped at or after
 * `now` (allowed up to the skew) wait as "pending" and fold into tiles once `now` passes them: that
 * keeps `valueAt(t)` exact — only events with ts < t — for every t ≥ the latest `now` seen, which is
 * how the feature server reads (t = request time). For t earlier than that, tiles may include events
 * in [t, now): serve with the request clock, never a stale one.
 *
 * Memory matters here (one of these per live entity), so all hop groups share one Map keyed by
 * `k·G + g` (tile index k of group g, G groups): small integers, one Map per entity.
 */
export class EntityTiles {
  private readonly tiles = new Map<number, unknown[]>();
  private pending: PreparedEvent[] = [];
  /** Tile keys touched since the last takeDirty(). */
  private dirty: Set<number> | undefined;
  private pendingDirty = false;
  /** Per group, the key and states of the tile the last event went to: most events land there again. */
  private readonly lastKey: number[];
  private readonly lastStates: (unknown[] | undefined)[];

  constructor(private readonly runtime: ViewRuntime) {
    this.lastKey = runtime.groups.map(() => Number.NaN);
    this.lastStates = runtime.groups.map(() => undefined);
  }

  private keyOf(start: number, g: number): number {
    return (start / this.runtime.groups[g]!.hopMs) * this.runtime.groups.length + g;
  }

  /** Key → [group, tile start]. */
  private decode(key: number): [number, number] {
    const G = this.runtime.groups.length;
    const g = ((key % G) + G) % G;
    return [g, ((key - g) / G) * this.runtime.groups[g]!.hopMs];
  }

  /** Adds an event already judged on time (not late, not beyond the skew) at processing time `now`. */
  add(event: PreparedEvent, now: number): void {
    this.fold(now);
    if (event.ts >= now) {
      this.pending.push(event);
      this.pendingDirty = true;
      return;
    }
    this.addToTiles(event);
  }

  private addToTiles(event: PreparedEvent): void {
    const { aggregators, groups } = this.runtime;
    for (let g = 0; g < groups.length; g++) {
      const { hopMs, features } = groups[g]!;
      const key = Math.floor(event.ts / hopMs) * groups.length + g;
      let states = this.lastStates[g];
      if (key !== this.lastKey[g] || !states) {
        states = this.tiles.get(key);
        if (!states) {
          states = features.map((f) => aggregators[f]!.init());
          this.tiles.set(key, states);
        }
        this.lastKey[g] = key;
        this.lastStates[g] = states;
        this.dirty ??= new Set();
        this.dirty.add(key);
      }
      for (let j = 0; j < features.length; j++) {
        const f = features[j]!;
        const input = event.inputs[f];
        if (input !== null && input !== undefined)
          states[j] = aggregators[f]!.add(states[j], input, event.ts, event.seq);
      }
    }
  }

  /** Forget the last-tile shortcut (after takeDirty or prune, so the next event marks its tile again). */
  private resetLast(): void {
    this.lastStates.fill(undefined);
  }

  /** Moves pending events stamped before `now` into their tiles. */
  fold(now: number): void {
    if (this.pending.length === 0) return;
    const ready = this.pending.filter((e) => e.ts < now);
    if (ready.length === 0) return;
    this.pending = this.pending.filter((e) => e.ts >= now);
    this.pendingDirty = true;
    for (const event of ready) this.addToTiles(event);
  }

  /** Drops tiles no value at t ≥ now can read. Returns whether anything is left. */
  prune(now: number): boolean {
    for (const key of this.tiles.keys()) {
      const [g, start] = this.decode(key);
      const { hopMs } = this.runtime.groups[g]!;
      if (isExpired(start, hopMs, now, this.runtime.view.retentionMs)) this.tiles.delete(key);
    }
    this.resetLast();
    return this.tiles.size > 0 || this.pending.length > 0;
  }

  /** Feature values at time t: each feature aggregates exactly its events with windowStart(t) ≤ ts < t. */
  valueAt(t: number): FeatureVector {
    const { view, aggregators, groups } = this.runtime;
    const out: FeatureVector = {};
    const accs = view.features.map((_, f) => aggregators[f]!.init());
    const froms = view.features.map((f) => windowStart(t, f.windowMs, f.hopMs));
    for (const [key, states] of this.tiles) {
      const [g, start] = this.decode(key);
      if (start >= t) continue;
      groups[g]!.features.forEach((f, j) => {
        if (start >= froms[f]!) accs[f] = aggregators[f]!.merge(accs[f], states[j]);
      });
    }
    for (const e of this.pending) {
      if (e.ts >= t) continue;
      view.features.forEach((_, f) => {
        const input = e.inputs[f];
        if (e.ts >= froms[f]! && input !== null && input !== undefined) {
          accs[f] = aggregators[f]!.add(accs[f], input, e.ts, e.seq);
        }
      });
    }
    view.features.forEach((feature, f) => {
      out[feature.name] = aggregators[f]!.finalize(accs[f]) as FeatureValue;
    });
    return out;
  }

  /** The tiles changed since the last call (and the pending list, when it changed). */
  takeDirty(): EntityState {
    const tiles: StoredTile[] = [];
    for (const key of this.dirty ?? []) tiles.push(...this.encodeTile(key));
    this.dirty = undefined;
    this.resetLast();
    const pending = this.pendingDirty ? this.encodePending() : null;
    this.pendingDirty = false;
    return { tiles, pending };
  }

  /** Everything, for a full snapshot of the entity. */
  exportState(): EntityState {
    const tiles: StoredTile[] = [];
    for (const key of this.tiles.keys()) tiles.push(...this.encodeTile(key));
    return { tiles, pending: this.pending.length > 0 ? this.encodePending() : null };
  }

  private encodeTile(key: number): StoredTile[] {
    const states = this.tiles.get(key);
    if (!states) return []; // pruned since it was touched
    const [g, tileStart] = this.decode(key);
    return this.runtime.groups[g]!.features.map((f, j) => ({
      feature: this.runtime.view.features[f]!.name,
      tileStart,
      bytes: this.runtime.aggregators[f]!.serialize(states[j]),
    }));
  }

  private encodePending(): Uint8Array {
    const out = new ByteWriter().varuint(this.pending.length);
    for (const e of this.pending) {
      out.f64(e.ts).f64(e.seq);
      for (const input of e.inputs) out.value(input);
    }
    return out.finish();
  }

  /** Rebuilds an entity from stored tiles (any subset, e.g. only those a request needs) and pending bytes. */
  static restore(runtime: ViewRuntime, entity: string, state: EntityState): EntityTiles {
    const tiles = new EntityTiles(runtime);
    const featureIndex = new Map(runtime.view.features.map((f, i) => [f.name, i]));
    for (const stored of state.tiles) {
      const f = featureIndex.get(stored.feature);
      if (f === undefined) continue; // a feature of another version: keys carry the version, so only by misuse
      const g = runtime.hopOf[f]!;
      const group = runtime.groups[g]!;
      if (stored.tileStart % group.hopMs !== 0) {
        throw new RangeError(`tile start ${stored.tileStart} is not a multiple of the hop ${group.hopMs}`);
      }
      const key = tiles.keyOf(stored.tileStart, g);
      let states = tiles.tiles.get(key);
      if (!states) {
        states = group.features.map((i) => runtime.aggregators[i]!.init());
        tiles.tiles.set(key, states);
      }
      states[group.features.indexOf(f)] = runtime.aggregators[f]!.deserialize(stored.bytes);
    }
    if (state.pending) {
      const input = new ByteReader(state.pending);
      const n = input.varuint();
      for (let i = 0; i < n; i++) {
        const ts = input.f64();
        const seq = input.f64();
        const inputs = runtime.view.features.map(() => input.value());
        tiles.pending.push({ ok: true, entity, ts, seq, inputs });
      }
    }
    return tiles;
  }
}

export interface ViewStateOptions {
  /** How far ahead of processing time an event may be stamped (default 5 min); further is "future". */
  maxSkewMs?: number;
}

/**
 * The incremental evaluator of a view: a tile map per entity. The stream processor calls
 * `apply(row, { offset, now })` per record and flushes `takeDirty()`; `now` is processing time
 * (wall clock), against which late and future events are judged.
 */
export class ViewState {
  readonly runtime: ViewRuntime;
  private readonly entities = new Map<string, EntityTiles>();
  private readonly dirty = new Set<string>();
  private readonly maxSkewMs: number;
  private now = Number.NEGATIVE_INFINITY;

  constructor(view: View, options: ViewStateOptions = {}) {
    this.runtime = viewRuntime(view);
    this.maxSkewMs = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  }

  /** Applies one record at log position `offset` (ties in first/last go to the higher offset). */
  apply(row: Row, position: { offset: number; now: number }): ApplyResult {
    const prepared = this.runtime.prepare(row, position.offset);
    if (!prepared.ok) {
      return prepared.filtered
        ? { status: "filtered", reason: prepared.reason }
        : { status: "invalid", reason: prepared.reason };
    }
    return this.applyPrepared(prepared, position.now);
  }

  applyPrepared(event: PreparedEvent, now: number): ApplyResult {
    // Processing time only moves forward, so a clock step back cannot resurrect dropped tiles.
    if (now > this.now) this.now = now;
    const { retentionMs } = this.runtime.view;
    if (isLate(event.ts, this.now, retentionMs)) {
      return {
        status: "late",
        entity: event.entity,
        reason: `event time ${event.ts} is older than the view's retention ${retentionMs} ms before processing time ${this.now}`,
      };
    }
    if (event.ts > this.now + this.maxSkewMs) {
      return {
        status: "future",
        entity: event.entity,
        reason: `event time ${event.ts} is more than ${this.maxSkewMs} ms ahead of processing time ${this.now}`,
      };
    }
    let tiles = this.entities.get(event.entity);
    if (!tiles) {
      tiles = new EntityTiles(this.runtime);
      this.entities.set(event.entity, tiles);
    }
    tiles.add(event, this.now);
    this.dirty.add(event.entity);
    return APPLIED;
  }

  /** The entity's feature values at t (t ≥ processing time for exactness; see EntityTiles). */
  valueAt(entity: string, t: number): FeatureVector {
    const tiles = this.entities.get(entity) ?? new EntityTiles(this.runtime);
    tiles.fold(this.now);
    return tiles.valueAt(t);
  }

  /** Loads an entity's stored state (after a restart or reassignment). */
  restore(entity: string, state: EntityState): void {
    this.entities.set(entity, EntityTiles.restore(this.runtime, entity, state));
  }

  /** Per entity, the tiles changed since the last call: what a flush writes. */
  takeDirty(): Map<string, EntityState> {
    const out = new Map<string, EntityState>();
    for (const entity of this.dirty) {
      const tiles = this.entities.get(entity);
      if (tiles) out.set(entity, tiles.takeDirty());
    }
    this.dirty.clear();
    return out;
  }

  /** Drops expired tiles (the state TTL) and entities left empty; call now and then. */
  prune(now: number = this.now): void {
    for (const [entity, tiles] of this.entities) {
      tiles.fold(now);
      if (!tiles.prune(now)) this.entities.delete(entity);
    }
  }

  get size(): number {
    return this.entities.size;
  }

  get processingTime(): number {
    return this.now;
  }
}

/**
 * Feature server path: finalise an entity's stored tiles at request time t, with the same code that
 * built them. `tiles` may be just those with start ≥ windowStart(t) for each feature.
 */
export function finalizeAt(
  view: View | ViewRuntime,
  entity: string,
  state: EntityState,
  t: number,
): FeatureVector {
  const runtime = "aggregators" in view ? view : viewRuntime(view);
  return EntityTiles.restore(runtime, entity, state).valueAt(t);
}
