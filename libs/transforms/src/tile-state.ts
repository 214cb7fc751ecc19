/**
 * The one representation of tile state: how an entity's tiles of one view sit in memory, how they
 * encode to the single binary value the online store keeps, and how values are finalised from
 * either. The stream processor, the feature server, snapshots, backfill and the demo all use it.
 * docs/concepts.md ("Tile state") has the diagram; this comment is the reference.
 *
 * Layout of a view (built once, `viewLayout`): features are grouped by hop; within a group, features
 * that need the same partial aggregate share one *slot* (aggregators/slots.ts: sum, mean and stddev
 * of one column share n/Σx/Σx²). A tile is one *record* of float64 words:
 *
 *     record of hop group g:  [ k | slot 0 words | slot 1 words | … ]      k = tile start / hop
 *
 * An entity's state: per group, its records sorted by k (only tiles that hold events exist), the
 * groups one after another in one Float64Array; a side list for what has no fixed width (sketches,
 * last_k, non-numeric first/last values, exact sums longer than two partials), referenced by index
 * from slot words; events stamped ahead of processing time ("pending"), waiting to fold into tiles.
 *
 * The encoded value (little-endian), written whole and read whole:
 *
 *     0   u8   FORMAT_VERSION          4   u32  hash of the view version
 *     1   u8   hop group count G       8   f64  newest event time (−∞: none)
 *     2   u16  0                       16  f64  log offset the state includes events up to (−1: none)
 *                                      24  i32  log partition of that offset (−1: none)
 *                                      28  u32  pending event count P
 *                                      32  u32  side value count S
 *                                      36  u32  byte offset of the window vector (0: none)
 *     40  G × u32 record counts, padded to 8 bytes
 *     …   the records of every group, as float64 words (8-byte aligned)
 *     …   S × u32 side value lengths, then the side values (aggregator bytes)
 *     …   P pending events: f64 ts, f64 seq, one tagged value per feature
 *     …   window vector: f64 t_v, then per feature a tag byte (bit 7: present) and its value
 *
 * The window vector is every feature's value at t_v, finalised when the value was encoded. For any
 * t with the same window boundaries as t_v (`sameWindows`) exactly the same tiles are in every
 * window, so the values at t are these, bit for bit: a read then needs no merge. A state with
 * pending events has none (which of them count depends on t itself). Readers that predate it
 * ignore it (byte 36 was 0), so it needs no new format version.
 *
 * The feature server finalises straight from these bytes (TileReader: one copy into an aligned
 * scratch buffer, no object per tile); the processor decodes them into a TileState it can add to.
 */
import type { FeatureValue, SideCodec, SideList, SideSource, StateKind } from "./aggregators/index.js";
import { opState } from "./aggregators/index.js";
import type { Finalize } from "./aggregators/slots.js";
import { ByteReader, ByteWriter } from "./bytes.js";
import type { View } from "./definitions/types.js";
import type { PreparedEvent } from "./events.js";
import { murmur3 } from "./hash.js";
import { isExpired, windowStart } from "./windows.js";

/** Bumped whenever the bytes change meaning; online keys carry it too, so old values are never misread. */
export const FORMAT_VERSION = 1;
const HEADER_BYTES = 40;

export interface SlotLayout {
  kind: StateKind;
  /** Word offset within the record. */
  offset: number;
  /** The feature whose input the slot adds (every sharer reads the same input). */
  input: number;
}

export interface GroupLayout {
  hopMs: number;
  /** Words per record: k plus every slot. */
  width: number;
  slots: SlotLayout[];
}

export interface FeatureLayout {
  group: number;
  /** Word offset of the feature's slot within its group's record. */
  offset: number;
  kind: StateKind;
  finalize: Finalize;
  windowMs: number;
  hopMs: number;
  /** The window merge this feature finalises from (features of one slot and window share it). */
  scan: number;
}

