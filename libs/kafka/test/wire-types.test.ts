/** The wire types are generated from schemas/avro, and the generator maps every Avro construct as avsc decodes it. */
import { readFileSync } from "node:fs";
import avro from "avsc";
import { describe, expect, it } from "vitest";
import { wireFile, wireTypes } from "../../../scripts/codegen/wire-types.js";
import { avroDeclarations } from "../src/avro-types.js";

describe("wire types (src/wire.ts)", () => {
  it("are what scripts/codegen/wire-types.ts writes from schemas/avro today (run npm run codegen:wire)", () => {
    expect(readFileSync(wireFile, "utf8")).toBe(wireTypes());
  });

  it("map each Avro construct to the TypeScript avsc decodes it to", () => {
    const schema = {
      type: "record",
      name: "dev.tessera.v1.Every",
      doc: "All of them.",
      fields: [
        { name: "s", type: "string", doc: "A string." },
        { name: "i", type: "int" },
        { name: "l", type: "long" },
        { name: "f", type: "float" },
        { name: "d", type: "double" },
        { name: "b", type: "boolean" },
        { name: "raw", type: "bytes" },
        { name: "id", type: { type: "fixed", name: "Id", size: 4 } },
        { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
        { name: "maybe", type: ["null", "string"], default: null },
        { name: "level", type: { type: "enum", name: "Level", symbols: ["LOW", "HIGH"] } },
        { name: "again", type: "dev.tessera.v1.Level" },
        { name: "tags", type: { type: "array", items: "string" } },
        { name: "mixed", type: { type: "array", items: ["null", "double"] } },
        { name: "byName", type: { type: "map", values: "long" } },
        { name: "inner", type: { type: "record", name: "Inner", fields: [{ name: "x", type: "double" }] } },
      ],
    };
    expect(avroDeclarations([schema])).toEqual([
      'export type Level = "LOW" | "HIGH";',
      "export interface InnerRecord {\n  x: number;\n}",
      [
        "/** All of them. */",
        "export interface EveryRecord {",
        "  /** A string. */",
        "  s: string;",
        "  i: number;",
        "  l: number;",
        "  f: number;",
        "  d: number;",
        "  b: boolean;",
        "  raw: Buffer;",
        "  id: Buffer;",
        "  /** Epoch milliseconds. */",
        "  at: number;",
        "  maybe: null | string;",
        "  level: Level;",
        "  again: Level;",
        "  tags: string[];",
        "  mixed: (null | number)[];",
        "  byName: Record<string, number>;",
        "  inner: InnerRecord;",
        "}",
      ].join("\n"),
    ]);
    // What avsc decodes is of those types: a random value, field by field.
    const value = avro.Type.forSchema(schema as avro.Schema).random() as unknown as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(schema.fields.map((f) => f.name));
    for (const key of ["i", "l", "f", "d", "at"]) expect(typeof value[key]).toBe("number");
    for (const key of ["raw", "id"]) expect(Buffer.isBuffer(value[key])).toBe(true);
    expect(["LOW", "HIGH"]).toContain(value["level"]);
  });

  it("refuse a reference to a type no schema declared", () => {
    expect(() =>
      avroDeclarations([{ type: "record", name: "R", fields: [{ name: "x", type: "Nope" }] }]),
    ).toThrow(/unknown Avro type "Nope"/);
  });
});
