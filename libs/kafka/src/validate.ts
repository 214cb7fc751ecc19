import avro from "avsc";

/** Up to this many problems are reported for one event: enough to fix it, short enough to read. */
const maxProblems = 10;

function preview(value: unknown): string {
  if (value === undefined) return "nothing (field missing)";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describe(type: avro.Type): string {
  if (avro.Type.isType(type, "union")) {
    return (type as unknown as { types: avro.Type[] }).types.map(describe).join(" | ");
  }
  if (avro.Type.isType(type, "record", "enum", "fixed")) return type.name ?? type.typeName;
  if (avro.Type.isType(type, "logical")) {
    return describe((type as unknown as { underlyingType: avro.Type }).underlyingType);
  }
  return type.typeName;
}

/**
 * Check a value against an Avro type and say where it is wrong: `amount: expected double, got "12,5"`.
 * Undeclared fields count as errors: a misspelt field name would otherwise vanish silently.
 */
export function avroProblems(type: avro.Type, value: unknown): string[] {
  const problems: string[] = [];
  type.isValid(value, {
    noUndeclaredFields: true,
    errorHook(path: string[], any: unknown, errorType: avro.Type) {
      if (problems.length >= maxProblems) return;
      const where = path.length > 0 ? path.join(".") : "(event)";
      if (avro.Type.isType(errorType, "record") && any !== null && typeof any === "object") {
        const declared = new Set((errorType as avro.types.RecordType).fields.map((f) => f.name));
        const extra = Object.keys(any).filter((k) => !declared.has(k));
        if (extra.length > 0) {
          problems.push(`${where}: undeclared field(s) ${extra.join(", ")}`);
          return;
        }
      }
      problems.push(`${where}: expected ${describe(errorType)}, got ${preview(any)}`);
    },
  });
  return problems;
}

export function parseAvroSchema(schema: string | object): avro.Type {
  return avro.Type.forSchema(typeof schema === "string" ? JSON.parse(schema) : (schema as avro.Schema));
}

/** Parses `schema` after the schemas it references, sharing one registry of named types. */
export function parseAvroTypes(referenced: readonly string[], schema: string): avro.Type {
  const registry = {};
  for (const text of referenced) avro.Type.forSchema(JSON.parse(text), { registry });
  return avro.Type.forSchema(JSON.parse(schema), { registry });
}