/** One merge of a slot's tiles over one window; `at` is where its accumulator sits in the scratch words. */
export interface ScanLayout {
  group: number;
  offset: number;
  kind: StateKind;
  windowMs: number;
  hopMs: number;
  /** A feature that reads this slot's input (for pending events). */
  input: number;
  at: number;
}

export interface ViewLayout {
  view: View;
  groups: GroupLayout[];
  features: FeatureLayout[];
  scans: ScanLayout[];
  versionHash: number;
  /** Words of every scan's accumulator, for finalising. */
  scratchWords: number;
  /** The distinct (window, hop) pairs of the view's features: what decides which tiles a value reads. */
  windows: { windowMs: number; hopMs: number }[];
}

const SQUARED_OPS = new Set(["variance", "stddev"]);

export function viewLayout(view: View): ViewLayout {
  const hops = [...new Set(view.features.map((f) => f.hopMs))];
  const groups: GroupLayout[] = hops.map((hopMs) => ({ hopMs, width: 1, slots: [] }));
  const slotAt = hops.map(() => new Map<string, number>());
  const features: FeatureLayout[] = view.features.map((feature, f) => {
    const g = hops.indexOf(feature.hopMs);
    const group = groups[g]!;
    // sum/mean share their column's moments with a variance/stddev of the same hop when there is one.
    const squares = view.features.some(
      (o) => o.hopMs === feature.hopMs && o.column === feature.column && SQUARED_OPS.has(o.op),
    );
    const { key, kind, finalize } = opState(feature, squares);
    let offset = slotAt[g]!.get(key);
    if (offset === undefined) {
      offset = group.width;
      group.slots.push({ kind, offset, input: f });
      group.width += kind.width;
      slotAt[g]!.set(key, offset);
    }
    return { group: g, offset, kind, finalize, windowMs: feature.windowMs, hopMs: feature.hopMs, scan: -1 };
  });
  // sum_1h and mean_1h (one slot, one window) finalise from one merge of their tiles.
  const scans: ScanLayout[] = [];
  let scratchWords = 0;
  features.forEach((fl, f) => {
    const same = scans.findIndex(
      (s) => s.group === fl.group && s.offset === fl.offset && s.windowMs === fl.windowMs,
    );
    if (same >= 0) {
      fl.scan = same;
      return;
    }
    fl.scan = scans.length;
    scans.push({
      group: fl.group,
      offset: fl.offset,
      kind: fl.kind,
      windowMs: fl.windowMs,
      hopMs: fl.hopMs,
      input: f,
      at: scratchWords,
    });
    scratchWords += fl.kind.width;
  });
  const windows: ViewLayout["windows"] = [];
  for (const { windowMs, hopMs } of features) {
    if (!windows.some((w) => w.windowMs === windowMs && w.hopMs === hopMs)) windows.push({ windowMs, hopMs });
  }
  return {
    view,
    groups,
    features,
    scans,
    versionHash: murmur3(view.version, 0x7e55e7a),
    scratchWords,
    windows,
  };
}

/**
 * Whether every window of the view reads the same tiles at times a and b: a value at t reads tiles
 * k with floor((t − W)/H) ≤ k < ceil(t/H) (windowStart ≤ k·H < t), so both bounds must agree.
 */
export function sameWindows(layout: ViewLayout, a: number, b: number): boolean {
  for (const { windowMs, hopMs } of layout.windows) {
    if (Math.ceil(a / hopMs) !== Math.ceil(b / hopMs)) return false;
    if (Math.floor((a - windowMs) / hopMs) !== Math.floor((b - windowMs) / hopMs)) return false;
  }
  return true;
}

/** What finalising reads: records per group, side values, pending events. */
export interface TileSource extends SideSource {
  readonly words: Float64Array;
  /** Word index of group g's first record. */
  base(g: number): number;
  count(g: number): number;
  readonly pending: readonly PreparedEvent[] | null;
}

/** Which log position a state already includes: events at or below `offset` of `partition`. */
export interface LogPosition {
  partition: number;
  offset: number;
}

