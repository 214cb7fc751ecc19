import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CategoryCounter,
  categoricalChiSquared,
  jensenShannon,
  KllSketch,
  ks2samp,
  ksApprox,
  psi,
  wasserstein,
} from "../src/index.js";

// Small integer-valued samples make ties common, which is where ECDF code goes wrong.
const sampleArb = fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 60 });
const realSampleArb = fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), {
  minLength: 1,
  maxLength: 300,
});

describe("properties", () => {
  it("KS: D in [0,1], p in [0,1], symmetric in the samples, 0 for identical samples", () => {
    fc.assert(
      fc.property(sampleArb, sampleArb, (a, b) => {
        const ab = ks2samp(a, b);
        const ba = ks2samp(b, a);
        expect(ab.statistic).toBeGreaterThanOrEqual(0);
        expect(ab.statistic).toBeLessThanOrEqual(1);
        expect(ab.pValue).toBeGreaterThanOrEqual(0);
        expect(ab.pValue).toBeLessThanOrEqual(1);
        expect(ba.statistic).toBe(ab.statistic);
        expect(ba.pValue).toBe(ab.pValue);
        const same = ks2samp(a, [...a].reverse());
        expect(same.statistic).toBe(0);
        expect(same.pValue).toBe(1);
      }),
    );
  });

  it("KS: the statistic equals a brute-force max |F₁ − F₂| and is invariant to monotone maps", () => {
    fc.assert(
      fc.property(sampleArb, sampleArb, (a, b) => {
        const ecdf = (s: number[], x: number) => s.filter((v) => v <= x).length / s.length;
        const brute = Math.max(...[...a, ...b].map((x) => Math.abs(ecdf(a, x) - ecdf(b, x))));
        expect(ks2samp(a, b).statistic).toBeCloseTo(brute, 12);
        expect(
          ks2samp(
            a.map((v) => 3 * v + 7),
            b.map((v) => 3 * v + 7),
          ).statistic,
        ).toBe(ks2samp(a, b).statistic);
      }),
    );
  });

  it("KS on unsketched inputs equals the exact test", () => {
    fc.assert(
      fc.property(sampleArb, sampleArb, (a, b) => {
        const exact = ks2samp(a, b);
        const approx = ksApprox(a, b);
        expect(approx.statistic).toBeCloseTo(exact.statistic, 12);
        expect(approx.pValue).toBeCloseTo(exact.pValue, 12);
      }),
    );
  });

  it("chi-squared on count tables with zeros: finite statistic, p in [0,1], dof = categories − 1", () => {
    const counts = fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(counts, counts, (r, c) => {
        const ref = new Map(r.map((v, i) => [`k${i}`, v]));
        const cur = new Map(c.map((v, i) => [`k${i}`, v]));
        const nonEmpty = (m: Map<string, number>) => [...m.values()].some((v) => v > 0);
        fc.pre(nonEmpty(ref) && nonEmpty(cur));
        const res = categoricalChiSquared(ref, cur);
        expect(Number.isFinite(res.statistic)).toBe(true);
        expect(res.statistic).toBeGreaterThanOrEqual(0);
        expect(res.pValue).toBeGreaterThanOrEqual(0);
        expect(res.pValue).toBeLessThanOrEqual(1);
        expect(res.cramersV).toBeGreaterThanOrEqual(0);
        expect(res.cramersV).toBeLessThanOrEqual(1);
        expect(res.dof).toBe(Math.max(0, res.categories.length - 1));
      }),
    );
  });

  it("JS distance: in [0,1], symmetric, 0 on itself; PSI ≥ 0 and 0 on itself", () => {
    const shares = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 10 });
    fc.assert(
      fc.property(shares, shares, (p, q) => {
        const n = Math.min(p.length, q.length);
        const a = p.slice(0, n);
        const b = q.slice(0, n);
        fc.pre(a.some((v) => v > 0) && b.some((v) => v > 0));
        const d = jensenShannon(a, b);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(1 + 1e-12);
        expect(jensenShannon(b, a)).toBeCloseTo(d, 12);
        expect(jensenShannon(a, a)).toBe(0);
      }),
    );
    fc.assert(
      fc.property(realSampleArb, realSampleArb, (a, b) => {
        expect(psi(a, b)).toBeGreaterThanOrEqual(0);
        expect(psi(a, a)).toBe(0);
      }),
    );
  });

  it("Wasserstein: symmetric, shift-equivariant, satisfies the triangle inequality", () => {
    fc.assert(
      fc.property(sampleArb, sampleArb, sampleArb, fc.integer({ min: -5, max: 5 }), (a, b, c, s) => {
        const ab = wasserstein(a, b);
        expect(wasserstein(b, a)).toBeCloseTo(ab, 9);
        expect(
          wasserstein(
            a,
            a.map((v) => v + s),
          ),
        ).toBeCloseTo(Math.abs(s), 9);
        expect(ab).toBeLessThanOrEqual(wasserstein(a, c) + wasserstein(c, b) + 1e-9);
      }),
    );
  });

  it("KLL merge is order-independent: same n/min/max, CDFs within the sketch error", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.double({ min: -1000, max: 1000, noNaN: true }), { maxLength: 3000 }), {
          minLength: 2,
          maxLength: 5,
        }),
        fc.integer(),
        (shards, seed) => {
          fc.pre(shards.some((s) => s.length > 0));
          const sketches = shards.map((s, i) => {
            const k = new KllSketch(64, seed + i);
            for (const v of s) k.update(v);
            return k;
          });
          const forward = sketches.reduce((acc, s) => acc.merge(s), new KllSketch(64, 1));
          const backward = [...sketches].reverse().reduce((acc, s) => acc.merge(s), new KllSketch(64, 1));
          expect(backward.n).toBe(forward.n);
          expect(backward.min).toBe(forward.min);
          expect(backward.max).toBe(forward.max);
          for (const x of [-500, -100, 0, 100, 500]) {
            // k = 64 here so the property also exercises many compactions
            expect(Math.abs(forward.cdf(x) - backward.cdf(x))).toBeLessThan(0.08);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it("category counter merge is order-independent while under capacity", () => {
    const items = fc.array(fc.constantFrom("a", "b", "c", "d", "e"), { maxLength: 200 });
    fc.assert(
      fc.property(items, items, items, (x, y, z) => {
        const of = (xs: string[]) => {
          const c = new CategoryCounter(10);
          for (const v of xs) c.add(v);
          return c;
        };
        const sorted = (c: CategoryCounter) => [...c.toCounts()].sort();
        const xyz = of(x).merge(of(y)).merge(of(z));
        const zyx = of(z).merge(of(y)).merge(of(x));
        expect(sorted(xyz)).toEqual(sorted(zyx));
        expect(sorted(xyz)).toEqual(sorted(of([...x, ...y, ...z])));
      }),
    );
  });
});
