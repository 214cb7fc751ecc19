/**
 * Snapshot from the Parquet archive against DuckDB on the same files.
 *
 *   npx tsx bench/snapshot/run.ts [--events 10000000] [--spine 1000000] [--cards 100000] [--days 10] [--runs 1]
 *
 * 1. Archives `--events` payment events with the archiver's own writer (Avro→Arrow mapping,
 *    Hive layout date=/hour=/part-<p>-<first>-<last>.parquet, 2 partitions, 1M-record rolls).
 * 2. Runs `runSnapshot` (8 features, 1 thread) and DuckDB SQL computing the same 8 features on the
 *    same files, each in its own process; wall time and peak RSS of each; outputs compared.
 * Targets (issue 15): Tessera ≤ 1× DuckDB wall time (at 2M × 200k and 10M × 1M), peak RSS ≤ 1 GB at 10M events. Figures are medians over --runs on a
 * shared 2-core machine (other benchmarks and tests run beside it): the load average is printed.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { listArchive } from "@tessera/stores";
import { type ArchivedRow, arrowFieldsOf, writeRoll } from "../../services/archiver/src/index.js";
import { fmt, median, numericFlags, saveResult } from "../support/index.js";
import { FEATURES, T0 } from "./features.js";

const flags = numericFlags({ events: 10_000_000, spine: 1_000_000, cards: 100_000, days: 10, runs: 1 });
const here = fileURLToPath(new URL(".", import.meta.url));
const root = fileURLToPath(new URL("../../", import.meta.url));
const SPAN = flags.days * 86_400_000;
const PARTITIONS = 2;
const ROLL = 1_000_000;
const TOPIC = "payments.transactions";

console.log(
  `machine: ${cpus().length} cores (${cpus()[0]?.model}), load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
const dir = await mkdtemp(join(tmpdir(), "tessera-bench-snapshot-"));
const archive = join(dir, "archive");
const files = {
  spine: join(dir, "spine.parquet"),
  tessera: join(dir, "tessera.parquet"),
  duckdb: join(dir, "duckdb.parquet"),
};

// ── 1. The archive ────────────────────────────────────────────────────────────────────────────
const schema = JSON.parse(readFileSync(join(root, "schemas/avro/payment_transaction.avsc"), "utf8"));
const fields = arrowFieldsOf(schema);
const generating = performance.now();
const pending: ArchivedRow[][] = Array.from({ length: PARTITIONS }, () => []);
const next = new Array<number>(PARTITIONS).fill(0);
const flush = async (p: number) => {
  const rows = pending[p]!;
  if (rows.length === 0) return;
  await writeRoll(archive, {
    topic: TOPIC,
    partition: p,
    firstOffset: rows[0]!.offset,
    lastOffset: rows.at(-1)!.offset,
    schemaId: 1,
    schemaText: JSON.stringify(schema),
    fields,
    rows,
  });
  pending[p] = [];
};
for (let i = 0; i < flags.events; i++) {
  const h = Math.imul(i + 1, 2_654_435_761) >>> 0;
  const card = h % flags.cards;
  const p = card % PARTITIONS;
  // Roughly in time order, as a topic is, with up to a minute of disorder; 2% are zero amounts.
  const eventTime = T0 + Math.floor((i * SPAN) / flags.events) - ((h >>> 7) % 60_000);
  pending[p]!.push({
    value: {
      transaction_id: `t${i}`,
      card_id: `c${card}`,
      merchant_id: `m${(h >>> 9) % 5000}`,
      amount: i % 50 === 0 ? 0 : ((h >>> 5) % 100_000) / 100,
      currency: "EUR",
      country: "DE",
      event_time: eventTime,
    },
    offset: next[p]!++,
    timestamp: eventTime + 50,
    eventTime,
  });
  if (pending[p]!.length === ROLL) await flush(p);
}
for (let p = 0; p < PARTITIONS; p++) await flush(p);
const archived = await listArchive(join(archive, TOPIC));
console.log(
  `archived ${fmt(flags.events)} events over ${flags.days} days into ${fmt(archived.length)} Parquet files in ${((performance.now() - generating) / 1000).toFixed(1)} s`,
);

const db = await DuckDBInstance.create(":memory:");
const sql = await db.connect();
await sql.run(`COPY (
  SELECT 'c' || (hash(i) % ${flags.cards}) AS card_id,
         (${T0} + hash(i * 3 + 1) % ${SPAN})::BIGINT AS timestamp,
         (hash(i * 5) % 2)::INTEGER AS label
  FROM range(${flags.spine}) t(i)) TO '${files.spine}' (FORMAT parquet)`);

// ── 2. Both engines, each in its own process ───────────────────────────────────────────────────
const results: Record<"tessera" | "duckdb", { seconds: number; maxRssMB: number; phases: unknown }[]> = {
  tessera: [],
  duckdb: [],
};
for (let run = 0; run < flags.runs; run++) {
  for (const engine of ["tessera", "duckdb"] as const) {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        "--import",
        "tsx",
        "--max-old-space-size=4096",
        // BENCH_CPU_PROF=<dir>: a V8 CPU profile of each Tessera run, for finding where the time goes.
        ...(engine === "tessera" && process.env.BENCH_CPU_PROF
          ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
          : []),
        join(here, "child.ts"),
        engine,
        join(archive, TOPIC),
        files.spine,
        files[engine],
      ],
      { cwd: root, maxBuffer: 1 << 20 },
    );
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
    results[engine].push(result);
    console.log(
      `  run ${run + 1} ${engine.padEnd(7)} ${result.seconds.toFixed(2)} s, peak RSS ${fmt(result.maxRssMB)} MB ${JSON.stringify(result.phases)}`,
    );
  }
}

// Same answers? Counts, min, max exactly; sums/means to 1e-9 relative; variance/stddev to 1e-6
// (DuckDB uses a different, also stable, update formula).
const close = (c: string, rel: number) =>
  `(t.${c} IS NULL AND d.${c} IS NULL) OR abs(t.${c} - d.${c}) <= ${rel} * greatest(1, abs(d.${c}))`;
const diff = await sql.runAndReadAll(`
  WITH t AS (SELECT *, row_number() OVER () AS rid FROM read_parquet('${files.tessera}')),
       d AS (SELECT *, row_number() OVER () AS rid FROM read_parquet('${files.duckdb}'))
  SELECT count(*) AS rows, ${FEATURES.map((f) => `count(*) FILTER (WHERE NOT (${close(f.name, f.op === "variance" || f.op === "stddev" ? 1e-6 : 1e-9)})) AS ${f.name}`).join(", ")}
  FROM t JOIN d USING (rid)`);
const mismatches = JSON.parse(
  JSON.stringify(diff.getRowObjects()[0], (_, v) => (typeof v === "bigint" ? Number(v) : v)),
) as Record<string, number>;
await rm(dir, { recursive: true, force: true });

const ours = median(results.tessera.map((r) => r.seconds));
const theirs = median(results.duckdb.map((r) => r.seconds));
const rss = Math.max(...results.tessera.map((r) => r.maxRssMB));
const ratio = ours / theirs;
console.log(
  `\nsnapshot of ${fmt(flags.spine)} spine rows × 8 features over ${fmt(flags.events)} archived events, median of ${flags.runs}:`,
);
console.log(`  tessera (1 thread): ${ours.toFixed(2)} s, peak RSS ${fmt(rss)} MB`);
console.log(
  `  duckdb (${cpus().length} threads):  ${theirs.toFixed(2)} s, peak RSS ${fmt(Math.max(...results.duckdb.map((r) => r.maxRssMB)))} MB`,
);
console.log(`  ratio tessera/duckdb ${ratio.toFixed(2)}× — target ≤ 1×: ${ratio <= 1 ? "MET" : "NOT MET"}`);
console.log(`  peak RSS ${fmt(rss)} MB — target ≤ 1024 MB: ${rss <= 1024 ? "MET" : "NOT MET"}`);
console.log(
  `  outputs compared on ${mismatches["rows"]} rows; mismatching values per feature: ${JSON.stringify(mismatches)}`,
);
const saved = saveResult("snapshot", {
  flags,
  loadavg: loadavg(),
  files: archived.length,
  runs: results,
  medianSeconds: { tessera: ours, duckdb: theirs },
  ratio,
  peakRssMB: rss,
  targets: { ratio: ratio <= 1, rss: rss <= 1024 },
  mismatches,
});
console.log(`figures saved to ${saved}`);
