import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { approxDistinct } from "../src/aggregators/hll.js";
import { type Aggregator, ByteWriter, createAggregator, OPS, type Op, type OpState } from "../src/index.js";

interface Item {
  value: unknown;
  ts: number;
  seq: number;
}

const numericOps = new Set(["sum", "mean", "min", "max", "variance", "stddev", "approx_quantile"]);
const params = { k: 3, quantile: 0.9 };

function itemsFor(op: Op) {
  const value = numericOps.has(op)
    ? fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 })
    : fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom("a", "b", "c", true));
  return fc.array(fc.record({ value, ts: fc.integer({ min: 0, max: 50 }) }), { maxLength: 25 });
}

function build(agg: Aggregator<OpState>, items: Item[]) {
  let state = agg.init();
  for (const item of items) state = agg.add(state, item.value, item.ts, item.seq);
  return state;
}

function bytesOf<S>(agg: Aggregator<S>, state: S): Uint8Array {
  const out = new ByteWriter();
  agg.serialize(state, out);
  return out.finish();
}

const roundTrip = (agg: Aggregator<OpState>, state: OpState) => agg.deserialize(bytesOf(agg, state));

describe.each(OPS)("%s is a commutative monoid with binary state", (op) => {
  const agg = createAggregator(op, params);
  const chunks = fc.tuple(itemsFor(op), itemsFor(op), itemsFor(op)).map(([a, b, c]) => {
    let seq = 0;
    const stamp = (xs: { value: unknown; ts: number }[]) => xs.map((x) => ({ ...x, seq: seq++ }));
    return [stamp(a), stamp(b), stamp(c)] as const;
  });

  it("merge is associative and commutative, and equals adding everything to one state", () => {
    fc.assert(
      fc.property(chunks, ([a, b, c]) => {
        const left = agg.merge(agg.merge(build(agg, a), build(agg, b)), build(agg, c));
        const right = agg.merge(build(agg, a), agg.merge(build(agg, b), build(agg, c)));
        const swapped = agg.merge(agg.merge(build(agg, c), build(agg, a)), build(agg, b));
        const whole = build(agg, [...c, ...b, ...a]);
        const value = agg.finalize(left);
        expect(agg.finalize(right)).toEqual(value);
        expect(agg.finalize(swapped)).toEqual(value);
        expect(agg.finalize(whole)).toEqual(value);
      }),
      { numRuns: 150 },
    );
  });

  it("round-trips through bytes, and merging never changes the merged-in state", () => {
    fc.assert(
      fc.property(chunks, ([a, b]) => {
        const sa = build(agg, a);
        const sb = build(agg, b);
        const bytesB = bytesOf(agg, sb);
        expect(agg.finalize(roundTrip(agg, sa))).toEqual(agg.finalize(sa));
        const merged = agg.finalize(agg.merge(roundTrip(agg, sa), roundTrip(agg, sb)));
        expect(merged).toEqual(agg.finalize(agg.merge(sa, sb)));
        expect(bytesOf(agg, sb)).toEqual(bytesB);
      }),
      { numRuns: 150 },
    );
  });

  it("finalises an empty state to 0 (count, sum) or null (everything else)", () => {
    expect(agg.finalize(agg.init())).toBe(op === "count" || op === "sum" ? 0 : null);
    expect(agg.finalize(roundTrip(agg, agg.init()))).toBe(op === "count" || op === "sum" ? 0 : null);
  });
});

describe("sketch error bounds (stated in the docs)", () => {
  it("approx_distinct stays within ±4.9% (3σ of 1.6%) from 10 to 200k distinct values", () => {
    const agg = createAggregator("approx_distinct");
    for (const n of [10, 100, 1_000, 5_000, 20_000, 200_000]) {
      let state = agg.init();
      for (let i = 0; i < n; i++) state = agg.add(state, `user-${i}`, 0, i);
      const estimate = agg.finalize(state) as number;
      expect(Math.abs(estimate - n) / n, `n=${n} estimate=${estimate}`).toBeLessThanOrEqual(0.049);
    }
  });

  it("approx_distinct is within ±2 for small sets and its dense form is under 4.2 KB", () => {
    const agg = createAggregator("approx_distinct");
    let state = agg.init();
    for (let i = 1; i <= 200; i++) {
      state = agg.add(state, `card-${i}`, 0, i);
      expect(Math.abs((agg.finalize(state) as number) - i)).toBeLessThanOrEqual(2);
    }
    for (let i = 0; i < 100_000; i++) state = agg.add(state, i, 0, i);
    expect(bytesOf(agg, state).length).toBeLessThan(4200);
  });

  it("approx_quantile is within 1% (relative) of the exact quantile, for skewed and signed data", () => {
    const agg = createAggregator("approx_quantile", { quantile: 0.5 });
    fc.assert(
      fc.property(
        fc.array(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }), {
          minLength: 1,
          maxLength: 300,
        }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (xs, q) => {
          const sketch = createAggregator("approx_quantile", { quantile: q });
          const state = xs.reduce((s, x, i) => sketch.add(s, x + 0, 0, i), sketch.init());
          const sorted = [...xs].map((x) => x + 0).sort((a, b) => a - b);
          const exact = sorted[Math.floor(q * (xs.length - 1))]!;
          const got = sketch.finalize(state) as number;
          expect(Math.abs(got - exact)).toBeLessThanOrEqual(0.01 * Math.abs(exact) + 1e-12);
        },
      ),
    );
    // Log-normal-ish data over 6 orders of magnitude.
    let state = agg.init();
    const xs = Array.from({ length: 10_001 }, (_, i) => Math.exp(((i * 7919) % 10_001) / 700));
    xs.forEach((x, i) => {
      state = agg.add(state, x, 0, i);
    });
    const exact = [...xs].sort((a, b) => a - b)[5000]!;
    expect(Math.abs((agg.finalize(state) as number) - exact) / exact).toBeLessThanOrEqual(0.01);
  });

  it("keeps variance accurate where the textbook formula cancels (mean 1e9, sd 1)", () => {
    const agg = createAggregator("variance");
    const state = [1e9 - 1, 1e9, 1e9 + 1].reduce((s, x, i) => agg.add(s, x, 0, i), agg.init());
    expect(agg.finalize(state)).toBe(2 / 3);
  });
});

