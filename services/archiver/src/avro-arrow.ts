/**
 * Arrow schema from a registered Avro schema, and the conversion of decoded Avro values (as avsc
 * returns them, without logical-type hooks) to what Arrow's builders take. The mapping, also in
 * docs/offline.md:
 *
 *   boolean → Bool        int → Int32          long → Int64       float → Float32   double → Float64
 *   string, enum, uuid → Utf8                  bytes → Binary     fixed → FixedSizeBinary(size)
 *   timestamp-millis / -micros → Timestamp(ms / µs, "UTC"); local-timestamp-* → Timestamp without zone
 *   date → Date32 (days)  time-millis → Time32(ms)  time-micros → Time64(µs)
 *   decimal → Utf8, the exact decimal text (Parquet readers disagree on decimal widths; text is lossless)
 *   record → Struct       array → List         map → Map<Utf8, value>
 *   ["null", T] (either order) → T, nullable; any other union → Utf8 holding the value as JSON
 *
 * Avro fields outside a ["null", T] union are non-nullable in Arrow as well.
 */
import {
  Binary,
  Bool,
  type DataType,
  DateDay,
  Field,
  FixedSizeBinary,
  Float32,
  Float64,
  Int32,
  Int64,
  List,
  Map_,
  Struct,
  TimeMicrosecond,
  TimeMillisecond,
  TimestampMicrosecond,
  TimestampMillisecond,
  Utf8,
} from "apache-arrow";

type AvroSchema = string | AvroSchema[] | { type: AvroSchema; [key: string]: unknown };

/** One Arrow field plus how to turn a decoded Avro value into a builder value. */
export interface MappedField {
  field: Field;
  convert: (value: unknown) => unknown;
}

export class AvroMappingError extends Error {
  override name = "AvroMappingError";
}

const same = (value: unknown) => value;
const DAY_MS = 86_400_000;

/** The Arrow fields of a top-level Avro record: one column per record field. */
export function arrowFieldsOf(schema: unknown): MappedField[] {
  const root = schema as AvroSchema;
  if (typeof root !== "object" || Array.isArray(root) || root.type !== "record") {
    throw new AvroMappingError("the archived value schema must be an Avro record");
  }
  const named = new Map<string, AvroSchema>();
  return recordFields(root, named, root.namespace as string | undefined);
}

function recordFields(
  record: { [key: string]: unknown },
  named: Map<string, AvroSchema>,
  namespace: string | undefined,
): MappedField[] {
  const full = register(record, named, namespace);
  const ns = (record.namespace as string | undefined) ?? namespace;
  const fields = record.fields as { name: string; type: AvroSchema }[];
  if (full) inProgress.add(full);
  try {
    return fields.map((f) => {
      const mapped = mapType(f.type, named, ns);
      return { field: new Field(f.name, mapped.type, mapped.nullable), convert: mapped.convert };
    });
  } finally {
    if (full) inProgress.delete(full);
  }
}

/** Records being mapped right now: a reference to one of them is recursion. */
const inProgress = new Set<string>();

/** Remembers a named type under its full and short name; returns the full name. */
function register(schema: { [key: string]: unknown }, named: Map<string, AvroSchema>, ns?: string) {
  const name = schema.name as string | undefined;
  if (!name) return undefined;
  const space = (schema.namespace as string | undefined) ?? ns;
  const full = name.includes(".") || !space ? name : `${space}.${name}`;
  named.set(full, schema as AvroSchema);
  named.set(name, schema as AvroSchema);
  return full;
}

interface Mapped {
  type: DataType;
  nullable: boolean;
  convert: (value: unknown) => unknown;
}

function mapType(schema: AvroSchema, named: Map<string, AvroSchema>, ns: string | undefined): Mapped {
  if (Array.isArray(schema)) return mapUnion(schema, named, ns);
  if (typeof schema === "string") {
    const primitive = primitiveType(schema);
    if (primitive) return primitive;
    const full = schema.includes(".") || !ns ? schema : `${ns}.${schema}`;
    const ref = named.get(full) ?? named.get(schema);
    if (!ref) throw new AvroMappingError(`unknown Avro type "${schema}"`);
    if (inProgress.has(full) || inProgress.has(schema)) {
      // A recursive record cannot become a finite Arrow schema: keep it as JSON text.
      return { type: new Utf8(), nullable: false, convert: toJson };
    }
    return mapType(ref, named, ns);
  }
  const logical = logicalType(schema);
  if (logical) return logical;
  switch (schema.type) {
    case "record": {
      const children = recordFields(schema, named, ns);
      return {
        type: new Struct(children.map((c) => c.field)),
        nullable: false,
        convert: (value) => {
          if (value === null || value === undefined) return null;
          const record = value as Record<string, unknown>;
          const out: Record<string, unknown> = {};
          for (const c of children) out[c.field.name] = c.convert(record[c.field.name] ?? null);
          return out;
        },
      };
    }
    case "enum":
      register(schema, named, ns);
      return { type: new Utf8(), nullable: false, convert: same };
    case "fixed":
      register(schema, named, ns);
      return { type: new FixedSizeBinary(schema.size as number), nullable: false, convert: toBytes };
    case "array": {
      const item = mapType(schema.items as AvroSchema, named, ns);
      return {
        type: new List(new Field("item", item.type, item.nullable)),
        nullable: false,
        convert: (value) => (value == null ? null : (value as unknown[]).map((v) => item.convert(v ?? null))),
      };
    }
    case "map": {
      const item = mapType(schema.values as AvroSchema, named, ns);
      const entries = new Struct([
        new Field("key", new Utf8(), false),
        new Field("value", item.type, item.nullable),
      ]);
      return {
        type: new Map_(new Field("entries", entries, false)),
        nullable: false,
        convert: (value) =>
          value == null
            ? null
            : new Map(Object.entries(value as object).map(([k, v]) => [k, item.convert(v ?? null)])),
      };
    }
    default:
      return mapType(schema.type, named, ns);
  }
}