export class TileStateError extends RangeError {
  override name = "TileStateError";
}

/** One entity's tiles of one view, in memory, open to new events. */
export class TileState implements TileSource {
  words: Float64Array;
  readonly counts: number[];
  side: SideList = [];
  pending: PreparedEvent[] | null = null;
  /** Newest event time applied (−∞: none). */
  newest = Number.NEGATIVE_INFINITY;
  /** Changed since its view's last flush (ViewState keeps the list). */
  dirty = false;
  /** The log position the loaded state included (partition −1: none): its events are not applied again. */
  loadedFrom: LogPosition = NO_POSITION;
  private used = 0;

  constructor(readonly layout: ViewLayout) {
    this.counts = layout.groups.map(() => 0);
    // Room for four tiles per hop group before the first reallocation.
    this.words = new Float64Array(layout.groups.reduce((n, g) => n + g.width, 0) * 4);
  }

  base(g: number): number {
    let at = 0;
    for (let h = 0; h < g; h++) at += this.counts[h]! * this.layout.groups[h]!.width;
    return at;
  }

  count(g: number): number {
    return this.counts[g]!;
  }

  sideValue(index: number): unknown {
    return this.side[index];
  }

  /** Words in use: the records of every group. */
  get length(): number {
    return this.used;
  }

  /** Adds an event judged on time at processing time `now`: into its tiles, or pending if stamped at or after `now`. */
  add(event: PreparedEvent, now: number): void {
    this.fold(now);
    if (event.ts > this.newest) this.newest = event.ts;
    if (event.ts >= now) {
      this.pending ??= [];
      this.pending.push({ ...event, inputs: [...event.inputs] });
      return;
    }
    this.addToTiles(event.ts, event.seq, event.inputs);
  }

