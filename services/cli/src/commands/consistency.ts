/**
 * `tessera consistency`: training-serving skew, measured. Served vectors (what the feature server
 * logged to the served-features topic: entity, view, version, as_of, values) are recomputed from
 * the Parquet archive with the batch evaluator at the same as_of, and compared feature by feature:
 *
 *   mismatch  both present, different (numbers beyond --tolerance, relative; anything else unequal)
 *   missing   recomputed present, served null or absent
 *   extra     served present, recomputed null
 *   mean abs diff  over the pairs where both are numbers
 *
 * (Chronon's consistency job reports the same family.) Vectors served under another version than
 * the definitions' are counted per view and not compared: their definition is not at hand.
 */

import { writeFile } from "node:fs/promises";
import { AvroDecoder, createKafka, SchemaRegistry, tesseraTopics } from "@tessera/kafka";
import { loadDefinitions } from "@tessera/runtime";
import {
  ARCHIVE_COLUMNS,
  isArchiveDir,
  listArchive,
  readBatches,
  readRows,
  spineEventRange,
  TableReadError,
} from "@tessera/stores";
import {
  type Definitions,
  type FeatureValue,
  type PreparedEvent,
  pointInTime,
  type View,
  viewRuntime,
} from "@tessera/transforms";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";

/** One served vector, as schemas/avro/served_features.avsc holds it. */
export interface ServedVector {
  request_id?: string;
  view: string;
  version: string;
  entity: string;
  as_of: number;
  values: Record<string, unknown>;
  served_at?: number;
}

export interface FeatureConsistency {
  view: string;
  feature: string;
  compared: number;
  mismatches: number;
  missing: number;
  extra: number;
  mismatchShare: number;
  missingShare: number;
  extraShare: number;
  /** Mean of |served − recomputed| over pairs where both are numbers; null when there are none. */
  meanAbsDiff: number | null;
}

export interface ConsistencyReport {
  vectors: number;
  /** Per view: vectors compared, and those skipped (another version, or a view not in the definitions). */
  views: { view: string; version: string; compared: number; otherVersion: number }[];
  unknownViews: number;
  features: FeatureConsistency[];
}

export interface ConsistencyOptions {
  definitions: Definitions;
  /** Archive root (one directory per topic). */
  archive: string;
  served: ServedVector[];
  /** Relative tolerance for numbers (stream and batch may add floats in different orders). */
  tolerance?: number;
}

export async function runConsistency(options: ConsistencyOptions): Promise<ConsistencyReport> {
  const tolerance = options.tolerance ?? 1e-9;
  const report: ConsistencyReport = {
    vectors: options.served.length,
    views: [],
    unknownViews: 0,
    features: [],
  };
  const byView = new Map<string, ServedVector[]>();
  for (const vector of options.served) {
    const list = byView.get(vector.view);
    if (list) list.push(vector);
    else byView.set(vector.view, [vector]);
  }
  for (const [name, vectors] of byView) {
    const view = options.definitions.views.find((v) => v.name === name);
    if (!view) {
      report.unknownViews += vectors.length;
      continue;
    }
    const current = vectors.filter((v) => v.version === view.version);
    report.views.push({
      view: name,
      version: view.version,
      compared: current.length,
      otherVersion: vectors.length - current.length,
    });
    const recomputed = await recompute(
      view,
      `${options.archive.replace(/\/+$/, "")}/${view.source.topic}`,
      current,
    );
    view.features.forEach((feature, f) => {
      const stats = { compared: 0, mismatches: 0, missing: 0, extra: 0, absSum: 0, numeric: 0 };
      current.forEach((vector, i) => {
        stats.compared++;
        const served = normalise(vector.values[feature.name]);
        const expected = normalise(recomputed[i]![f]);
        if (served === null && expected === null) return;
        if (served === null) stats.missing++;
        else if (expected === null) stats.extra++;
        else if (typeof served === "number" && typeof expected === "number") {
          const diff = Math.abs(served - expected);
          stats.absSum += diff;
          stats.numeric++;
          if (diff > tolerance * Math.max(1, Math.abs(expected))) stats.mismatches++;
        } else if (JSON.stringify(served) !== JSON.stringify(expected)) stats.mismatches++;
      });
      const share = (n: number) => (stats.compared === 0 ? 0 : n / stats.compared);
      report.features.push({
        view: name,
        feature: feature.name,
        compared: stats.compared,
        mismatches: stats.mismatches,
        missing: stats.missing,
        extra: stats.extra,
        mismatchShare: share(stats.mismatches),
        missingShare: share(stats.missing),
        extraShare: share(stats.extra),
        meanAbsDiff: stats.numeric === 0 ? null : stats.absSum / stats.numeric,
      });
    });
  }
  return report;
}

