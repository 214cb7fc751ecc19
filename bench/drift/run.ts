/**
 * Drift statistics benchmark: KS, PSI and chi-squared on 1M-sample windows, per-event sketch
 * update cost, and the same KS computed by scipy as the baseline.
 *
 *   node --import tsx bench/drift/run.ts [--runs 7]
 *
 * scipy comes from test/oracles/scipy/.venv (see test/oracles/scipy/generate.py); without it
 * only our figures are printed. Figures are medians of wall-clock times on a shared machine:
 * the load average is printed with them.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CategoryCounter, categoricalChiSquared, KllSketch, ks2samp, mulberry32, psi } from "@tessera/stats";

const runsFlag = process.argv.indexOf("--runs");
const RUNS = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 7;
const N = 1_000_000;
const root = fileURLToPath(new URL("../../", import.meta.url));
const python = join(root, "test/oracles/scipy/.venv/bin/python");

/** Seeded normal values (mulberry32 + Box–Muller), so every run measures the same data. */
function normals(seed: number, n: number, shift = 0): Float64Array {
  const draw = mulberry32(seed);
  const uniform = () => (draw() + 0.5) / 2 ** 32; // never 0: log(0) is -∞
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++)
    out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()) + shift;
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median wall time in ms of `fn` over RUNS runs (after one warm-up), and its last result. */
function time<T>(fn: () => T): { ms: number; result: T } {
  let result = fn();
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    result = fn();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), result };
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(2));

interface Case {
  name: string;
  a: Float64Array;
  b: Float64Array;
}

const cases: Case[] = [
  { name: "KS 1M vs 1M, no drift (asymptotic p)", a: normals(1, N), b: normals(2, N) },
  { name: "KS 1M vs 1M, shift 0.01σ (asymptotic p)", a: normals(3, N), b: normals(4, N, 0.01) },
  { name: "KS 10k vs 9k, shift 0.05σ (exact p)", a: normals(5, 10_000), b: normals(6, 9_000, 0.05) },
];

console.log(`drift bench: ${RUNS} runs per figure (median), node ${process.version}`);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} (2 cores, shared)\n`,
);

const ours = cases.map((c) => {
  const { ms, result } = time(() => ks2samp(c.a, c.b));
  console.log(
    `${c.name}: ${fmt(ms)} ms  (D=${result.statistic.toFixed(6)}, p=${result.pValue.toPrecision(6)})`,
  );
  return { ...c, ms, result };
});

const reference = cases[0]!.a;
const current = cases[1]!.b;
const psiTime = time(() => psi(reference, current));
console.log(
  `PSI 1M vs 1M, 10 bins (incl. reference quantiles): ${fmt(psiTime.ms)} ms  (PSI=${psiTime.result.toFixed(6)})`,
);

const categories = ["DE", "FR", "US", "GB", "ES", "IT", "NL", "PL", "SE", "BR"];
const refCats = Array.from(reference, (v) => categories[Math.min(9, Math.floor(Math.abs(v) * 4))]!);
const curCats = Array.from(current, (v) => categories[Math.min(9, Math.floor(Math.abs(v) * 4))]!);
const count = (xs: string[]) => {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
};
const chiFull = time(() => categoricalChiSquared(count(refCats), count(curCats)));
const refCounts = count(refCats);
const curCounts = count(curCats);
const chiOnly = time(() => categoricalChiSquared(refCounts, curCounts));
console.log(
  `chi-squared 1M vs 1M, 10 categories: ${fmt(chiFull.ms)} ms counting + test, ${fmt(chiOnly.ms)} ms test on counts  (p=${chiFull.result.pValue.toPrecision(6)})`,
);

const perEvent = (fn: () => void) => (time(fn).ms * 1e6) / N; // ns per event
const kllNs = perEvent(() => {
  const s = new KllSketch();
  for (let i = 0; i < N; i++) s.update(reference[i]!);
});
const counterNs = perEvent(() => {
  const c = new CategoryCounter();
  for (let i = 0; i < N; i++) c.add(refCats[i]!);
});
console.log(
  `sketch update, per event: KLL (k=1024) ${kllNs.toFixed(0)} ns, category counter ${counterNs.toFixed(0)} ns`,
);

if (!existsSync(python)) {
  console.log(
    `\nscipy baseline skipped: ${python} is missing (see test/oracles/scipy/generate.py to create the venv).`,
  );
} else {
  const dir = await mkdtemp(join(tmpdir(), "tessera-bench-drift-"));
  try {
    const script = `
import json, sys, time
import numpy as np
from scipy import stats
runs = int(sys.argv[1]); out = []
for i in range(2, len(sys.argv), 2):
    a = np.fromfile(sys.argv[i], dtype="<f8"); b = np.fromfile(sys.argv[i + 1], dtype="<f8")
    res = stats.ks_2samp(a, b); times = []
    for _ in range(runs):
        t0 = time.perf_counter(); res = stats.ks_2samp(a, b); times.append((time.perf_counter() - t0) * 1000)
    out.append({"ms": float(np.median(times)), "statistic": float(res.statistic), "pValue": float(res.pvalue)})
print(json.dumps(out))
`;
    const files: string[] = [];
    for (const [i, c] of cases.entries()) {
      for (const [side, data] of [
        ["a", c.a],
        ["b", c.b],
      ] as const) {
        const file = join(dir, `${i}-${side}.f64`);
        await writeFile(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        files.push(file);
      }
    }
    const { stdout } = await promisify(execFile)(python, ["-c", script, String(RUNS), ...files], {
      maxBuffer: 1 << 20,
    });
    const scipy: { ms: number; statistic: number; pValue: number }[] = JSON.parse(stdout);
    console.log("\nscipy.stats.ks_2samp on the same data (same machine, same runs):");
    for (const [i, c] of ours.entries()) {
      const s = scipy[i]!;
      const agree =
        Math.abs(s.statistic - c.result.statistic) < 1e-12 && Math.abs(s.pValue - c.result.pValue) <= 1e-6;
      console.log(
        `${c.name}: scipy ${fmt(s.ms)} ms, ours ${fmt(c.ms)} ms → ours/scipy ${(c.ms / s.ms).toFixed(2)}×` +
          `  (scipy p=${s.pValue.toPrecision(6)}; results ${agree ? "agree" : "DIFFER"})`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
console.log(
  `\nload average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