describe("exact sums in slots", () => {
  it("equal the correctly rounded exact sum (exact.ts) for any doubles, inline or spilled", async () => {
    const { addExact, roundExact } = await import("../src/exact.js");
    const sum = createAggregator("sum");
    const mean = createAggregator("mean");
    const magnitudes = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }),
      fc.integer({ min: -50_000, max: 50_000 }).map((c) => c / 100),
      fc.constantFrom(1e-300, -1e-300, 2 ** 53, 0.1, 0.2, 0.3, 1e16, -1e16),
    );
    fc.assert(
      fc.property(fc.array(magnitudes, { maxLength: 60 }), fc.nat(), (xs, cut) => {
        const partials: number[] = [];
        for (const x of xs) addExact(partials, x);
        const state = xs.reduce((s, x, i) => sum.add(s, x, 0, i), sum.init());
        expect(sum.finalize(state)).toBe(roundExact(partials));
        // Merged from two halves (as tiles are merged into a window): the same exact sum.
        const at = xs.length === 0 ? 0 : cut % xs.length;
        const halves = [xs.slice(0, at), xs.slice(at)].map((part) =>
          part.reduce((s, x, i) => sum.add(s, x, 0, i), sum.init()),
        );
        expect(sum.finalize(sum.merge(halves[1]!, halves[0]!))).toBe(roundExact(partials));
        expect(sum.finalize(sum.deserialize(bytesOf(sum, state)))).toBe(roundExact(partials));
        const m = xs.reduce((s, x, i) => mean.add(s, x, 0, i), mean.init());
        expect(mean.finalize(m)).toBe(xs.length === 0 ? null : roundExact(partials) / xs.length);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("approx_distinct bytes", () => {
  it("are the same for the same registers, whatever order the values arrived in", () => {
    const agg = createAggregator("approx_distinct");
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 1e6 }), { maxLength: 1500 }),
        fc.integer(),
        (values, seed) => {
          const shuffled = [...values].sort(
            (a, b) => ((a * 2654435761 + seed) % 97) - ((b * 2654435761 + seed) % 97),
          );
          const a = values.reduce((s, v, i) => agg.add(s, v, 0, i), agg.init());
          const b = shuffled.reduce((s, v, i) => agg.add(s, v, 0, i), agg.init());
          expect(bytesOf(agg, a)).toEqual(bytesOf(agg, b));
          expect(agg.finalize(agg.deserialize(bytesOf(agg, a)))).toEqual(agg.finalize(a));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("of states merged in any grouping equal the bytes of one state holding every value", () => {
    const agg = createAggregator("approx_distinct");
    // Chunks from empty to past the 1,024-register sparse limit, so sparse and dense states meet,
    // and a lopsided merge (a small tile into a large window) takes the in-place path.
    const chunk = fc.oneof(
      fc.array(fc.integer({ min: 0, max: 1e6 }), { maxLength: 6 }),
      fc.array(fc.integer({ min: 0, max: 1e6 }), { maxLength: 1400 }),
    );
    fc.assert(
      fc.property(fc.array(chunk, { minLength: 1, maxLength: 12 }), fc.boolean(), (chunks, leftFold) => {
        const states = chunks.map((values) => values.reduce((s, v, i) => agg.add(s, v, 0, i), agg.init()));
        const merged = leftFold
          ? states.reduce((into, from) => agg.merge(into, from), agg.init())
          : states.reduceRight((into, from) => agg.merge(from, into));
        const whole = chunks.flat().reduce((s, v, i) => agg.add(s, v, 0, i), agg.init());
        expect(bytesOf(agg, merged)).toEqual(bytesOf(agg, whole));
        expect(bytesOf(agg, agg.deserialize(bytesOf(agg, merged)))).toEqual(bytesOf(agg, whole));
        // The raw sketch merged straight from each chunk's bytes (serving's window merge) holds the
        // same registers, and leaves the bytes it read as they were.
        const hll = approxDistinct;
        const raw = chunks.map((values) => values.reduce((s, v, i) => hll.add(s, v, 0, i), hll.init()));
        const encoded = raw.map((state) => bytesOf(hll, state));
        const copies = encoded.map((bytes) => bytes.slice());
        const fromBytes = encoded.reduce((into, bytes) => hll.mergeBytes!(into, bytes), hll.init());
        const rawWhole = chunks.flat().reduce((s, v, i) => hll.add(s, v, 0, i), hll.init());
        expect(bytesOf(hll, fromBytes)).toEqual(bytesOf(hll, rawWhole));
        expect(encoded).toEqual(copies);
      }),
      { numRuns: 80 },
    );
  });

  it("refuse bytes whose registers are out of range or whose dense form is the wrong size", () => {
    const hll = approxDistinct;
    expect(() => hll.mergeBytes!(hll.init(), Uint8Array.of(0, 1, 0x80, 0x20, 1))).toThrow(/out of range/);
    expect(() => hll.mergeBytes!(hll.init(), Uint8Array.of(0, 1, 5, 0))).toThrow(/out of range/);
    expect(() => hll.deserialize(Uint8Array.of(1, 3, 1, 2, 3))).toThrow(/3 registers/);
  });
});
