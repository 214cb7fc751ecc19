/**
 * TypeScript declarations from Avro schemas, as avsc decodes them: long and timestamp-millis are
 * numbers, bytes and fixed are Buffers, unions are TypeScript unions in the schema's order, enums
 * are string literal types. Each record becomes `<Name>Record`. Pure: scripts/codegen/wire-types.ts
 * reads schemas/avro and writes the result to src/wire.ts.
 */

interface AvroField {
  name: string;
  type: unknown;
  doc?: string;
}

interface AvroNamed {
  type: "record" | "enum" | "fixed";
  name: string;
  doc?: string;
  fields?: AvroField[];
  symbols?: string[];
}

const PRIMITIVES: Record<string, string> = {
  null: "null",
  boolean: "boolean",
  int: "number",
  long: "number",
  float: "number",
  double: "number",
  bytes: "Buffer",
  string: "string",
};

/** The last part of a full name: `dev.tessera.v1.Severity` → `Severity`. */
const shortName = (name: string) => name.slice(name.lastIndexOf(".") + 1);

/** The declarations of some schemas, in order: enums and nested records before what uses them. */
export function avroDeclarations(schemas: readonly object[]): string[] {
  const declared = new Map<string, string>();
  const out: string[] = [];
  const comment = (doc: string | undefined, indent = "") => (doc ? `${indent}/** ${doc} */\n` : "");

  const typeOf = (type: unknown): string => {
    if (typeof type === "string") {
      const primitive = PRIMITIVES[type];
      if (primitive) return primitive;
      const named = declared.get(shortName(type));
      if (!named) throw new Error(`unknown Avro type ${JSON.stringify(type)}`);
      return named;
    }
    if (Array.isArray(type)) return type.map(typeOf).join(" | ");
    if (type && typeof type === "object") {
      const t = type as { type: unknown; items?: unknown; values?: unknown };
      if (t.type === "array") {
        const items = typeOf(t.items);
        return Array.isArray(t.items) ? `(${items})[]` : `${items}[]`;
      }
      if (t.type === "map") return `Record<string, ${typeOf(t.values)}>`;
      if (t.type === "record" || t.type === "enum" || t.type === "fixed") return declare(type as AvroNamed);
      return typeOf(t.type); // a primitive with a logical type: its underlying type
    }
    throw new Error(`not an Avro type: ${JSON.stringify(type)}`);
  };

  const declare = (schema: AvroNamed): string => {
    const name = shortName(schema.name);
    if (schema.type === "fixed") {
      declared.set(name, "Buffer");
      return "Buffer";
    }
    if (schema.type === "enum") {
      declared.set(name, name);
      out.push(
        `${comment(schema.doc)}export type ${name} = ${schema.symbols!.map((s) => JSON.stringify(s)).join(" | ")};`,
      );
      return name;
    }
    const typeName = `${name}Record`;
    declared.set(name, typeName);
    const fields = schema.fields!.map((field) => {
      const logical = (field.type as { logicalType?: string } | null)?.logicalType;
      const millis = logical === "timestamp-millis";
      const doc = millis ? (field.doc ? `${field.doc} (epoch ms)` : "Epoch milliseconds.") : field.doc;
      return `${comment(doc, "  ")}  ${field.name}: ${typeOf(field.type)};`;
    });
    out.push(`${comment(schema.doc)}export interface ${typeName} {\n${fields.join("\n")}\n}`);
    return typeName;
  };

  for (const schema of schemas) typeOf(schema);
  return out;
}

/** A whole module: a header naming its source, then every declaration. */
export function avroModule(schemas: readonly object[], header: string): string {
  return `${header}\n\n${avroDeclarations(schemas).join("\n\n")}\n`;
}
