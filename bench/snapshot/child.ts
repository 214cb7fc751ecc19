/**
 * One engine's run in its own process, so its peak RSS is its own:
 *   node --import tsx bench/snapshot/child.ts <tessera|duckdb> <archive topic dir> <spine.parquet> <out.parquet>
 * Prints one JSON line: { seconds, maxRssMB, phases }; for Tessera, phases also holds the peak RSS
 * reached by the end of each phase (peakMB), which says which phase sets the peak.
 */
import { runSnapshot } from "@tessera/stores";
import { validateDefinitions } from "@tessera/transforms";
import { definitions, duckdbSql, FEATURES } from "./features.js";

const [engine, archive, spine, out] = process.argv.slice(2) as [string, string, string, string];
const started = performance.now();
let phases: unknown;
const peakMB = () => Math.round(process.resourceUsage().maxRSS / 1024);
if (engine === "tessera") {
  const view = validateDefinitions(definitions("bench")).views[0]!;
  const peaks: Record<string, number> = {};
  let phase: string | undefined;
  const summary = await runSnapshot({
    selections: [{ view, features: FEATURES.map((_, i) => i) }],
    events: archive,
    spine,
    out,
    onProgress: (p) => {
      if (p.phase === phase) return;
      if (phase) peaks[phase] = peakMB();
      phase = p.phase;
    },
  });
  if (phase) peaks[phase] = peakMB();
  phases = { ...summary.seconds, peakMB: peaks };
} else {
  // Imported only here: DuckDB's native library would add ~36 MB to Tessera's peak RSS otherwise.
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  await connection.run(duckdbSql(archive, spine, out));
  const threads = await connection.runAndReadAll("SELECT current_setting('threads') AS t");
  phases = { threads: Number(threads.getRowObjects()[0]!.t) };
}
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ seconds, maxRssMB: process.resourceUsage().maxRSS / 1024, phases }));