  /** Adds an event to its tile in every group (no clock: the batch evaluator and folding use this). */
  addToTiles(ts: number, seq: number, inputs: readonly unknown[]): void {
    const { groups } = this.layout;
    let at = 0;
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g]!;
      const r = this.record(g, at, Math.floor(ts / group.hopMs));
      const words = this.words;
      for (const slot of group.slots) {
        const input = inputs[slot.input];
        if (input === null || input === undefined) continue;
        slot.kind.add(words, r + slot.offset, this.side, input, ts, seq);
      }
      at += this.counts[g]! * group.width;
    }
  }

  /** Word index of group g's record for tile k (group g starts at word `base`), created if absent. */
  private record(g: number, base: number, k: number): number {
    const { width, slots } = this.layout.groups[g]!;
    const n = this.counts[g]!;
    const words = this.words;
    let i = n;
    // Most events land in the newest tile, or open the next one.
    while (i > 0 && words[base + (i - 1) * width]! > k) i--;
    if (i > 0 && words[base + (i - 1) * width] === k) return base + (i - 1) * width;
    const at = base + i * width;
    this.reserve(width);
    this.words.copyWithin(at + width, at, this.used);
    this.used += width;
    this.counts[g] = n + 1;
    const w = this.words;
    // Words a kind leaves unused (inline partials beyond the count) are zeroed, not left from the
    // buffer's past: the same events always encode to the same bytes.
    w.fill(0, at, at + width);
    w[at] = k;
    for (const slot of slots) slot.kind.init(w, at + slot.offset);
    return at;
  }

  private reserve(extra: number): void {
    if (this.used + extra <= this.words.length) return;
    const next = new Float64Array(Math.max(this.words.length * 2, this.used + extra));
    next.set(this.words.subarray(0, this.used));
    this.words = next;
  }

  /** Moves pending events stamped before `now` into their tiles. */
  fold(now: number): void {
    const pending = this.pending;
    if (pending === null) return;
    let kept = 0;
    for (const e of pending) {
      if (e.ts < now) this.addToTiles(e.ts, e.seq, e.inputs);
      else pending[kept++] = e;
    }
    pending.length = kept;
    if (kept === 0) this.pending = null;
  }

  /** Drops the tiles of group g that start before tile kFrom (the batch evaluator's windows moved past them). */
  dropBefore(g: number, kFrom: number): void {
    const { width } = this.layout.groups[g]!;
    const base = this.base(g);
    const n = this.counts[g]!;
    let drop = 0;
    while (drop < n && this.words[base + drop * width]! < kFrom) drop++;
    if (drop === 0) return;
    this.words.copyWithin(base, base + drop * width, this.used);
    this.used -= drop * width;
    this.counts[g] = n - drop;
  }

  /** Drops tiles past retention (the state TTL) at processing time `now`. Returns whether anything is left. */
  prune(now: number): boolean {
    const { groups, view } = this.layout;
    for (let g = 0; g < groups.length; g++) {
      const { hopMs } = groups[g]!;
      // Tile k is expired once (k + 1)·hop ≤ now − retention: the first live k is the one after.
      let kFrom = Math.floor((now - view.retentionMs) / hopMs);
      while (isExpired(kFrom * hopMs, hopMs, now, view.retentionMs)) kFrom++;
      this.dropBefore(g, kFrom);
    }
    this.compactSide();
    return this.used > 0 || this.pending !== null;
  }

  /** Forgets side values no slot references any more (after tiles were dropped). */
  private compactSide(): void {
    const old = this.side;
    if (old.length === 0) return;
    const fresh: SideList = [];
    forEachRef(this.layout, this, this.words, (index) => fresh.push(old[index]) - 1);
    this.side = fresh;
  }

  /** Empties the state for reuse by another entity (the batch evaluator): its buffer is kept. */
  clear(): void {
    this.counts.fill(0);
    this.used = 0;
    this.side = [];
    this.pending = null;
    this.newest = Number.NEGATIVE_INFINITY;
    this.dirty = false;
    this.loadedFrom = NO_POSITION;
  }

  /** Takes over decoded records: `counts` per group, `used` words of `words` (TileReader.toState). */
  adopt(counts: readonly number[], words: Float64Array, used: number, side: SideList): void {
    counts.forEach((n, g) => {
      this.counts[g] = n;
    });
    this.words = words;
    this.used = used;
    this.side = side;
  }
}

const NO_POSITION: LogPosition = Object.freeze({ partition: -1, offset: -1 });

/** Calls `remap` for every side index the state's records hold, in record order (the encoding's order). */
function forEachRef(
  layout: ViewLayout,
  src: { base(g: number): number; count(g: number): number },
  words: Float64Array,
  remap: (index: number, codec: SideCodec) => number,
): void {
  layout.groups.forEach((group, g) => {
    const base = src.base(g);
    for (let i = 0; i < src.count(g); i++) {
      const r = base + i * group.width;
      for (const slot of group.slots) slot.kind.refs(words, r + slot.offset, remap);
    }
  });
}

/** When no value at any t ≥ that time can read the state any more: a TTL for the store (−∞: empty). */
export function tileStateExpiry(state: TileState): number {
  const { groups, view } = state.layout;
  let last = Number.NEGATIVE_INFINITY;
  groups.forEach((group, g) => {
    const n = state.counts[g]!;
    if (n === 0) return;
    const k = state.words[state.base(g) + (n - 1) * group.width]!;
    last = Math.max(last, (k + 1) * group.hopMs);
  });
  for (const e of state.pending ?? []) {
    for (const { hopMs } of groups) last = Math.max(last, (Math.floor(e.ts / hopMs) + 1) * hopMs);
  }
  return last + view.retentionMs;
}

// ── finalising ───────────────────────────────────────────────────────────────────────────────

let scratch = new Float64Array(64);
let merged = new Uint8Array(16);
const scratchSide: SideList = [];

/**
 * Values at time t: each feature aggregates exactly its events with windowStart(t) ≤ ts < t, from the
 * tiles in that range plus pending events in it. `present[f]` says whether anything lay in the
 * window. `features` limits the work to those indexes (default: all). Each (slot, window) is merged
 * once, whatever number of features read it.
 */