/** Served values arrive through Avro (numbers as doubles, lists of scalars); bring both sides to that. */
function normalise(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === "number" && Number.isNaN(value)) return null;
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(normalise);
  if (typeof value === "object") {
    // A union the decoder left wrapped: {"double": 1.5}.
    const entries = Object.entries(value as object);
    if (entries.length === 1 && ["double", "string", "array"].includes(entries[0]![0])) {
      return normalise(entries[0]![1]);
    }
  }
  return value;
}

/** Batch-evaluator values of each vector's entity at its as_of, from the archive (hours pruned). */
async function recompute(view: View, dir: string, vectors: ServedVector[]): Promise<FeatureValue[][]> {
  if (vectors.length === 0) return [];
  const runtime = viewRuntime(view);
  const entities = new Set(vectors.map((v) => v.entity));
  const times = vectors.map((v) => v.as_of);
  const range = spineEventRange(Math.min(...times), Math.max(...times), view.features);
  const events = new Map<string, PreparedEvent[]>();
  if (!(await isArchiveDir(dir)))
    throw new TableReadError("not an archive topic directory (no date=… folders)", { file: dir });
  for (const file of await listArchive(dir, range)) {
    for await (const batch of readBatches(file.path)) {
      const names = Object.keys(batch.columns);
      for (let i = 0; i < batch.length; i++) {
        const row: Record<string, unknown> = {};
        for (const name of names) row[name] = batch.columns[name]![i];
        const prepared = runtime.prepare(row, Number(row[ARCHIVE_COLUMNS.offset]));
        if (!prepared.ok || !entities.has(prepared.entity)) continue;
        const list = events.get(prepared.entity);
        if (list) list.push(prepared);
        else events.set(prepared.entity, [prepared]);
      }
    }
  }
  // One sort-merge per entity over all of its vectors' times.
  const out: FeatureValue[][] = new Array(vectors.length);
  const rowsOf = new Map<string, number[]>();
  vectors.forEach((v, i) => {
    const rows = rowsOf.get(v.entity);
    if (rows) rows.push(i);
    else rowsOf.set(v.entity, [i]);
  });
  for (const [entity, rows] of rowsOf) {
    const values = pointInTime(
      runtime,
      events.get(entity) ?? [],
      rows.map((r) => times[r]!),
    );
    rows.forEach((r, j) => {
      out[r] = values[j]!;
    });
  }
  return out;
}

