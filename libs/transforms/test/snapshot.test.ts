/** The snapshot compute (EventColumnsBuilder → pointInTimeSpine) against the per-entity evaluator. */
import { describe, expect, it } from "vitest";
import {
  EventColumnsBuilder,
  type FeatureValue,
  type PreparedEvent,
  pointInTime,
  pointInTimeSpine,
  validateDefinitions,
  viewRuntime,
} from "../src/index.js";

const MIN = 60_000;

describe("pointInTimeSpine", () => {
  const view = validateDefinitions({
    sources: [{ name: "s", topic: "t", entity: "k", timestamp: "ts" }],
    views: [
      {
        name: "v",
        source: "s",
        features: [
          { name: "n", op: "count", window: "1h", hop: "10m" },
          { name: "total", op: "sum", column: "x", window: "30m", hop: "5m" },
          { name: "spread", op: "stddev", column: "x", window: "1h", hop: "5m" },
          { name: "latest", op: "last", column: "x", window: "1h", hop: "10m" },
          { name: "tag_last", op: "last", column: "tag", window: "1h", hop: "10m" },
        ],
      },
    ],
  }).views[0]!;
  const runtime = viewRuntime(view);
  const features = view.features.map((_, i) => i);

  it("equals the per-entity evaluator over more events than one column chunk holds, shared columns included", () => {
    // 150k events (three 64k chunks) over 7 entities, out of time order; entity "k7" is not in the spine.
    const entities = ["k0", "k1", "k2", "k3", "k4", "k5", "k6"];
    const spineIds = new Map(entities.map((e, i) => [e, i]));
    const builder = new EventColumnsBuilder(runtime, features);
    const rows = Array.from({ length: 150_000 }, (_, i) => {
      const h = Math.imul(i + 1, 2_654_435_761) >>> 0;
      return {
        k: `k${h % 8}`,
        ts: (h % 600) * MIN + (i % 1000),
        x: i % 13 === 0 ? null : ((h >>> 8) % 1000) / 4,
        tag: `t${h % 5}`,
      };
    });
    for (const [i, row] of rows.entries()) builder.add(row, i, spineIds);
    const events = builder.finish(entities.length);
    expect(events.count).toBe(rows.filter((r) => r.k !== "k7").length);

    const spineEntity = Int32Array.from({ length: 70 }, (_, i) => i % 7);
    const times = Array.from({ length: 70 }, (_, i) => ((i * 37) % 600) * MIN + 123);
    const got: FeatureValue[][] = times.map(() => []);
    pointInTimeSpine(
      runtime,
      features,
      { times, entityIds: spineEntity, entityCount: 7 },
      events,
      (row, j, value) => {
        got[row]![j] = value;
      },
    );

    entities.forEach((entity, e) => {
      const prepared = rows.flatMap((row, i) =>
        row.k === entity ? [runtime.prepare(row, i) as PreparedEvent] : [],
      );
      const mine = times.flatMap((t, i) => (spineEntity[i] === e ? [{ t, i }] : []));
      const want = pointInTime(
        runtime,
        prepared,
        mine.map((m) => m.t),
      );
      mine.forEach(({ i }, m) => {
        expect(got[i], `${entity} at ${times[i]}`).toEqual(want[m]);
      });
    });
  });
});
