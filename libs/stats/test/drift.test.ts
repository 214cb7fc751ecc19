import { describe, expect, it } from "vitest";
import {
  assess,
  categoricalChiSquared,
  compareCategorical,
  compareNumerical,
  normalizedWasserstein,
} from "../src/index.js";
import { sample } from "./oracle.js";

const normal = (seed: number, n: number, shift = 0, scale = 1) => sample({ seed, n, scale, shift, grid: 0 });
const counts = (entries: Record<string, number>) => new Map(Object.entries(entries));

describe("drift verdicts", () => {
  it("a negligible shift on a huge sample is significant but not drift (effect-size floor)", () => {
    const result = compareNumerical(normal(1, 200_000), normal(2, 200_000, 0.02));
    expect(result.ks.pValue).toBeLessThan(0.01);
    expect(result.ks.statistic).toBeLessThan(0.1);
    expect(assess(result)).toMatchObject({ drift: false, severity: "ok" });
  });

  it("a moderate shift warns, a large one is critical", () => {
    const ref = normal(3, 5000);
    const moderate = assess(compareNumerical(ref, normal(4, 5000, 0.25)));
    expect(moderate.type === "numerical" && moderate.psi).toBeGreaterThanOrEqual(0.1);
    expect(moderate.severity).toBe("warn");
    const large = assess(compareNumerical(ref, normal(5, 5000, 1)));
    expect(large).toMatchObject({ drift: true, severity: "critical" });
  });

  it("no verdict below the minimum sample size", () => {
    const result = compareNumerical(normal(6, 50), normal(7, 50, 5));
    expect(assess(result).severity).toBe("ok");
    expect(assess(result, { minSamples: 10 }).severity).toBe("critical");
  });

  it("categorical: a new category drifts; the same mix does not", () => {
    const ref = counts({ DE: 400, FR: 300, US: 300 });
    expect(assess(compareCategorical(ref, counts({ DE: 410, FR: 290, US: 300 }))).drift).toBe(false);
    const shifted = assess(compareCategorical(ref, counts({ DE: 200, FR: 150, US: 150, BR: 500 })));
    expect(shifted).toMatchObject({ drift: true, severity: "critical" });
  });

  it("degenerate categorical inputs give documented finite results", () => {
    expect(categoricalChiSquared(counts({ a: 5 }), counts({ a: 9 }))).toMatchObject({
      statistic: 0,
      pValue: 1,
      dof: 0,
      cramersV: 0,
    });
    // a category present only in the current window, another only in the reference
    const r = categoricalChiSquared(counts({ a: 10, gone: 5, unused: 0 }), counts({ a: 10, new: 5 }));
    expect(r.categories).toEqual(["a", "gone", "new"]);
    expect(Number.isFinite(r.statistic)).toBe(true);
    expect(() => categoricalChiSquared(counts({ a: 1 }), counts({}))).toThrow(/empty/);
  });

  it("normalised Wasserstein uses the population std with a 0.001 floor", () => {
    expect(normalizedWasserstein([1, 3], [2, 4])).toBeCloseTo(1, 12); // W = 1, σ = 1
    expect(normalizedWasserstein([5, 5, 5], [5, 5, 6])).toBeCloseTo(1 / 3 / 0.001, 6);
  });
});
