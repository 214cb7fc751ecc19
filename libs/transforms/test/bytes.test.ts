import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter } from "../src/index.js";

describe("ByteWriter and ByteReader", () => {
  it("round-trip any mix of strings (ASCII fast path and UTF-8), numbers and flags in one reused writer", () => {
    const value = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: "grapheme", maxLength: 60 }),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
    );
    const out = new ByteWriter();
    fc.assert(
      fc.property(fc.array(value, { maxLength: 20 }), (values) => {
        out.reset();
        for (const v of values) out.value(v);
        // The bytes are the standard encoding: a tag, then a varuint length and UTF-8 for text.
        for (const v of values) {
          if (typeof v !== "string") continue;
          const alone = new ByteWriter().value(v).finish();
          const utf8 = new TextEncoder().encode(v);
          expect(alone.subarray(alone.length - utf8.length)).toEqual(utf8);
        }
        const input = new ByteReader(out.finish());
        for (const v of values) expect(input.value()).toEqual(v);
        expect(input.done).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
