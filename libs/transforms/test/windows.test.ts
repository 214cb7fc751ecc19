import { describe, expect, it } from "vitest";
import {
  type PreparedEvent,
  parseDefinitionsYaml,
  pointInTime,
  ViewState,
  viewRuntime,
} from "../src/index.js";

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.UTC(2024, 0, 1); // a tile edge for every hop below

const defs = parseDefinitionsYaml(`
sources:
  - { name: tx, topic: payments.transactions, entity: card_id, timestamp: event_time }
views:
  - name: card
    source: tx
    features:
      - { name: n_1h, op: count, window: 1h, hop: 5m }
      - { name: sum_1h, op: sum, column: amount, window: 1h, hop: 5m }
      - { name: mean_1h, op: mean, column: amount, window: 1h, hop: 5m }
      - { name: var_1h, op: variance, column: amount, window: 1h, hop: 5m }
      - { name: first_1h, op: first, column: amount, window: 1h, hop: 5m }
      - { name: last_1h, op: last, column: amount, window: 1h, hop: 5m }
      - { name: n_amount_1h, op: count, column: amount, window: 1h, hop: 5m }
`);
const view = defs.views[0]!;
const runtime = viewRuntime(view);

type Ev = { card_id: string; event_time: number | string; amount?: number | null };

/** Both evaluators at each time (streaming with processing time at the first query). */
function both(events: Ev[], times: number[], entity = "c1") {
  const prepared = events.map((row, seq) => {
    const p = runtime.prepare(row, seq);
    if (!p.ok) throw new Error(p.reason);
    return p;
  });
  const batch = pointInTime(
    runtime,
    prepared.filter((e: PreparedEvent) => e.entity === entity),
    times,
  );
  // A generous skew, so events after the first query wait as pending rather than being refused.
  const state = new ViewState(view, { maxSkewMs: 24 * HOUR });
  for (const [seq, row] of events.entries()) {
    expect(state.apply(row, { offset: seq, now: Math.min(...times) }).status).toBe("applied");
  }
  return times.map((t, i) => {
    const online = state.valueAt(entity, t);
    const offline = Object.fromEntries(view.features.map((f, j) => [f.name, batch[i]![j]]));
    expect(offline).toEqual(online);
    return online;
  });
}

