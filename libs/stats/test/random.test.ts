import { describe, expect, it } from "vitest";
import { KllSketch, Mulberry32, mulberry32, seededUniform } from "../src/index.js";

describe("mulberry32", () => {
  it("draws the reference stream (the oracle script's generator) and continues from a saved state", () => {
    const draw = mulberry32(42);
    expect([draw(), draw(), draw()]).toEqual([2581720956, 1925393290, 3661312704]);
    const generator = new Mulberry32(42);
    generator.uint32();
    const resumed = new Mulberry32(generator.state);
    expect([resumed.uint32(), resumed.uint32()]).toEqual([1925393290, 3661312704]);
    const uniform = seededUniform(42);
    expect(uniform()).toBe(2581720956 / 2 ** 32);
  });

  it("a restored KLL sketch compacts exactly as the original would", () => {
    const a = new KllSketch(8, 7);
    for (let i = 0; i < 500; i++) a.update(i);
    const b = KllSketch.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    for (let i = 500; i < 2000; i++) {
      a.update(i);
      b.update(i);
    }
    expect(b.toJSON()).toEqual(a.toJSON());
  });
});
