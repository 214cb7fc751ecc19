import { DEFAULT_BINS, DEFAULT_CATEGORY_CAPACITY, DEFAULT_KLL_K, ProfileBuilder } from "@tessera/stats";
import { listTableFiles, readRows, TableReadError, writeObject } from "@tessera/stores";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";
import { list, positiveInt, time } from "../options.js";

interface ProfileFlags {
  from: string;
  out: string;
  features?: string[];
  exclude?: string[];
  bins: number;
  k: number;
  categoryCapacity: number;
  since?: number;
  until?: number;
  timeColumn?: string;
}

const HOUR = 3_600_000;

export function register(program: Command): void {
  program
    .command("profile")
    .description(
      "Build a drift reference profile (per feature: quantile sketch for KS, quantile bins for PSI/JS, " +
        "category counts for chi-squared) from a snapshot, or from an archive over a time range.",
    )
    .requiredOption("--from <path>", "a snapshot (.parquet, .csv, .jsonl) or a directory, e.g. an archive")
    .requiredOption(
      "--out <file>",
      "profile JSON to write, a path or s3:// URL (the drift worker's reference.path)",
    )
    .option("--features <names>", "only these comma-separated columns (default: every column)", list)
    .option("--exclude <names>", "skip these comma-separated columns (ids, timestamps)", list)
    .option("--bins <n>", "PSI/JS bins at the reference quantiles", positiveInt, DEFAULT_BINS)
    .option("--k <n>", "KLL sketch accuracy parameter", positiveInt, DEFAULT_KLL_K)
    .option(
      "--category-capacity <n>",
      "distinct categories counted exactly",
      positiveInt,
      DEFAULT_CATEGORY_CAPACITY,
    )
    .option("--since <time>", "time range start, inclusive (ISO 8601 or epoch ms)", time)
    .option("--until <time>", "time range end, exclusive (ISO 8601 or epoch ms)", time)
    .option(
      "--time-column <name>",
      "row time column for --since/--until (without it only whole Hive hour partitions are selected)",
    )
    .action(async (flags: ProfileFlags) => {
      if (flags.since !== undefined && flags.until !== undefined && flags.since >= flags.until)
        throw new CliError("--since must be before --until", exitCodes.usage);
      const summary = await buildFromFiles(flags);
      const features = Object.entries(summary.profile.features);
      if (features.length === 0) throw new CliError("no column with data to profile", exitCodes.input);
      await writeObject(flags.out, `${JSON.stringify(summary.profile)}\n`).catch(
        (error: NodeJS.ErrnoException) => {
          throw new CliError(`--out ${flags.out}: ${error.code ?? error.message}`, exitCodes.input);
        },
      );
      const numerical = features.filter(([, f]) => f.type === "numerical").map(([n]) => n);
      const categorical = features.filter(([, f]) => f.type === "categorical").map(([n]) => n);
      console.log(
        `wrote ${flags.out}: ${summary.profile.rows} rows from ${summary.files} file(s)` +
          (summary.skippedFiles ? ` (${summary.skippedFiles} outside the time range skipped)` : "") +
          `; numerical: ${numerical.join(", ") || "-"}; categorical: ${categorical.join(", ") || "-"}`,
      );
    });
}

/** The hour a Hive-partitioned path covers (date=YYYY-MM-DD[/hour=HH]), or undefined if it has none. */
export function partitionRange(file: string): { start: number; end: number } | undefined {
  const date = /(?:^|[\\/])date=(\d{4}-\d{2}-\d{2})(?=[\\/])/.exec(file)?.[1];
  if (!date) return undefined;
  const hour = /(?:^|[\\/])hour=(\d{1,2})(?=[\\/])/.exec(file)?.[1];
  const day = Date.parse(`${date}T00:00:00Z`);
  return hour === undefined
    ? { start: day, end: day + 24 * HOUR }
    : { start: day + Number(hour) * HOUR, end: day + (Number(hour) + 1) * HOUR };
}

function rowTime(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Date) return value.getTime();
  if (typeof value === "string") {
    const ms = /^-?\d+$/.test(value) ? Number(value) : Date.parse(value);
    return Number.isFinite(ms) ? ms : undefined;
  }
  return undefined;
}

async function buildFromFiles(flags: ProfileFlags) {
  const since = flags.since ?? Number.NEGATIVE_INFINITY;
  const until = flags.until ?? Number.POSITIVE_INFINITY;
  const ranged = flags.since !== undefined || flags.until !== undefined;
  const excluded = new Set(flags.exclude);
  if (flags.timeColumn) excluded.add(flags.timeColumn);
  const builder = new ProfileBuilder({
    bins: flags.bins,
    k: flags.k,
    categoryCapacity: flags.categoryCapacity,
    columns: flags.features?.filter((name) => !excluded.has(name)),
  });
  let files: string[];
  try {
    files = await listTableFiles(flags.from);
  } catch (error) {
    if (error instanceof TableReadError) throw new CliError(error.message, exitCodes.input);
    throw error;
  }
  // Partition pruning: an hour entirely outside [since, until) is never opened.
  const selected = ranged
    ? files.filter((file) => {
        const range = partitionRange(file);
        return !range || (range.end > since && range.start < until);
      })
    : files;
  const readColumns = flags.features
    ? [...new Set([...flags.features, ...(flags.timeColumn ? [flags.timeColumn] : [])])]
    : undefined;
  try {
    for (const file of selected) {
      for await (const row of readRows(file, readColumns ? { columns: readColumns } : {})) {
        if (ranged && flags.timeColumn) {
          const t = rowTime(row[flags.timeColumn]);
          if (t === undefined || t < since || t >= until) continue;
        }
        if (excluded.size > 0) for (const name of excluded) delete row[name];
        builder.add(row);
      }
    }
  } catch (error) {
    if (error instanceof TableReadError) throw new CliError(error.message, exitCodes.input);
    throw error;
  }
  return { profile: builder.finish(), files: selected.length, skippedFiles: files.length - selected.length };
}
