/**
 * The 8 features both engines compute, and the DuckDB SQL for them with Tessera's window rule:
 * a value at t aggregates events with floor((t − W)/H)·H ≤ ts < t (DESIGN.md). The SQL follows
 * bench/transforms/features.ts (a range join of spine and events, grouped per spine row).
 */
export const T0 = Date.UTC(2026, 0, 1);

const H = 3_600_000;
export const FEATURES = [
  { name: "txn_count_1h", op: "count", window: H, hop: 300_000 },
  { name: "txn_count_7d", op: "count", window: 168 * H, hop: 24 * H },
  { name: "amount_sum_6h", op: "sum", column: "amount", window: 6 * H, hop: 1_800_000 },
  { name: "amount_mean_1d", op: "mean", column: "amount", window: 24 * H, hop: H },
  { name: "amount_min_1h", op: "min", column: "amount", window: H, hop: 300_000 },
  { name: "amount_max_1d", op: "max", column: "amount", window: 24 * H, hop: H },
  { name: "amount_var_6h", op: "variance", column: "amount", window: 6 * H, hop: 1_800_000 },
  { name: "amount_std_1d", op: "stddev", column: "amount", window: 24 * H, hop: H },
] as const;

export const definitions = (topic: string) => ({
  sources: [{ name: "payments", topic, entity: "card_id", timestamp: "event_time" }],
  views: [{ name: "cards", source: "payments", features: FEATURES.map((f) => ({ ...f })) }],
});

const SQL_OP: Record<string, string> = {
  mean: "avg",
  min: "min",
  max: "max",
  variance: "var_pop",
  stddev: "stddev_pop",
};

/** DuckDB SQL writing the same columns as the Tessera snapshot (spine columns, then the features). */
export function duckdbSql(archive: string, spine: string, out: string): string {
  const start = (w: number, h: number) => `floor((s.timestamp - ${w}) / ${h}) * ${h}`;
  const lowest = `least(${FEATURES.map((f) => start(f.window, f.hop)).join(", ")})`;
  const agg = FEATURES.map((f) => {
    const inWindow = `e.ts >= ${start(f.window, f.hop)}`;
    if (f.op === "count") return `count(e.ts) FILTER (WHERE ${inWindow}) AS ${f.name}`;
    if (f.op === "sum") return `coalesce(sum(e.amount) FILTER (WHERE ${inWindow}), 0) AS ${f.name}`;
    return `${SQL_OP[f.op]}(e.amount) FILTER (WHERE ${inWindow}) AS ${f.name}`;
  });
  return `COPY (
    SELECT s.card_id, s.timestamp, s.label, ${agg.join(",\n      ")}
    FROM (SELECT *, row_number() OVER () AS rid FROM read_parquet('${spine}')) s
    LEFT JOIN (SELECT card_id, epoch_ms(event_time) AS ts, amount
               FROM read_parquet('${archive}/date=*/hour=*/*.parquet', hive_partitioning = false)) e
      ON e.card_id = s.card_id AND e.ts >= ${lowest} AND e.ts < s.timestamp
    GROUP BY s.rid, s.card_id, s.timestamp, s.label
    ORDER BY s.rid
  ) TO '${out}' (FORMAT parquet)`;
}
