import { describe, expect, it } from "vitest";
import {
  buildProfile,
  CategoryCounter,
  compareNumerical,
  compareToProfile,
  KllSketch,
  ks2samp,
  ksApprox,
  OTHER_CATEGORY,
  type ReferenceProfile,
} from "../src/index.js";
import { mulberry32, sample } from "./oracle.js";

const normal = (seed: number, n: number, shift = 0, scale = 1) => sample({ seed, n, scale, shift, grid: 0 });

function sketchOf(values: number[], k?: number, seed?: number): KllSketch {
  const s = new KllSketch(k, seed);
  for (const v of values) s.update(v);
  return s;
}

/** max |F_sketch(x) − F_exact(x)| over the sample points: the sketch's worst rank error. */
function maxRankError(sketch: KllSketch, values: number[]): number {
  const sorted = Float64Array.from(values).sort();
  let worst = 0;
  for (let i = 0; i < sorted.length; i += 97) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[i]) j++;
    worst = Math.max(worst, Math.abs(sketch.cdf(sorted[i]!) - (j + 1) / sorted.length));
  }
  return worst;
}

describe("KLL quantile sketch", () => {
  it("is exact while it holds every value, and keeps n, min and max exact always", () => {
    const small = normal(1, 500);
    const s = sketchOf(small);
    expect(maxRankError(s, small)).toBe(0);
    const big = normal(2, 200_000);
    const t = sketchOf(big);
    expect(t.n).toBe(200_000);
    expect(t.min).toBe(big.reduce((a, b) => Math.min(a, b)));
    expect(t.max).toBe(big.reduce((a, b) => Math.max(a, b)));
    const { weights } = t.weightedItems();
    expect(weights.reduce((a, b) => a + b, 0)).toBe(200_000);
    expect(weights.length).toBeLessThan(4 * 1024);
  });

  it("rank error at k = 1024 stays below 0.005 on 10⁵–10⁶ values", { timeout: 60_000 }, () => {
    for (const n of [100_000, 1_000_000]) {
      const values = normal(3 + n, n);
      const err = maxRankError(sketchOf(values), values);
      console.log(`KLL k=1024 n=${n}: max rank error ${err.toFixed(5)}`);
      expect(err).toBeLessThan(0.005);
    }
  });

  it("KS computed on sketches tracks the exact KS (|ΔD| < 0.006)", { timeout: 60_000 }, () => {
    let worst = 0;
    for (const [n, shift] of [
      [50_000, 0],
      [50_000, 0.02],
      [200_000, 0.05],
      [200_000, 0.3],
    ] as const) {
      const a = normal(10 + n, n);
      const b = normal(20 + n, n, shift);
      const exact = ks2samp(a, b);
      const both = ksApprox(sketchOf(a, 1024, 1), sketchOf(b, 1024, 2));
      const one = ksApprox(sketchOf(a, 1024, 3), b);
      worst = Math.max(
        worst,
        Math.abs(both.statistic - exact.statistic),
        Math.abs(one.statistic - exact.statistic),
      );
      expect(both.n1).toBe(n);
    }
    console.log(`KS on KLL sketches (k=1024): worst |D_sketch − D_exact| = ${worst.toFixed(5)}`);
    expect(worst).toBeLessThan(0.006);
  });

  it("round-trips through JSON and continues identically", () => {
    const values = normal(5, 30_000);
    const a = sketchOf(values.slice(0, 20_000));
    const b = KllSketch.fromJSON(JSON.parse(JSON.stringify(a)));
    for (const v of values.slice(20_000)) {
      a.update(v);
      b.update(v);
    }
    expect(b.toJSON()).toEqual(a.toJSON());
    expect(() => KllSketch.fromJSON({ ...a.toJSON(), n: 5 })).toThrow(/weights sum/);
  });

  it("merging shards approximates the sketch of the whole", () => {
    const values = normal(6, 120_000);
    const shards = [0, 1, 2, 3].map((i) => sketchOf(values.slice(i * 30_000, (i + 1) * 30_000), 1024, i + 1));
    const merged = shards.reduce((acc, s) => acc.merge(s), new KllSketch(1024, 9));
    expect(merged.n).toBe(120_000);
    expect(maxRankError(merged, values)).toBeLessThan(0.005);
  });
});

