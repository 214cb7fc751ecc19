import type { EntityTiles as StoredEntity } from "@tessera/stores";
import { type PreparedEvent, parseDefinitionsYaml, viewRuntime } from "@tessera/transforms";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PENDING, ViewSlot } from "../src/state.js";

const view = parseDefinitionsYaml(`
sources:
  - { name: s, topic: t, entity: id, timestamp: ts }
views:
  - name: v
    source: s
    features:
      - { name: n, op: count, window: 10m, hop: 1m }
      - { name: total, op: sum, column: x, window: 10m, hop: 1m }
`).views[0]!;
const runtime = viewRuntime(view);

function event(entity: string, ts: number, x: number, seq: number): PreparedEvent {
  const prepared = runtime.prepare({ id: entity, ts, x }, seq);
  if (!prepared.ok) throw new Error(prepared.reason);
  return prepared;
}

/** What a store returns after writing `tiles`: the newest write of each (aggregation, tileStart). */
function stored(tiles: ReturnType<ViewSlot["takeDirty"]>["tiles"][]): StoredEntity {
  const byField = new Map<string, { aggregation: string; tileStart: number; state: Uint8Array }>();
  for (const flush of tiles) {
    for (const t of flush) byField.set(`${t.aggregation}|${t.tileStart}`, t);
  }
  return { tiles: [...byField.values()], newestEventTime: null };
}

describe("ViewSlot", () => {
  it("a reload from flushed tiles, at any flush boundary, continues to the same values (pending events included)", () => {
    const base = 1_800_000_000_000;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -500_000, max: 200_000 }), fc.integer({ min: 0, max: 100 })), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.integer({ min: 0, max: 60 }),
        (raw, cut) => {
          // Processing time advances 5 s per event; some events are stamped ahead of it (pending).
          const events = raw.map(([offset, x], i) => ({
            e: event("a", base + i * 5000 + offset, x, i),
            now: base + i * 5000,
          }));
          const straight = new ViewSlot(runtime);
          for (const { e, now } of events) straight.apply(e, now);

          const first = new ViewSlot(runtime);
          const split = Math.min(cut, events.length);
          const flushes: ReturnType<ViewSlot["takeDirty"]>["tiles"][] = [];
          events.slice(0, split).forEach(({ e, now }, i) => {
            first.apply(e, now);
            if (i % 7 === 6) flushes.push(first.takeDirty(now).tiles);
          });
          const lastNow = split > 0 ? events[split - 1]!.now : base;
          flushes.push(first.takeDirty(lastNow).tiles);

          const second = new ViewSlot(runtime);
          second.restore("a", stored(flushes));
          for (const { e, now } of events.slice(split)) second.apply(e, now);

          const t = base + events.length * 5000 + 300_000;
          expect(second.valueAt("a", t)).toEqual(straight.valueAt("a", t));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("stores events stamped ahead of processing time as the pending list, empty once they fold", () => {
    const slot = new ViewSlot(runtime);
    const now = 1_800_000_000_000;
    slot.apply(event("a", now + 60_000, 5, 1), now);
    const ahead = slot.takeDirty(now).tiles.filter((t) => t.aggregation === PENDING);
    expect(ahead).toHaveLength(1);
    expect(ahead[0]!.tileStart).toBe(now);
    slot.apply(event("a", now + 120_000, 1, 2), now + 90_000);
    const later = slot.takeDirty(now + 90_000).tiles;
    // The first event folded into its tile; only the second is still pending.
    expect(later.some((t) => t.aggregation === "total" && t.tileStart === now + 60_000)).toBe(true);
    expect(later.find((t) => t.aggregation === PENDING)!.tileStart).toBe(now + 90_000);
  });

  it("evicts only flushed entities, least recently touched first", () => {
    const slot = new ViewSlot(runtime);
    const now = 1_800_000_000_000;
    for (const id of ["a", "b", "c"]) slot.apply(event(id, now - 1000, 1, 0), now);
    slot.takeDirty(now);
    slot.apply(event("a", now - 500, 1, 1), now); // a: touched again, dirty
    expect(slot.evict(2)).toBe(2);
    expect([...slot.entities.keys()]).toEqual(["a"]);
    expect(slot.evict(5)).toBe(0); // a is dirty: it stays until flushed
  });
});