export function finalizeTiles(
  layout: ViewLayout,
  src: TileSource,
  t: number,
  values: FeatureValue[],
  present?: boolean[],
  features?: readonly number[],
): void {
  if (scratch.length < layout.scratchWords) scratch = new Float64Array(layout.scratchWords);
  if (merged.length < layout.scans.length) merged = new Uint8Array(layout.scans.length);
  merged.fill(0, 0, layout.scans.length);
  scratchSide.length = 0;
  const acc = scratch;
  const words = src.words;
  const n = features ? features.length : layout.features.length;
  for (let j = 0; j < n; j++) {
    const f = features ? features[j]! : j;
    const fl = layout.features[f]!;
    const scan = layout.scans[fl.scan]!;
    if (merged[fl.scan] === 0) {
      const { width } = layout.groups[scan.group]!;
      const from = windowStart(t, scan.windowMs, scan.hopMs);
      const base = src.base(scan.group);
      scan.kind.init(acc, scan.at);
      let any = false;
      // Records are sorted by k and windows are recent: walk back from the newest.
      for (let i = src.count(scan.group) - 1; i >= 0; i--) {
        const r = base + i * width;
        const start = words[r]! * scan.hopMs;
        if (start >= t) continue;
        if (start < from) break;
        scan.kind.merge(acc, scan.at, scratchSide, words, r + scan.offset, src);
        any = true;
      }
      for (const e of src.pending ?? []) {
        const input = e.inputs[scan.input];
        if (e.ts < from || e.ts >= t || input === null || input === undefined) continue;
        scan.kind.add(acc, scan.at, scratchSide, input, e.ts, e.seq);
        any = true;
      }
      merged[fl.scan] = any ? 2 : 1;
    }
    values[f] = fl.finalize(acc, scan.at, scratchSide);
    if (present) present[f] = merged[fl.scan] === 2;
  }
}

/**
 * Values at t of a loaded encoded value (the feature server's read): from its window vector when that
 * holds at t, else by merging its tiles. The same results as finalizeTiles over the same state.
 */
export function finalizeStored(
  reader: TileReader,
  t: number,
  values: FeatureValue[],
  present?: boolean[],
  features?: readonly number[],
): void {
  if (!reader.vectorInto(t, values, present, features)) {
    finalizeTiles(reader.layout, reader, t, values, present, features);
  }
}

// ── bytes ────────────────────────────────────────────────────────────────────────────────────

const countsBytes = (groups: number) => Math.ceil((groups * 4) / 8) * 8;

// Reused by every encode (encoding is synchronous and never nests): no writer per side value.
/**
 * Encoded values are carved from shared slabs, 8-aligned: a flush encodes thousands of entities, and
 * an ArrayBuffer each costs more than their bytes (V8 allocates and sweeps every backing store). A
 * region is never handed out twice, so each value is as fresh and zeroed as its own buffer; a slab
 * is freed once no value in it is referenced (stores copy or send the bytes at once).
 */
const SLAB_BYTES = 1 << 20;
let slab = new ArrayBuffer(0);
let slabUsed = 0;

function allocValue(size: number): Uint8Array {
  if (size > SLAB_BYTES / 8) return new Uint8Array(size);
  if (slabUsed + size > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, size);
  slabUsed += (size + 7) & ~7;
  return out;
}

const sideWriter = new ByteWriter();
const pendingWriter = new ByteWriter();
const vectorWriter = new ByteWriter();
const sideLengthsScratch: number[] = [];
const vectorValues: FeatureValue[] = [];
const vectorPresent: boolean[] = [];

// Window vector tags (bit 7 set: something lay in the feature's window). NOT_HELD: a value with no
// scalar form (last_k, top_k lists); a read that needs it merges tiles instead.
const PRESENT = 0x80;
const TAG_NULL = 0;
const TAG_NUMBER = 1;
const TAG_TEXT = 2;
const TAG_TRUE = 3;
const TAG_FALSE = 4;
const TAG_NOT_HELD = 5;

