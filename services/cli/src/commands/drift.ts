import {
  assess,
  ColumnValues,
  compareCategorical,
  compareNumerical,
  DEFAULT_BINS,
  DEFAULT_THRESHOLDS,
  type FeatureDrift,
} from "@tessera/stats";
import { readRows, TableReadError } from "@tessera/stores";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";
import { list, positiveInt } from "../options.js";

interface DriftOptions {
  reference: string;
  current: string;
  json?: boolean;
  failOnDrift?: boolean;
  bins: number;
  minSamples: number;
  columns?: string[];
  exclude?: string[];
}

/** The --json shape: every key always present, null where the statistic does not apply. */
export interface DriftReportFeature {
  type: "numerical" | "categorical";
  ks: { statistic: number; pValue: number } | null;
  psi: number | null;
  js: number;
  wasserstein: number | null;
  chiSquared: { statistic: number; pValue: number; dof: number } | null;
  drift: boolean;
  severity: "ok" | "warn" | "critical";
}

export function register(program: Command): void {
  program
    .command("drift")
    .description(
      "Compare a current data set with a reference, column by column: KS, PSI, Jensen–Shannon and " +
        "Wasserstein for numeric columns; chi-squared and Jensen–Shannon for categorical ones.",
    )
    .requiredOption("--reference <path>", "reference table (.csv, .jsonl, .parquet, or a directory of them)")
    .requiredOption("--current <path>", "current table, same formats")
    .option("--json", "print the result as JSON instead of a table")
    .option("--fail-on-drift", "exit with status 1 when any column drifts")
    .option("--bins <n>", "PSI/JS bins at the reference quantiles", positiveInt, DEFAULT_BINS)
    .option(
      "--min-samples <n>",
      "no verdict for a column with fewer non-null values on either side",
      positiveInt,
      DEFAULT_THRESHOLDS.minSamples,
    )
    .option("--columns <names>", "only these comma-separated columns", list)
    .option("--exclude <names>", "skip these comma-separated columns (ids, timestamps)", list)
    .action(async (options: DriftOptions) => {
      const report = await driftReport(options);
      const names = Object.keys(report);
      if (names.length === 0)
        throw new CliError("the two tables have no column in common with data", exitCodes.input);
      process.stdout.write(
        options.json ? `${JSON.stringify({ features: report }, null, 2)}\n` : table(report),
      );
      const drifted = names.filter((name) => report[name]!.drift);
      if (options.failOnDrift && drifted.length > 0) {
        throw new CliError(`drift in ${drifted.length} column(s): ${drifted.join(", ")}`, exitCodes.failed);
      }
    });
}

async function readColumns(path: string, columns: string[] | undefined): Promise<Map<string, ColumnValues>> {
  const out = new Map<string, ColumnValues>();
  try {
    for await (const row of readRows(path, columns ? { columns } : {})) {
      for (const name of Object.keys(row)) {
        let column = out.get(name);
        if (!column) {
          column = new ColumnValues();
          out.set(name, column);
        }
        column.add(row[name]);
      }
    }
  } catch (error) {
    if (error instanceof TableReadError) throw new CliError(error.message, exitCodes.input);
    throw error;
  }
  return out;
}

async function driftReport(options: DriftOptions): Promise<Record<string, DriftReportFeature>> {
  const [reference, current] = await Promise.all([
    readColumns(options.reference, options.columns),
    readColumns(options.current, options.columns),
  ]);
  const thresholds = { minSamples: options.minSamples };
  const report: Record<string, DriftReportFeature> = {};
  const skipped: string[] = [];
  const excluded = new Set(options.exclude);
  for (const [name, ref] of reference) {
    const cur = current.get(name);
    if (!cur || excluded.has(name)) continue;
    if (!ref.type || !cur.type) {
      skipped.push(name);
      continue;
    }
    // A column with text on either side is compared as categories on both.
    const result =
      ref.type === "numerical" && cur.type === "numerical"
        ? assess(compareNumerical(ref.numbers, cur.numbers, options.bins), thresholds)
        : assess(compareCategorical(ref.categoryCounts(), cur.categoryCounts()), thresholds);
    report[name] = toReport(result);
  }
  if (skipped.length > 0)
    process.stderr.write(`tessera: skipped (no non-null values on one side): ${skipped.join(", ")}\n`);
  return report;
}

function toReport(result: FeatureDrift): DriftReportFeature {
  const numerical = result.type === "numerical";
  return {
    type: result.type,
    ks: numerical ? result.ks : null,
    psi: numerical ? result.psi : null,
    js: result.js,
    wasserstein: numerical ? result.wasserstein : null,
    chiSquared: numerical ? null : result.chiSquared,
    drift: result.drift,
    severity: result.severity,
  };
}

function fixed(v: number | null | undefined, digits = 4): string {
  return v === null || v === undefined ? "-" : v.toFixed(digits);
}

function pValue(v: number | null | undefined): string {
  if (v === null || v === undefined) return "-";
  return v !== 0 && v < 1e-4 ? v.toExponential(2) : v.toFixed(4);
}

function table(report: Record<string, DriftReportFeature>): string {
  const header = ["column", "type", "KS D", "KS p", "PSI", "JS", "W/σ", "χ²", "χ² p", "dof", "severity"];
  const rows = Object.entries(report).map(([name, f]) => [
    name,
    f.type,
    fixed(f.ks?.statistic),
    pValue(f.ks?.pValue),
    fixed(f.psi),
    fixed(f.js),
    fixed(f.wasserstein),
    f.chiSquared ? f.chiSquared.statistic.toFixed(2) : "-",
    pValue(f.chiSquared?.pValue),
    f.chiSquared ? String(f.chiSquared.dof) : "-",
    f.drift ? f.severity.toUpperCase() : f.severity,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  const drifted = Object.values(report).filter((f) => f.drift);
  const critical = drifted.filter((f) => f.severity === "critical").length;
  const summary = `${drifted.length} of ${rows.length} column(s) drifted (${critical} critical).`;
  return `${[line(header), ...rows.map(line)].join("\n")}\n\n${summary}\n`;
}
