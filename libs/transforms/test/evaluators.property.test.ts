import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type FeatureValue,
  finalizeAt,
  OPS,
  type PreparedEvent,
  pointInTime,
  type View,
  ViewState,
  validateDefinitions,
  viewRuntime,
} from "../src/index.js";
import { matchesReference, type RefEvent, reference } from "./reference.js";

/** One view with every op, windows and hops that do not divide each other, over columns v (mixed) and x. */
function allOpsView(): View {
  const windows = [
    { window: 40, hop: 10 },
    { window: 25, hop: 7 },
    { window: 3, hop: 3 },
  ];
  const features = OPS.flatMap((op, i) => {
    const { window, hop } = windows[i % windows.length]!;
    const params =
      op === "last_k" || op === "top_k" ? { k: 2 } : op === "approx_quantile" ? { quantile: 0.5 } : {};
    return [{ name: `${op}_v`, op, column: "v", window, hop, ...params }];
  });
  features.push({ name: "count_events", op: "count", window: 30, hop: 5 } as never);
  const defs = validateDefinitions({
    sources: [{ name: "s", topic: "t", entity: "id", timestamp: "ts" }],
    views: [{ name: "all_ops", source: "s", features }],
  });
  return defs.views[0]!;
}

const view = allOpsView();
const runtime = viewRuntime(view);

// Values exactly representable with exact sums (quarters), plus nulls, numeric text and plain text.
const value = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -400, max: 400 }).map((i) => i / 4) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom("a", "b", "7") },
);
const event = fc.record({
  entity: fc.constantFrom("e1", "e2"),
  ts: fc.integer({ min: 0, max: 120 }),
  v: value,
});
const scenario = fc.record({
  events: fc.array(event, { maxLength: 40 }),
  arrivalKeys: fc.array(fc.double({ noNaN: true }), { minLength: 40, maxLength: 40 }),
  now: fc.integer({ min: 0, max: 160 }),
  skew: fc.integer({ min: 0, max: 20 }),
  queries: fc.array(fc.integer({ min: 0, max: 80 }), { minLength: 1, maxLength: 6 }),
});

describe("incremental == batch == reference, every op", { timeout: 120_000 }, () => {
  it("agrees for any arrival order, processing time and query time", () => {
    fc.assert(
      fc.property(scenario, ({ events, arrivalKeys, now, skew, queries }) => {
        // Log order is the array order (seq); arrival order is a shuffle of it.
        const logged = events.map((e, seq) => ({ ...e, seq }));
        const arrival = [...logged].sort(
          (a, b) => arrivalKeys[a.seq]! - arrivalKeys[b.seq]! || a.seq - b.seq,
        );
        const state = new ViewState(view, { maxSkewMs: skew });
        const accepted: RefEvent[] = [];
        for (const e of arrival) {
          const result = state.apply({ id: e.entity, ts: e.ts, v: e.v }, { offset: e.seq, now });
          const expected = e.ts < now - view.retentionMs ? "late" : e.ts > now + skew ? "future" : "applied";
          expect(result.status).toBe(expected);
          if (result.status === "applied")
            accepted.push({ entity: e.entity, ts: e.ts, seq: e.seq, value: e.v });
        }
        // Online reads happen at t ≥ processing time.
        const times = queries.map((q) => now + q);
        for (const entity of ["e1", "e2"]) {
          const prepared: PreparedEvent[] = accepted
            .filter((e) => e.entity === entity)
            .map((e) => {
              const p = runtime.prepare({ id: e.entity, ts: e.ts, v: e.value }, e.seq);
              if (!p.ok) throw new Error(p.reason);
              return p;
            });
          const batch = pointInTime(runtime, prepared, times);
          times.forEach((t, i) => {
            const incremental = state.valueAt(entity, t);
            view.features.forEach((f, j) => {
              const want = reference(accepted, entity, f, t);
              const got = incremental[f.name] as FeatureValue;
              expect(batch[i]![j], `${f.name} batch vs incremental at ${t}`).toEqual(got);
              expect(
                matchesReference(f.op, got, want),
                `${f.name} at ${t}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`,
              ).toBe(true);
            });
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it("agrees bit for bit on arbitrary doubles (sums are exact, so order cannot matter)", () => {
    const doubles = fc.array(
      fc.record({
        ts: fc.integer({ min: 0, max: 60 }),
        v: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 }),
      }),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(
        doubles,
        fc.array(fc.nat(), { minLength: 30, maxLength: 30 }),
        fc.integer({ min: 60, max: 100 }),
        (events, keys, t) => {
          const logged = events.map((e, seq) => ({ ...e, seq }));
          const state = new ViewState(view);
          for (const e of [...logged].sort((a, b) => keys[a.seq]! - keys[b.seq]! || b.seq - a.seq)) {
            state.apply({ id: "e", ts: e.ts, v: e.v }, { offset: e.seq, now: 60 });
          }
          const prepared = logged.map(
            (e) => runtime.prepare({ id: "e", ts: e.ts, v: e.v }, e.seq) as PreparedEvent,
          );
          const [batch] = pointInTime(runtime, prepared, [t]);
          const incremental = state.valueAt("e", t);
          for (const [j, f] of view.features.entries())
            expect(batch![j], f.name).toEqual(incremental[f.name]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("gives the same values after the state goes through bytes (store round trip)", () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), fc.integer({ min: 110, max: 140 }), (events, now) => {
        const state = new ViewState(view, { maxSkewMs: 20 });
        for (const [seq, e] of events.entries())
          state.apply({ id: e.entity, ts: e.ts, v: e.v }, { offset: seq, now });
        for (const { entity, state: stored } of state.takeDirty()) {
          for (const t of [now, now + 5, now + 30]) {
            expect(finalizeAt(view, stored, t)).toEqual(state.valueAt(entity, t));
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