/** Every feature's value at t, as the window vector's bytes (the state has no pending events). */
function writeVector(state: TileState, t: number, out: ByteWriter): void {
  const { layout } = state;
  finalizeTiles(layout, state, t, vectorValues, vectorPresent);
  out.f64(t);
  for (let f = 0; f < layout.features.length; f++) {
    const value = vectorValues[f];
    const present = vectorPresent[f] ? PRESENT : 0;
    if (typeof value === "number") out.u8(present | TAG_NUMBER).f64(value);
    else if (value === null || value === undefined) out.u8(present | TAG_NULL);
    else if (typeof value === "string") out.u8(present | TAG_TEXT).string(value);
    else if (typeof value === "boolean") out.u8(present | (value ? TAG_TRUE : TAG_FALSE));
    else out.u8(present | TAG_NOT_HELD);
  }
}

/**
 * The state as the one binary value the store keeps, stamped with the log position it includes.
 * With `vectorAt`, it also carries the window vector of every feature's value at that time (none
 * when events are pending): the processor passes its processing time, so reads until the next
 * window boundary need no merge.
 */
export function encodeTileState(
  state: TileState,
  position: LogPosition = NO_POSITION,
  vectorAt?: number,
): Uint8Array {
  const { layout } = state;
  const G = layout.groups.length;
  // Side values in record order, one after another in a reused writer (their indexes are
  // renumbered in that order below); pending events likewise.
  const sideOut = sideWriter.reset();
  const sideLengths = sideLengthsScratch;
  sideLengths.length = 0;
  const side = state.side;
  if (side.length > 0) {
    forEachRef(layout, state, state.words, (index, codec) => {
      const from = sideOut.size;
      codec.encode(side[index], sideOut);
      sideLengths.push(sideOut.size - from);
      return index;
    });
  }
  const pendingOut = pendingWriter.reset();
  const pending = state.pending;
  if (pending !== null) {
    for (const e of pending) {
      pendingOut.f64(e.ts).f64(e.seq);
      for (let f = 0; f < layout.features.length; f++) pendingOut.value(e.inputs[f]);
    }
  }
  const vectorOut = vectorWriter.reset();
  if (vectorAt !== undefined && pending === null) writeVector(state, vectorAt, vectorOut);
  const tilesAt = HEADER_BYTES + countsBytes(G);
  const sideAt = tilesAt + state.length * 8;
  const S = sideLengths.length;
  const vectorStart = sideAt + S * 4 + sideOut.size + pendingOut.size;
  const size = vectorStart + vectorOut.size;

  const out = allocValue(size);
  const view = new DataView(out.buffer, out.byteOffset, size);
  out[0] = FORMAT_VERSION;
  out[1] = G;
  view.setUint32(4, layout.versionHash, true);
  view.setFloat64(8, state.newest, true);
  const positioned = position.partition >= 0;
  view.setFloat64(16, positioned ? position.offset : -1, true);
  view.setInt32(24, positioned ? position.partition : -1, true);
  view.setUint32(28, pending?.length ?? 0, true);
  view.setUint32(32, S, true);
  for (let g = 0; g < G; g++) view.setUint32(HEADER_BYTES + g * 4, state.counts[g]!, true);
  const words = new Float64Array(out.buffer, out.byteOffset + tilesAt, state.length);
  words.set(state.words.subarray(0, state.length));
  if (S > 0) {
    let next = 0;
    forEachRef(layout, state, words, () => next++);
    for (let i = 0; i < S; i++) view.setUint32(sideAt + i * 4, sideLengths[i]!, true);
    out.set(sideOut.written(), sideAt + S * 4);
  }
  if (pendingOut.size > 0) out.set(pendingOut.written(), vectorStart - pendingOut.size);
  if (vectorOut.size > 0) {
    view.setUint32(36, vectorStart, true);
    out.set(vectorOut.written(), vectorStart);
  }
  return out;
}

