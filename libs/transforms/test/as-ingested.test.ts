/** `--as-of ingestion`: the batch evaluator over what had arrived by each time (moved from libs/stores). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_MAX_SKEW_MS,
  isLate,
  pointInTime,
  pointInTimeAsIngested,
  validateDefinitions,
  viewRuntime,
} from "../src/index.js";

const HOUR_MS = 3_600_000;

describe("pointInTimeAsIngested", () => {
  const view = validateDefinitions({
    sources: [{ name: "s", topic: "t", entity: "k", timestamp: "ts" }],
    views: [
      {
        name: "v",
        source: "s",
        features: [
          { name: "n", op: "count", window: "1h", hop: "10m" },
          { name: "total", op: "sum", column: "x", window: "30m", hop: "5m" },
          { name: "latest", op: "last", column: "x", window: "1h", hop: "10m" },
        ],
      },
    ],
  }).views[0]!;
  const runtime = viewRuntime(view);

  it("equals the batch evaluator over the events that had arrived, on time, by t", () => {
    const event = fc.record({
      ts: fc.integer({ min: 0, max: 4 * HOUR_MS }),
      delay: fc.oneof(
        fc.integer({ min: -DEFAULT_MAX_SKEW_MS * 2, max: 60_000 }),
        fc.integer({ min: 0, max: 3 * HOUR_MS }),
      ),
      x: fc.option(fc.integer({ min: -50, max: 50 }), { nil: null }),
    });
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 5 * HOUR_MS }), { minLength: 1, maxLength: 12 }),
        (events, times) => {
          const columns = {
            ts: events.map((e) => e.ts),
            seq: events.map((_, i) => i),
            inputs: [null, events.map((e) => (e.x === null ? Number.NaN : e.x)), events.map((e) => e.x)],
          };
          const appended = events.map((e) => e.ts + e.delay);
          const got = pointInTimeAsIngested(
            runtime,
            columns,
            appended,
            events.map((_, i) => i),
            times,
          );
          times.forEach((t, r) => {
            const seen = events
              .map((e, i) => ({ e, i }))
              .filter(({ e, i }) => {
                const now = appended[i]!;
                return now < t && !isLate(e.ts, now, view.retentionMs) && e.ts <= now + DEFAULT_MAX_SKEW_MS;
              })
              .map(({ e, i }) => ({
                ok: true as const,
                entity: "k",
                ts: e.ts,
                seq: i,
                inputs: [true, e.x, e.x],
              }));
            expect(got[r]).toEqual(pointInTime(runtime, seen, [t])[0]);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("differs from event-time windows when an event arrives after t", () => {
    // Stamped at 10:00, appended at 10:20: at 10:10 serving could not have seen it.
    const ts = 10 * HOUR_MS;
    const columns = { ts: [ts], seq: [0], inputs: [null, [1], [1]] };
    const [before, after] = pointInTimeAsIngested(
      runtime,
      columns,
      [ts + 20 * 60_000],
      [0],
      [ts + 10 * 60_000, ts + 30 * 60_000],
    );
    expect(before![0]).toBe(0);
    expect(after![0]).toBe(1);
  });
});
