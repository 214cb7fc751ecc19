/** Small helpers shared by the benchmarks: figures, medians and the stack's connection settings. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** Fill KAFKA_BROKERS etc. from .tessera/stack.env unless the environment has them already. */
export function loadStackEnv(): void {
  const file = join(repoRoot, ".tessera", "stack.env");
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = line.match(/^([A-Z_]+)=(.*)$/);
    if (match && process.env[match[1]!] === undefined) process.env[match[1]!] = match[2]!;
  }
}

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set: start the stack first (npm run stack:up) or export it.`);
    process.exit(2);
  }
  return value;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Parse `--name value` flags into numbers, with defaults. */
export function numericFlags<T extends Record<string, number>>(defaults: T): T {
  const out = { ...defaults };
  const args = process.argv.slice(2);
  for (const key of Object.keys(defaults)) {
    const i = args.indexOf(`--${key}`);
    if (i >= 0) {
      const value = Number(args[i + 1]);
      if (!Number.isFinite(value)) throw new Error(`--${key} takes a number`);
      (out as Record<string, number>)[key] = value;
    }
  }
  return out;
}

/** Keep the figures of the last run under bench/out (git-ignored) for later comparison. */
export function saveResult(name: string, result: unknown): string {
  const file = join(repoRoot, "bench", "out", `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), result }, null, 2)}\n`);
  return file;
}