function primitiveType(name: string): Mapped | undefined {
  switch (name) {
    case "null":
      return { type: new Utf8(), nullable: true, convert: () => null };
    case "boolean":
      return { type: new Bool(), nullable: false, convert: same };
    case "int":
      return { type: new Int32(), nullable: false, convert: same };
    case "long":
      return { type: new Int64(), nullable: false, convert: toBigInt };
    case "float":
      return { type: new Float32(), nullable: false, convert: same };
    case "double":
      return { type: new Float64(), nullable: false, convert: same };
    case "string":
      return { type: new Utf8(), nullable: false, convert: same };
    case "bytes":
      return { type: new Binary(), nullable: false, convert: toBytes };
    default:
      return undefined;
  }
}

function logicalType(schema: { type: AvroSchema; [key: string]: unknown }): Mapped | undefined {
  const base = schema.type;
  switch (schema.logicalType) {
    case "timestamp-millis":
      return base === "long" ? timestamp(new TimestampMillisecond("UTC"), 1) : undefined;
    case "local-timestamp-millis":
      return base === "long" ? timestamp(new TimestampMillisecond(), 1) : undefined;
    // Arrow's builders take epoch milliseconds for every timestamp unit and scale internally.
    case "timestamp-micros":
      return base === "long" ? timestamp(new TimestampMicrosecond("UTC"), 1000) : undefined;
    case "local-timestamp-micros":
      return base === "long" ? timestamp(new TimestampMicrosecond(), 1000) : undefined;
    case "date":
      return base === "int"
        ? {
            type: new DateDay(),
            nullable: false,
            convert: (v) => (v == null ? null : (v as number) * DAY_MS),
          }
        : undefined;
    case "time-millis":
      return base === "int" ? { type: new TimeMillisecond(), nullable: false, convert: same } : undefined;
    case "time-micros":
      return base === "long"
        ? { type: new TimeMicrosecond(), nullable: false, convert: toBigInt }
        : undefined;
    case "decimal":
      return base === "bytes" || base === "fixed"
        ? { type: new Utf8(), nullable: false, convert: (v) => decimalText(v, (schema.scale as number) ?? 0) }
        : undefined;
    case "uuid":
      return base === "string" ? { type: new Utf8(), nullable: false, convert: same } : undefined;
    default:
      return undefined; // unknown logical types fall back to the underlying type, as Avro says
  }
}

function timestamp(type: DataType, perMs: number): Mapped {
  return {
    type,
    nullable: false,
    convert: (v) => (v == null ? null : perMs === 1 ? Number(v) : Number(v) / perMs),
  };
}

function mapUnion(branches: AvroSchema[], named: Map<string, AvroSchema>, ns: string | undefined): Mapped {
  const others = branches.filter((b) => b !== "null");
  const nullable = others.length < branches.length;
  if (others.length === 1) {
    const inner = mapType(others[0]!, named, ns);
    return { ...inner, nullable: nullable || inner.nullable };
  }
  // Several non-null branches: no Arrow type every reader understands, so JSON text.
  return { type: new Utf8(), nullable: true, convert: toJson };
}

function toBigInt(value: unknown): bigint | null {
  if (value === null || value === undefined) return null;
  return typeof value === "bigint" ? value : BigInt(Math.trunc(Number(value)));
}

function toBytes(value: unknown): Uint8Array | null {
  if (value === null || value === undefined) return null;
  return value instanceof Uint8Array ? value : new TextEncoder().encode(String(value));
}

function toJson(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return JSON.stringify(value, (_key, v) => {
    if (typeof v === "bigint") return v.toString();
    if (v && typeof v === "object" && v.type === "Buffer" && Array.isArray(v.data))
      return Buffer.from(v.data).toString("base64");
    return v;
  });
}

/** Avro decimal: big-endian two's-complement unscaled integer → exact decimal text. */
export function decimalText(value: unknown, scale: number): string | null {
  if (value === null || value === undefined) return null;
  const bytes = value as Uint8Array;
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  if (bytes.length > 0 && bytes[0]! & 0x80) n -= 1n << BigInt(bytes.length * 8);
  const negative = n < 0n;
  const digits = (negative ? -n : n).toString().padStart(scale + 1, "0");
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}
