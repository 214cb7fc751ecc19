/**
 * Confluent wire format in and out (magic 0, 4-byte schema id, Avro body), decoded with avsc and a
 * per-schema-id cache so the hot path is synchronous. The registry's generic deserializer does the
 * same job per record through promises, which costs more than the rest of the pipeline together.
 */
import { readFileSync } from "node:fs";
import {
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

type AvroType = ReturnType<typeof parseAvroSchema>;
type Writer = { type: AvroType } | { reason: DeadReason; detail: string };

/** A registry failure other than "no such schema": retried, never dead-lettered. */
export class RegistryUnavailableError extends Error {
  override name = "RegistryUnavailableError";
  readonly retriable = true;
}

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
  private readonly writers = new Map<number, Writer>();

  constructor(
    private readonly registry: SchemaRegistry,
    /** Per topic: the columns its views need, checked once per writer schema. */
    private readonly required: Map<string, string[]>,
  ) {}

  /** Fetches the writer schemas of these payloads that are not cached yet (one request per new id). */
  async prepare(topic: string, payloads: Iterable<Buffer | null>): Promise<void> {
    const missing = new Set<number>();
    for (const payload of payloads) {
      const id = schemaIdOf(payload);
      if (id !== undefined && !this.writers.has(id)) missing.add(id);
    }
    for (const id of missing) this.writers.set(id, await this.fetch(topic, id));
  }

  /** Decodes one record; prepare() must have seen its payload. */
  decode(payload: Buffer | null): Decoded {
    const id = schemaIdOf(payload);
    if (id === undefined || !payload) {
      return {
        ok: false,
        reason: "decode_error",
        detail: payload
          ? "not Confluent-framed (no magic byte 0 and 4-byte schema id)"
          : "null value (tombstone)",
      };
    }
    const writer = this.writers.get(id);
    if (!writer) throw new Error(`schema ${id} was not prepared`);
    if ("reason" in writer) return { ok: false, reason: writer.reason, detail: writer.detail };
    try {
      const row = writer.type.fromBuffer(payload.subarray(5)) as Row;
      return { ok: true, row };
    } catch (error) {
      return { ok: false, reason: "decode_error", detail: `schema ${id}: ${(error as Error).message}` };
    }
  }

  private async fetch(topic: string, id: number): Promise<Writer> {
    let text: string;
    try {
      const info = await this.registry.client.getBySubjectAndId("", id);
      if (info.schemaType !== undefined && info.schemaType !== "AVRO") {
        return { reason: "schema_mismatch", detail: `schema ${id} is ${info.schemaType}, not Avro` };
      }
      text = info.schema;
    } catch (error) {
      if ((error as { status?: number }).status === 404) {
        return { reason: "unknown_schema", detail: `schema id ${id} is not in the registry` };
      }
      throw new RegistryUnavailableError(
        `schema registry: reading schema ${id}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    let type: AvroType;
    try {
      type = parseAvroSchema(text);
    } catch (error) {
      return {
        reason: "schema_mismatch",
        detail: `schema ${id} does not parse: ${(error as Error).message}`,
      };
    }
    const fields = new Set(
      ((type as unknown as { fields?: { name: string }[] }).fields ?? []).map((f) => f.name),
    );
    const absent = (this.required.get(topic) ?? []).filter((c) => !fields.has(c));
    if (absent.length > 0) {
      return {
        reason: "schema_mismatch",
        detail: `schema ${id} lacks field(s) ${absent.join(", ")} that the views of ${topic} read`,
      };
    }
    return { type };
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

  constructor(
    private readonly registry: SchemaRegistry,
    readonly topic: string,
  ) {}

  async register(): Promise<void> {
    const id = await this.registry.register(valueSubject(this.topic), featureUpdateSchema);
    this.header = Buffer.alloc(5);
    this.header.writeInt32BE(id, 1);
  }

  encode(update: FeatureUpdateRecord): Buffer {
    if (!this.header) throw new Error("FeatureUpdateEncoder.register() was not called");
    return Buffer.concat([this.header, this.type.toBuffer(update)]);
  }
}
