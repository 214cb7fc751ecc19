/** The view both snapshot engines compute: five count/sum/mean/min/max features over one source. */
export const T0 = Date.UTC(2024, 0, 1);
export const SPAN_MS = 30 * 86_400_000;

export const FEATURES = [
  { name: "txn_count_1h", op: "count", window: 3_600_000, hop: 300_000 },
  { name: "amount_sum_6h", op: "sum", column: "amount", window: 21_600_000, hop: 1_800_000 },
  { name: "amount_mean_1d", op: "mean", column: "amount", window: 86_400_000, hop: 3_600_000 },
  { name: "amount_min_1h", op: "min", column: "amount", window: 3_600_000, hop: 300_000 },
  { name: "amount_max_1d", op: "max", column: "amount", window: 86_400_000, hop: 3_600_000 },
] as const;

export const DEFINITIONS = {
  sources: [
    { name: "transactions", topic: "payments.transactions", entity: "card_id", timestamp: "event_time" },
  ],
  views: [{ name: "card_activity", source: "transactions", features: FEATURES.map((f) => ({ ...f })) }],
};

/** DuckDB SQL for the same features, with the same window rule: floor((t − W)/H)·H ≤ ts < t. */
export function duckdbSql(events: string, spine: string, out: string): string {
  const start = (w: number, h: number) => `floor((s.timestamp - ${w}) / ${h}) * ${h}`;
  const lowest = `least(${FEATURES.map((f) => start(f.window, f.hop)).join(", ")})`;
  const agg = FEATURES.map((f) => {
    const inWindow = `e.event_time >= ${start(f.window, f.hop)}`;
    if (f.op === "count") return `count(e.event_time) FILTER (WHERE ${inWindow}) AS ${f.name}`;
    if (f.op === "sum") return `coalesce(sum(e.amount) FILTER (WHERE ${inWindow}), 0) AS ${f.name}`;
    const fn = f.op === "mean" ? "avg" : f.op;
    return `${fn}(e.amount) FILTER (WHERE ${inWindow}) AS ${f.name}`;
  });
  return `COPY (
    SELECT s.card_id, s.timestamp, ${agg.join(",\n      ")}
    FROM (SELECT *, row_number() OVER () AS rid FROM read_parquet('${spine}')) s
    LEFT JOIN read_parquet('${events}') e
      ON e.card_id = s.card_id AND e.event_time >= ${lowest} AND e.event_time < s.timestamp
    GROUP BY s.rid, s.card_id, s.timestamp
    ORDER BY s.rid
  ) TO '${out}' (FORMAT parquet)`;
}