describe("category counter (Misra–Gries)", () => {
  it("is exact up to its capacity", () => {
    const c = new CategoryCounter(3);
    for (const x of ["a", "b", "a", "c", "a"]) c.add(x);
    expect([...c.toCounts()]).toEqual([
      ["a", 3],
      ["b", 1],
      ["c", 1],
    ]);
  });

  it("undercounts by at most offset ≤ n/(capacity+1), and the remainder goes to (other)", () => {
    const draw = mulberry32(42);
    const truth = new Map<string, number>();
    const c = new CategoryCounter(20);
    for (let i = 0; i < 50_000; i++) {
      // Zipf-like: a few heavy categories, a long tail
      const u = draw() / 2 ** 32;
      const key = `k${Math.floor(1 / (u + 0.002))}`;
      truth.set(key, (truth.get(key) ?? 0) + 1);
      c.add(key);
    }
    expect(c.offset).toBeLessThanOrEqual(50_000 / 21);
    for (const [key, count] of truth) {
      expect(c.estimate(key)).toBeLessThanOrEqual(count);
      expect(c.estimate(key)).toBeGreaterThanOrEqual(count - c.offset);
    }
    const counts = c.toCounts();
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(50_000);
    expect(counts.get(OTHER_CATEGORY)).toBeGreaterThan(0);
    expect(CategoryCounter.fromJSON(JSON.parse(JSON.stringify(c))).toCounts()).toEqual(counts);
  });
});

describe("reference profile", () => {
  const rows = (seed: number, n: number, shift: number, newCategory = false) => {
    const x = normal(seed, n, shift);
    const draw = mulberry32(seed);
    return x.map((v, i) => ({
      amount: i % 50 === 0 ? null : v,
      country: newCategory && i % 4 === 0 ? "BR" : ["DE", "FR", "US"][draw() % 3],
      flag: i % 2 === 0,
      note: i % 7 === 0 ? "" : "x",
    }));
  };

  it("types columns, counts nulls, and survives JSON", () => {
    const profile = buildProfile(rows(1, 5000, 0));
    const restored: ReferenceProfile = JSON.parse(JSON.stringify(profile));
    expect(restored).toEqual(profile);
    const amount = restored.features.amount!;
    expect(amount.type).toBe("numerical");
    expect(amount.count).toBe(4900);
    expect(amount.nulls).toBe(100);
    if (amount.type === "numerical") {
      expect(amount.edges.length).toBe(9);
      expect(amount.shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
    expect(restored.features.country!.type).toBe("categorical");
    expect(restored.features.flag!.type).toBe("categorical");
    expect(restored.features.note!.nulls).toBe(715);
  });

  it("a window compared with the profile agrees with the exact comparison and flags a shift", () => {
    const refRows = rows(2, 20_000, 0);
    const profile = buildProfile(refRows);
    const numeric = (rs: ReturnType<typeof rows>) =>
      rs.map((r) => r.amount).filter((v): v is number => v !== null);
    for (const shift of [0, 0.5]) {
      const cur = numeric(rows(3, 5_000, shift));
      const viaProfile = compareToProfile(profile.features.amount!, cur);
      const exact = compareNumerical(numeric(refRows), cur);
      if (viaProfile.type !== "numerical") throw new Error("expected numerical");
      expect(Math.abs(viaProfile.ks.statistic - exact.ks.statistic)).toBeLessThan(0.006);
      expect(viaProfile.psi).toBeCloseTo(exact.psi, 12);
      expect(viaProfile.js).toBeCloseTo(exact.js, 12);
      expect(Math.abs(viaProfile.wasserstein - exact.wasserstein)).toBeLessThan(0.01);
      // a window kept as a sketch gives nearly the same answer
      const viaSketch = compareToProfile(profile.features.amount!, sketchOf(cur, 1024, 7));
      if (viaSketch.type !== "numerical") throw new Error("expected numerical");
      expect(viaSketch.currentCount).toBe(cur.length);
      expect(Math.abs(viaSketch.ks.statistic - exact.ks.statistic)).toBeLessThan(0.006);
      expect(Math.abs(viaSketch.psi - exact.psi)).toBeLessThan(0.01);
      expect(Math.abs(viaSketch.wasserstein - exact.wasserstein)).toBeLessThan(0.01);
      if (shift > 0) expect(viaProfile.psi).toBeGreaterThan(0.25);
      else expect(viaProfile.psi).toBeLessThan(0.02);
    }
    const countries = new CategoryCounter();
    for (const r of rows(4, 5_000, 0, true)) countries.add(r.country!);
    const cat = compareToProfile(profile.features.country!, countries);
    if (cat.type !== "categorical") throw new Error("expected categorical");
    expect(cat.chiSquared.dof).toBe(3); // DE, FR, US + the new BR
    expect(cat.chiSquared.pValue).toBeLessThan(1e-100);
  });
});
