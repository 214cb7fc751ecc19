/**
 * Confluent wire format in and out (magic 0, 4-byte schema id, Avro body). Records are decoded by
 * libs/kafka's AvroDecoder (one avsc Type per writer schema id, so the hot path is synchronous);
 * this adds what the views need: every column they read must be in the writer schema.
 */
import { readFileSync } from "node:fs";
import {
  AvroDecoder,
  type FeatureUpdateRecord,
  parseAvroSchema,
  type SchemaRegistry,
  schemaIdOf,
  valueSubject,
} from "@tessera/kafka";
import type { FeatureValue, Row, View } from "@tessera/transforms";

/** Why a record went to the dead-letter topic: the `reason` field and the metric label. */
export type DeadReason =
  | "decode_error"
  | "unknown_schema"
  | "schema_mismatch"
  | "missing_field"
  | "invalid_value"
  | "transform_error"
  | "late"
  | "future";

export type Decoded = { ok: true; row: Row } | { ok: false; reason: DeadReason; detail: string };

/** Columns a view reads straight from the event (not produced by its own derive steps). */
export function requiredColumns(views: readonly View[]): string[] {
  const out = new Set<string>();
  for (const view of views) {
    const derived = new Set(view.derive.map((d) => d.name));
    const direct = [view.source.entity, view.source.timestamp, ...view.features.map((f) => f.column)];
    for (const column of direct) if (column !== undefined && !derived.has(column)) out.add(column);
  }
  return [...out];
}

export class EventDecoder {
  private readonly avro: AvroDecoder;
  /** Per "topic:schema id": the columns its views read that the writer lacks (a dead letter), or none. */
  private readonly lacking = new Map<string, string | undefined>();

  constructor(
    registry: SchemaRegistry,
    /** Per topic: the columns its views need, checked once per writer schema. */
    private readonly required: Map<string, string[]>,
  ) {
    this.avro = new AvroDecoder(registry);
  }

  /** Fetches the writer schemas of these payloads not cached yet (one request per new id). */
  async prepare(topic: string, payloads: Iterable<Buffer | null>): Promise<void> {
    const list = [...payloads];
    await this.avro.prepare(list);
    for (const payload of list) {
      const id = schemaIdOf(payload);
      if (id === undefined || this.lacking.has(`${topic}:${id}`)) continue;
      const writer = this.avro.writer(id);
      const fields = new Set(
        writer && !("reason" in writer)
          ? ((writer.type as unknown as { fields?: { name: string }[] }).fields ?? []).map((f) => f.name)
          : [],
      );
      const absent =
        writer && "reason" in writer ? [] : (this.required.get(topic) ?? []).filter((c) => !fields.has(c));
      this.lacking.set(
        `${topic}:${id}`,
        absent.length > 0
          ? `schema ${id} lacks field(s) ${absent.join(", ")} that the views of ${topic} read`
          : undefined,
      );
    }
  }

  /** Decodes one record of `topic`; prepare() must have seen its payload. */
  decode(topic: string, payload: Buffer | null): Decoded {
    const id = schemaIdOf(payload);
    const lacking = id === undefined ? undefined : this.lacking.get(`${topic}:${id}`);
    if (lacking) return { ok: false, reason: "schema_mismatch", detail: lacking };
    const decoded = this.avro.decodePrepared(payload);
    return decoded.ok ? { ok: true, row: decoded.value as Row } : decoded;
  }
}

const featureUpdateSchema = readFileSync(
  new URL("../../../schemas/avro/feature_update.avsc", import.meta.url),
  "utf8",
);

/** A value of feature_update.avsc's `values` map. */
type AvroFeatureValue = FeatureUpdateRecord["values"][string];
type AvroScalar = Exclude<AvroFeatureValue, unknown[]>;

/** The value union of feature_update.avsc has null, double, string and arrays of those. */
function scalar(value: unknown): AvroScalar {
  if (value === null || value === undefined) return null;
  if (typeof value === "number" || typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

export function avroFeatureValue(value: FeatureValue): AvroFeatureValue {
  return Array.isArray(value) ? value.map(scalar) : scalar(value);
}

/** FeatureUpdate records, framed with the id registered under `<topic>-value`. */
export class FeatureUpdateEncoder {
  private readonly type = parseAvroSchema(featureUpdateSchema);
  private header: Buffer | undefined;
  /** Header, then the record's body, rewritten per record: one copy out per record, no zero-fill. */
  private scratch = Buffer.alloc(0);

  constructor(
    private readonly registry: SchemaRegistry,
    readonly topic: string,
  ) {}

  async register(): Promise<void> {
    const id = await this.registry.register(valueSubject(this.topic), featureUpdateSchema);
    this.header = Buffer.alloc(5);
    this.header.writeInt32BE(id, 1);
    this.scratch = Buffer.alloc(4096);
    this.header.copy(this.scratch);
  }

  encode(update: FeatureUpdateRecord): Buffer {
    if (!this.header) throw new Error("FeatureUpdateEncoder.register() was not called");
    let end = this.type.encode(update, this.scratch, 5);
    if (end < 0) {
      // avsc returns −(bytes missing): grow to fit, keeping the header.
      this.scratch = Buffer.alloc(2 * (this.scratch.length - end));
      this.header.copy(this.scratch);
      end = this.type.encode(update, this.scratch, 5);
    }
    return Buffer.from(this.scratch.subarray(0, end));
  }
}