/** Served vectors from the topic (from the beginning to its end when called), or from a JSONL/Parquet file. */
export async function readServed(
  source: { topic: string; brokers?: string[]; registryUrl?: string } | { file: string },
  window: { from?: number; to?: number } = {},
): Promise<ServedVector[]> {
  const keep = (v: ServedVector) =>
    (window.from === undefined || v.as_of >= window.from) && (window.to === undefined || v.as_of < window.to);
  if ("file" in source) {
    const out: ServedVector[] = [];
    for await (const row of readRows(source.file)) {
      const values = typeof row["values"] === "string" ? JSON.parse(row["values"] as string) : row["values"];
      const vector = { ...(row as unknown as ServedVector), values, as_of: Number(row["as_of"]) };
      if (keep(vector)) out.push(vector);
    }
    return out;
  }
  const kafka = createKafka({
    clientId: "tessera-consistency",
    ...(source.brokers ? { brokers: source.brokers } : {}),
  });
  const registry = new SchemaRegistry(source.registryUrl);
  const decoder = new AvroDecoder(registry);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(source.topic);
  await admin.disconnect();
  const remaining = new Map(
    ends.filter((e) => Number(e.high) > Number(e.low)).map((e) => [e.partition, Number(e.high) - 1]),
  );
  const out: ServedVector[] = [];
  if (remaining.size === 0) {
    registry.close();
    return out;
  }
  // A throwaway group: reading the log must not move anyone's offsets.
  const consumer = kafka.consumer({ groupId: `tessera-consistency-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [source.topic], fromBeginning: true });
  let undecodable = 0;
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const decoded = await decoder.decode(message.value);
          if (decoded.ok) {
            const vector = decoded.value as ServedVector;
            vector.as_of = Number(vector.as_of);
            if (keep(vector)) out.push(vector);
          } else {
            undecodable++;
          }
          if (Number(message.offset) >= (remaining.get(partition) ?? Number.POSITIVE_INFINITY))
            remaining.delete(partition);
          if (remaining.size === 0) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  registry.close();
  if (undecodable > 0)
    console.error(`consistency: ${undecodable} records of ${source.topic} could not be decoded (skipped)`);
  return out;
}

/** The report in the Prometheus text format (for node_exporter's textfile collector or a push). */
export function reportMetrics(report: ConsistencyReport): string {
  const metrics: [string, string, (f: FeatureConsistency) => number | null][] = [
    [
      "tessera_consistency_mismatch_ratio",
      "Share of served values that differ from the offline recomputation.",
      (f) => f.mismatchShare,
    ],
    [
      "tessera_consistency_missing_ratio",
      "Share of served values missing where the recomputation has one.",
      (f) => f.missingShare,
    ],
    [
      "tessera_consistency_extra_ratio",
      "Share of served values present where the recomputation has none.",
      (f) => f.extraShare,
    ],
    [
      "tessera_consistency_mean_abs_diff",
      "Mean absolute difference of numeric served and recomputed values.",
      (f) => f.meanAbsDiff,
    ],
    ["tessera_consistency_compared_vectors", "Served vectors compared.", (f) => f.compared],
  ];
  const label = (text: string) => text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  const lines: string[] = [];
  for (const [name, help, value] of metrics) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const f of report.features) {
      const v = value(f);
      if (v !== null) lines.push(`${name}{view="${label(f.view)}",feature="${label(f.feature)}"} ${v}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function table(report: ConsistencyReport): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const rows = [
    ["view", "feature", "compared", "mismatch", "missing", "extra", "mean abs diff"],
    ...report.features.map((f) => [
      f.view,
      f.feature,
      String(f.compared),
      pct(f.mismatchShare),
      pct(f.missingShare),
      pct(f.extraShare),
      f.meanAbsDiff === null ? "-" : f.meanAbsDiff.toPrecision(4),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) =>
    r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "),
  );
  const skipped = report.views
    .filter((v) => v.otherVersion > 0)
    .map((v) => `${v.view}: ${v.otherVersion} vectors of another version`);
  if (report.unknownViews > 0) skipped.push(`${report.unknownViews} vectors of views not in the definitions`);
  return [...lines, ...(skipped.length ? [`not compared: ${skipped.join("; ")}`] : [])].join("\n");
}

interface ConsistencyFlags {
  definitions: string;
  archive: string;
  topic: string;
  served?: string;
  from?: string;
  to?: string;
  tolerance: string;
  json?: boolean;
  metricsFile?: string;
  failOnMismatch?: boolean;
}

export function register(program: Command): void {
  program
    .command("consistency")
    .description("Recompute served feature vectors from the archive and report per-feature skew")
    .requiredOption("--definitions <defs>", "feature definitions (.yaml or .ts)")
    .requiredOption("--archive <dir>", "archive root (one folder per topic)")
    .option("--topic <topic>", "served-features topic", tesseraTopics.servedFeatures)
    .option("--served <file>", "read served vectors from a JSONL/Parquet file instead of the topic")
    .option("--from <ms>", "only vectors with as_of ≥ this (epoch ms or ISO-8601)")
    .option("--to <ms>", "only vectors with as_of < this")
    .option("--tolerance <relative>", "relative tolerance for numbers", "1e-9")
    .option("--json", "print the report as JSON")
    .option("--metrics-file <path>", "also write the report as Prometheus text (textfile collector)")
    .option("--fail-on-mismatch", "exit 1 when any feature has a mismatch, missing or extra value")
    .action(async (flags: ConsistencyFlags) => {
      const { parseTime } = await import("./backfill.js");
      const tolerance = Number(flags.tolerance);
      if (!Number.isFinite(tolerance) || tolerance < 0)
        throw new CliError(`--tolerance ${flags.tolerance}: a non-negative number`, exitCodes.usage);
      const definitions = await loadDefinitions(flags.definitions);
      const window = {
        ...(flags.from ? { from: parseTime(flags.from, "--from") } : {}),
        ...(flags.to ? { to: parseTime(flags.to, "--to") } : {}),
      };
      let report: ConsistencyReport;
      try {
        const served = await readServed(
          flags.served ? { file: flags.served } : { topic: flags.topic },
          window,
        );
        report = await runConsistency({ definitions, archive: flags.archive, served, tolerance });
      } catch (error) {
        if (error instanceof TableReadError) throw new CliError(error.message, exitCodes.input);
        if (
          (error as { retriable?: boolean }).retriable ||
          (error as Error).name === "KafkaJSConnectionError"
        )
          throw new CliError((error as Error).message, exitCodes.unavailable);
        throw error;
      }
      if (flags.metricsFile) await writeFile(flags.metricsFile, reportMetrics(report));
      console.log(flags.json ? JSON.stringify(report, null, 2) : table(report));
      const skewed = report.features.some((f) => f.mismatches + f.missing + f.extra > 0);
      if (flags.failOnMismatch && skewed) process.exitCode = exitCodes.failed;
    });
}