describe("window edges (DESIGN.md semantics)", () => {
  it("excludes an event at exactly the query time, includes it 1 ms later", () => {
    const [at, after] = both(
      [{ card_id: "c1", event_time: T0 + 10 * MIN, amount: 5 }],
      [T0 + 10 * MIN, T0 + 10 * MIN + 1],
    );
    expect(at!.n_1h).toBe(0);
    expect(after!.n_1h).toBe(1);
  });

  it("opens the window at floor((t − W)/H)·H: up to W + H of history", () => {
    const events = [
      { card_id: "c1", event_time: T0, amount: 1 },
      { card_id: "c1", event_time: T0 + 4 * MIN, amount: 2 },
    ];
    // t = T0 + 1h + 4m: start = floor((T0 + 4m)/5m)·5m = T0, so both events count (window 64 min long).
    // t = T0 + 1h + 5m: start = T0 + 5m, so neither does: the whole first tile leaves at once.
    const [inside, edge] = both(events, [T0 + HOUR + 4 * MIN, T0 + HOUR + 5 * MIN]);
    expect(inside!.n_1h).toBe(2);
    expect(edge!.n_1h).toBe(0);
  });

  it("before any event: count and sum are 0, everything else null", () => {
    const [v] = both([{ card_id: "c1", event_time: T0 + HOUR, amount: 5 }], [T0]);
    expect(v).toEqual({
      n_1h: 0,
      sum_1h: 0,
      mean_1h: null,
      var_1h: null,
      first_1h: null,
      last_1h: null,
      n_amount_1h: 0,
    });
  });

  it("skips null inputs: count() counts events, count(column) and the rest only values", () => {
    const [v] = both(
      [
        { card_id: "c1", event_time: T0, amount: 4 },
        { card_id: "c1", event_time: T0 + 1, amount: null },
        { card_id: "c1", event_time: T0 + 2 },
      ],
      [T0 + MIN],
    );
    expect(v).toMatchObject({
      n_1h: 3,
      n_amount_1h: 1,
      sum_1h: 4,
      mean_1h: 4,
      var_1h: 0,
      first_1h: 4,
      last_1h: 4,
    });
  });

  it("an entity with one event; another entity stays empty", () => {
    const events = [{ card_id: "c1", event_time: T0, amount: 3 }];
    expect(both(events, [T0 + 1])[0]).toMatchObject({ n_1h: 1, mean_1h: 3, var_1h: 0 });
    expect(both(events, [T0 + 1], "c2")[0]).toMatchObject({ n_1h: 0, sum_1h: 0, mean_1h: null });
  });

  it("population variance and first/last ties go to the later log position", () => {
    const [v] = both(
      [
        { card_id: "c1", event_time: T0, amount: 1 },
        { card_id: "c1", event_time: T0, amount: 2 },
        { card_id: "c1", event_time: T0 + 5, amount: 3 },
        { card_id: "c1", event_time: T0 + 5, amount: 4 },
      ],
      [T0 + MIN],
    );
    expect(v).toMatchObject({ var_1h: 1.25, first_1h: 2, last_1h: 4 });
  });

  it("reads ISO-8601 event times (with zone, or UTC when none) like epoch ms", () => {
    const [v] = both(
      [
        { card_id: "c1", event_time: "2024-01-01T00:00:00Z", amount: 1 },
        { card_id: "c1", event_time: "2024-01-01T01:00:00+01:00", amount: 2 },
        { card_id: "c1", event_time: "2024-01-01T00:00:01", amount: 3 },
      ],
      [T0 + 1001],
    );
    expect(v).toMatchObject({ n_1h: 3, sum_1h: 6 });
    expect(runtime.prepare({ card_id: "c1", event_time: "yesterday" }, 0)).toMatchObject({ ok: false });
  });
});

describe("streaming: late, future, TTL", () => {
  it("reports late and future events with reasons, and drops expired tiles", () => {
    const state = new ViewState(view, { maxSkewMs: 5 * MIN });
    const now = T0 + 10 * HOUR;
    expect(
      state.apply({ card_id: "c1", event_time: now - 2 * HOUR, amount: 1 }, { offset: 0, now }),
    ).toMatchObject({
      status: "late",
      reason: expect.stringContaining("retention"),
    });
    expect(
      state.apply({ card_id: "c1", event_time: now + 6 * MIN, amount: 1 }, { offset: 1, now }),
    ).toMatchObject({
      status: "future",
      reason: expect.stringContaining("ahead"),
    });
    expect(state.apply({ card_id: "c1", amount: 1 }, { offset: 2, now })).toMatchObject({
      status: "invalid",
    });
    // Within the skew: kept aside and only counted once the query time passes it.
    expect(
      state.apply({ card_id: "c1", event_time: now + 2 * MIN, amount: 1 }, { offset: 3, now }).status,
    ).toBe("applied");
    expect(state.valueAt("c1", now).n_1h).toBe(0);
    expect(state.valueAt("c1", now + 2 * MIN + 1).n_1h).toBe(1);
    expect(
      state.apply({ card_id: "c1", event_time: now - 30 * MIN, amount: 1 }, { offset: 4, now }).status,
    ).toBe("applied");
    expect(state.valueAt("c1", now + 3 * MIN).n_1h).toBe(2);
    // A count over 1 h falls as time passes, with no new events; then the TTL drops the entity.
    expect(state.valueAt("c1", now + 2 * HOUR).n_1h).toBe(0);
    state.prune(now + 2 * HOUR);
    expect(state.size).toBe(0);
  });
});