/**
 * Finalises straight from encoded bytes: `load` copies one value into an aligned scratch buffer and
 * reads its header; side values are decoded only when a merge asks for them. One reader serves any
 * number of values, one after another.
 */
export class TileReader implements TileSource {
  words = new Float64Array(128);
  private bytes = new Uint8Array(this.words.buffer);
  private data = new DataView(this.words.buffer);
  private tilesWord = 0;
  private readonly counts: number[];
  private readonly bases: number[];
  private sideCount = 0;
  private sideAt = 0;
  private sideOffsets: number[] = [];
  private sideCache: unknown[] = [];
  pending: PreparedEvent[] | null = null;
  newest = Number.NEGATIVE_INFINITY;
  position: LogPosition = NO_POSITION;
  /** The time the loaded value's window vector holds values for (NaN: it has none). */
  vectorTime = Number.NaN;
  private vectorAt = 0;
  private readonly vectorValues: (FeatureValue | undefined)[];
  private readonly vectorPresent: boolean[];

  constructor(readonly layout: ViewLayout) {
    this.counts = layout.groups.map(() => 0);
    this.bases = layout.groups.map(() => 0);
    this.vectorValues = layout.features.map(() => undefined);
    this.vectorPresent = layout.features.map(() => false);
  }

  /** Reads one encoded value; throws TileStateError when it is not this layout's format or version. */
  load(value: Uint8Array): this {
    const { layout } = this;
    if (value.length > this.bytes.length) {
      this.words = new Float64Array(Math.ceil((value.length * 1.5) / 8));
      this.bytes = new Uint8Array(this.words.buffer);
      this.data = new DataView(this.words.buffer);
    }
    this.bytes.set(value);
    const data = this.data;
    const G = layout.groups.length;
    if (value.length < HEADER_BYTES || value[0] !== FORMAT_VERSION || value[1] !== G) {
      throw new TileStateError(`not tile state format ${FORMAT_VERSION} with ${G} hop groups`);
    }
    if (data.getUint32(4, true) !== layout.versionHash) {
      throw new TileStateError(`tile state of another version than ${layout.view.version}`);
    }
    this.newest = data.getFloat64(8, true);
    const partition = data.getInt32(24, true);
    this.position = partition < 0 ? NO_POSITION : { partition, offset: data.getFloat64(16, true) };
    const tilesAt = HEADER_BYTES + countsBytes(G);
    this.tilesWord = tilesAt / 8;
    let words = 0;
    for (let g = 0; g < G; g++) {
      this.counts[g] = data.getUint32(HEADER_BYTES + g * 4, true);
      this.bases[g] = this.tilesWord + words;
      words += this.counts[g]! * layout.groups[g]!.width;
    }
    const sideAt = tilesAt + words * 8;
    this.sideCount = data.getUint32(32, true);
    let end = sideAt + this.sideCount * 4;
    if (end > value.length) throw new TileStateError("tile state is truncated");
    this.sideAt = sideAt;
    if (this.sideCount > 0) {
      this.sideOffsets = [];
      for (let i = 0; i < this.sideCount; i++) {
        this.sideOffsets.push(end);
        end += data.getUint32(sideAt + i * 4, true);
      }
      this.sideCache = [];
    }
    if (end > value.length) throw new TileStateError("tile state is truncated");
    this.vectorAt = data.getUint32(36, true);
    this.vectorTime = Number.NaN;
    if (this.vectorAt !== 0) {
      if (this.vectorAt < end || this.vectorAt + 8 > value.length) {
        throw new TileStateError("tile state's window vector is out of bounds");
      }
      this.vectorTime = data.getFloat64(this.vectorAt, true);
      this.readVector(this.vectorAt, value.length);
    }
    const pendingCount = data.getUint32(28, true);
    this.pending = null;
    if (pendingCount > 0) {
      const input = new ByteReader(value.subarray(end));
      const n = layout.features.length;
      this.pending = [];
      for (let i = 0; i < pendingCount; i++) {
        const ts = input.f64();
        const seq = input.f64();
        const inputs = Array.from({ length: n }, () => input.value());
        this.pending.push({ ok: true, entity: "", ts, seq, inputs });
      }
    }
    return this;
  }

