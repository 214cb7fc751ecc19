/**
 * One snapshot run in its own process, so each engine's peak RSS is its own:
 *   node --import tsx bench/transforms/child.ts <tessera|duckdb> <events.parquet> <spine.parquet> <out.parquet>
 * Prints one JSON line: { seconds, cpuSeconds (all threads), maxRssMB, phases }.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { runSnapshot } from "@tessera/stores";
import { validateDefinitions } from "@tessera/transforms";
import { DEFINITIONS, duckdbSql } from "./features.js";

const [engine, events, spine, out] = process.argv.slice(2) as [string, string, string, string];
const started = performance.now();
const usage = process.cpuUsage();
let phases: unknown;
if (engine === "tessera") {
  const view = validateDefinitions(DEFINITIONS).views[0]!;
  const summary = await runSnapshot({
    selections: [{ view, features: [0, 1, 2, 3, 4] }],
    events,
    spine,
    out,
  });
  phases = summary.seconds;
} else {
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  await connection.run(duckdbSql(events, spine, out));
  const threads = await connection.runAndReadAll("SELECT current_setting('threads') AS t");
  phases = { threads: Number(threads.getRowObjects()[0]!.t) };
}
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(usage);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
console.log(JSON.stringify({ seconds, cpuSeconds, maxRssMB: process.resourceUsage().maxRSS / 1024, phases }));