  /**
   * The loaded value's values at t from its window vector, when it has one that holds at t (the same
   * window boundaries as its time) and holds every feature asked for. False: finalise from tiles.
   */
  vectorInto(t: number, values: FeatureValue[], present?: boolean[], features?: readonly number[]): boolean {
    if (this.vectorAt === 0 || !sameWindows(this.layout, t, this.vectorTime)) return false;
    const held = this.vectorValues;
    const n = features ? features.length : held.length;
    for (let j = 0; j < n; j++) if (held[features ? features[j]! : j] === undefined) return false;
    for (let j = 0; j < n; j++) {
      const f = features ? features[j]! : j;
      values[f] = held[f]!;
      if (present) present[f] = this.vectorPresent[f]!;
    }
    return true;
  }

  /** Decodes the window vector at byte `at` (undefined: a feature it does not hold); it must end the value. */
  private readVector(at: number, length: number): void {
    const { bytes, data } = this;
    const F = this.layout.features.length;
    const held = this.vectorValues;
    at += 8;
    let f = 0;
    for (; f < F && at < length; f++) {
      const tag = bytes[at++]!;
      this.vectorPresent[f] = tag >= PRESENT;
      switch (tag & ~PRESENT) {
        case TAG_NUMBER:
          held[f] = data.getFloat64(at, true);
          at += 8;
          break;
        case TAG_NULL:
          held[f] = null;
          break;
        case TAG_TEXT: {
          const text = new ByteReader(bytes.subarray(at, length));
          held[f] = text.string();
          at += text.consumed;
          break;
        }
        case TAG_TRUE:
          held[f] = true;
          break;
        case TAG_FALSE:
          held[f] = false;
          break;
        case TAG_NOT_HELD:
          held[f] = undefined;
          break;
        default:
          throw new TileStateError(`unknown tag ${tag} in the window vector`);
      }
    }
    // Short of F values, or bytes after them: not a vector this layout wrote.
    if (f < F || at !== length) throw new TileStateError("tile state's window vector is truncated");
  }

  base(g: number): number {
    return this.bases[g]!;
  }

  count(g: number): number {
    return this.counts[g]!;
  }

  sideValue(index: number, codec: SideCodec): unknown {
    let value = this.sideCache[index];
    if (value === undefined) {
      value = codec.decode(this.sideBytes(index)); // decoders copy what they keep
      this.sideCache[index] = value;
    }
    return value;
  }

  sideBytes(index: number): Uint8Array {
    if (index >= this.sideCount) throw new TileStateError(`side value ${index} is missing`);
    const from = this.sideOffsets[index]!;
    return this.bytes.subarray(from, from + this.data.getUint32(this.sideAt + index * 4, true));
  }

  /** The loaded value as a TileState the processor can add to (side values decoded, pending copied). */
  toState(): TileState {
    const { layout } = this;
    const state = new TileState(layout);
    let used = 0;
    for (let g = 0; g < layout.groups.length; g++) used += this.counts[g]! * layout.groups[g]!.width;
    // Room to grow by a few tiles before the first reallocation.
    const words = new Float64Array(used + layout.groups.reduce((n, g) => n + g.width, 0) * 2);
    words.set(this.words.subarray(this.tilesWord, this.tilesWord + used));
    const side: SideList = [];
    state.adopt(this.counts, words, used, side);
    if (this.sideCount > 0) {
      forEachRef(layout, state, words, (index, codec) => side.push(this.sideValue(index, codec)) - 1);
    }
    state.pending = this.pending;
    state.newest = this.newest;
    state.loadedFrom = this.position;
    return state;
  }
}
